/**
 * The PostgreSQL sidecar's initialisation (src/controller/build/postgres.ts) run for real against
 * Debian's PostgreSQL, as the pod runs it: UID 1000 named spindle-workflow by the pod's own
 * passwd (setupScript's, bind-mounted over /etc/passwd in a private mount namespace, as the Job
 * mounts it), the socket in its own folder. Then `psql -c 'select 1'` as that user with no
 * password, into the database it owns. Needs root (mount namespace, setpriv) and Debian's
 * postgresql package (hack/install-system-deps.sh installs it).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { POSTGRES_READY_FILE, postgresScript, postgresSql } from "../../src/controller/build/postgres.ts";
import { eventually } from "../harness/index.ts";
import { freePort, podDirs, startSidecar } from "./sidecar-pod.ts";

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

test("the PostgreSQL sidecar's setup: databases, roles, ownership, peer auth for spindle-workflow", {
  skip,
}, async (t) => {
  const bin = join(PG_ROOT, version!, "bin");
  const pod = podDirs(t, "loom-pg-", { path: `${bin}:/usr/bin:/bin` });
  const { state, socket, asPodUser } = pod;
  const port = await freePort();
  const sql = postgresSql({
    ensureDatabases: ["spindle-workflow", "other"],
    ensureUsers: [
      { name: "spindle-workflow", ensureDBOwnership: true },
      { name: "reader", ensureDBOwnership: false },
    ],
  });
  const { sidecar, out, exited } = startSidecar(
    t,
    asPodUser(["sh", "-c", postgresScript({ state, socket })], {
      LOOM_PG_USER: "spindle-workflow",
      LOOM_PG_SQL: sql,
      LOOM_PG_PORT: String(port),
    }),
  );

  await eventually("the sidecar marks itself ready", async () =>
    existsSync(join(socket, POSTGRES_READY_FILE)) ? true : `not yet: ${out.log.slice(-400)}`,
  );
  assert.match(out.log, /postgresql is ready/);

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
  assert.equal(await exited, 0, out.log);
});
