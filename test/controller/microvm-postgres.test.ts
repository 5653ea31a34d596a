/**
 * The PostgreSQL sidecar's initialisation (src/controller/build/postgres.ts) run for real against
 * Debian's PostgreSQL, as the pod runs it: UID 1000 named spindle-workflow by the pod's own
 * passwd (setupScript's, bind-mounted over /etc/passwd in a private mount namespace, as the Job
 * mounts it), the socket in its own folder. Then `psql -c 'select 1'` as that user with no
 * password, into the database it owns. Needs root (mount namespace, setpriv) and Debian's
 * postgresql package (hack/install-system-deps.sh installs it).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { setupScript } from "../../src/api/contract/index.ts";
import { POSTGRES_READY_FILE, postgresScript, postgresSql } from "../../src/controller/build/postgres.ts";
import { eventually } from "../harness/index.ts";

const PG_ROOT = "/usr/lib/postgresql";
const version = existsSync(PG_ROOT)
  ? readdirSync(PG_ROOT)
      .filter((v) => existsSync(join(PG_ROOT, v, "bin", "postgres")))
      .sort((a, b) => Number(b) - Number(a))[0]
  : undefined;
const skip =
  process.getuid?.() !== 0
    ? "needs root (a mount namespace for the pod's passwd, setpriv to UID 1000)"
    : version === undefined
      ? "Debian's postgresql package is not installed (make test-deps)"
      : false;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

test("the PostgreSQL sidecar's setup: databases, roles, ownership, peer auth for spindle-workflow", {
  skip,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "loom-pg-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const paths = {
    home: join(dir, "home"),
    workspace: join(dir, "ws"),
    setup: join(dir, "setup"),
    cloneLog: "",
  };
  mkdirSync(paths.setup);
  assert.equal(spawnSync("sh", ["-c", setupScript(paths, "spindle-workflow")]).status, 0);
  const state = join(dir, "state");
  const socket = join(dir, "run");
  for (const d of [state, socket]) {
    mkdirSync(d);
    chownSync(d, 1000, 1000);
  }
  const port = await freePort();
  const bin = join(PG_ROOT, version!, "bin");
  const sql = postgresSql({
    ensureDatabases: ["spindle-workflow", "other"],
    ensureUsers: [
      { name: "spindle-workflow", ensureDBOwnership: true },
      { name: "reader", ensureDBOwnership: false },
    ],
  });
  /** Runs `argv` as UID 1000 with the pod's passwd and group, as in the workflow pod. */
  const asPodUser = (argv: string[], env: Record<string, string> = {}) => [
    "-m",
    "sh",
    "-c",
    `mount --bind "$1/passwd" /etc/passwd && mount --bind "$1/group" /etc/group && shift && exec setpriv --reuid=1000 --regid=1000 --clear-groups "$@"`,
    "sh",
    paths.setup,
    "env",
    "-i",
    `PATH=${bin}:/usr/bin:/bin`,
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
    ...argv,
  ];
  const sidecar: ChildProcess = spawn(
    "unshare",
    asPodUser(["sh", "-c", postgresScript({ state, socket })], {
      LOOM_PG_USER: "spindle-workflow",
      LOOM_PG_SQL: sql,
      LOOM_PG_PORT: String(port),
    }),
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  sidecar.stdout!.on("data", (d) => (log += d));
  sidecar.stderr!.on("data", (d) => (log += d));
  const exited = new Promise<number | null>((resolve) => sidecar.on("exit", (code) => resolve(code)));
  t.after(() => sidecar.kill("SIGKILL"));

  await eventually("the sidecar marks itself ready", async () =>
    existsSync(join(socket, POSTGRES_READY_FILE)) ? true : `not yet: ${log.slice(-400)}`,
  );
  assert.match(log, /postgresql is ready/);

  const psql = (args: string[]) =>
    spawnSync("unshare", asPodUser(["psql", "-X", "-w", "-h", socket, "-p", String(port), ...args]), {
      encoding: "utf8",
    });
  // As upstream: no password, over the socket, as spindle-workflow into its own database.
  const one = psql(["-d", "spindle-workflow", "-Atc", "select 1"]);
  assert.equal(one.status, 0, one.stderr);
  assert.equal(one.stdout.trim(), "1");
  const who = psql([
    "-d",
    "spindle-workflow",
    "-Atc",
    "select current_user, pg_get_userbyid(d.datdba) from pg_database d where datname = current_database()",
  ]);
  assert.equal(who.stdout.trim(), "spindle-workflow|spindle-workflow");
  const dbs = psql([
    "-d",
    "postgres",
    "-U",
    "postgres",
    "-Atc",
    "select datname from pg_database where datname in ('other', 'spindle-workflow') order by 1",
  ]);
  assert.deepEqual(dbs.stdout.trim().split("\n"), ["other", "spindle-workflow"]);
  const roles = psql([
    "-d",
    "postgres",
    "-U",
    "postgres",
    "-Atc",
    "select rolname from pg_roles where rolcanlogin and rolname in ('reader', 'spindle-workflow') order by 1",
  ]);
  assert.deepEqual(roles.stdout.trim().split("\n"), ["reader", "spindle-workflow"]);
  // Peer auth maps the OS user only to itself (and postgres): not to another role.
  const other = psql(["-d", "spindle-workflow", "-U", "reader", "-Atc", "select 1"]);
  assert.notEqual(other.status, 0);
  assert.match(other.stderr, /Peer authentication failed/);
  // TCP asks for a password, which spindle-workflow has none of.
  const tcp = spawnSync(
    "unshare",
    asPodUser([
      "psql",
      "-X",
      "-w",
      "-h",
      "127.0.0.1",
      "-p",
      String(port),
      "-d",
      "spindle-workflow",
      "-Atc",
      "select 1",
    ]),
    { encoding: "utf8" },
  );
  assert.notEqual(tcp.status, 0);

  // SIGTERM (what the kubelet sends) stops the server cleanly.
  sidecar.kill("SIGTERM");
  assert.equal(await exited, 0, log);
});
