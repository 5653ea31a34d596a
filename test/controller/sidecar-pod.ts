/**
 * A workflow pod's sidecar run for real on this machine (microvm-postgres, microvm-services):
 * the pod's folders and its own passwd/group (setupScript's, bind-mounted over /etc/passwd in a
 * private mount namespace, as the Job mounts them), commands as UID 1000 (spindle-workflow), and
 * the sidecar's script started as that user. Needs root (mount namespaces, setpriv).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { setupScript } from "../../src/api/contract/index.ts";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A pod's folders: its passwd/group (setupScript's), and the sidecar's state and socket folders
 * (owned by UID 1000). With `socketAt`, the socket folder is also bind-mounted there (the pod's
 * path, e.g. /run/mysqld) in each private mount namespace, so scripts and clients use the pod's
 * own paths. `path` is the PATH commands run with.
 */
export function podDirs(t: TestContext, prefix: string, o: { path: string; socketAt?: string }) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
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
  const passwd = `mount --bind "$1/passwd" /etc/passwd && mount --bind "$1/group" /etc/group`;
  const user = `exec setpriv --reuid=1000 --regid=1000 --clear-groups "$@"`;
  const [script, ...scriptArgs] =
    o.socketAt === undefined
      ? [`${passwd} && shift && ${user}`, paths.setup]
      : [
          `${passwd} && mkdir -p "$3" && mount --bind "$2" "$3" && shift 3 && ${user}`,
          paths.setup,
          socket,
          o.socketAt,
        ];
  /** `unshare` arguments running `argv` as UID 1000 with the pod's passwd and group. */
  const asPodUser = (argv: string[], env: Record<string, string> = {}) => [
    "-m",
    "sh",
    "-c",
    script,
    "sh",
    ...scriptArgs,
    "env",
    "-i",
    `PATH=${o.path}`,
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
    ...argv,
  ];
  const run = (argv: string[]) => spawnSync("unshare", asPodUser(argv), { encoding: "utf8" });
  return { state, socket, asPodUser, run };
}

/** Starts the sidecar script as the pod's user; its log collected, SIGKILLed after the test. */
export function startSidecar(t: TestContext, args: string[]) {
  // Its own process group: a failed test kills the server too, not just unshare.
  const sidecar: ChildProcess = spawn("unshare", args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
  const out = { log: "" };
  sidecar.stdout!.on("data", (d) => (out.log += d));
  sidecar.stderr!.on("data", (d) => (out.log += d));
  const exited = new Promise<number | null>((resolve) => sidecar.on("exit", (code) => resolve(code)));
  t.after(() => {
    try {
      process.kill(-sidecar.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  });
  return { sidecar, out, exited };
}
