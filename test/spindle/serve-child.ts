/**
 * `loom serve` as a child process against a knot stand-in, for the crash tests (e2e-restart,
 * e2e-crash-truth): the child can be SIGKILLed and started again on the same database.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { openDatabase, Repos } from "../../src/spindle/db/index.ts";
import { KnotStandIn } from "../support/knot-standin.ts";
import { ALICE } from "./server-kit.ts";

const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;

export interface ServeChild {
  proc: ChildProcess;
  url: string;
  /** `url` as a WebSocket URL (for /events and /logs). */
  wsUrl: string;
  exited: Promise<number | null>;
}

/**
 * Starts `loom serve` with `env` and resolves once it listens (within a minute: a loaded machine
 * starts it slowly). `started` learns of the process first, so it is killed even when it never
 * says it listens.
 */
export async function startServe(
  env: Record<string, string>,
  started: (proc: ChildProcess) => void = () => {},
): Promise<ServeChild> {
  const proc = spawn(process.execPath, [MAIN, "serve"], {
    env: { ...env, PATH: process.env.PATH ?? "/usr/bin:/bin", LOOM_LOG_LEVEL: "warn" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  started(proc);
  const exited = new Promise<number | null>((res) => proc.once("exit", (code) => res(code)));
  let err = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${err}`)), 60_000);
    proc.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/[0-9.:]+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    });
    proc.once("exit", (code) => reject(new Error(`serve exited ${code}:\n${err}`)));
  });
  return { proc, url, wsUrl: url.replace(/^http/, "ws"), exited };
}

export interface ServeFixture {
  /** The server's directory (database, logs, run directories); removed after the suite. */
  readonly dir: string;
  /** A Gen1 knot stand-in the server follows, serving alice/loom. */
  readonly knot: KnotStandIn;
  /** alice/loom on the stand-in, as a pipeline record's repo. */
  readonly repo: { did: string; repo: string; knot: string };
  /** Starts `loom serve` with `env`; a child still running after the suite is SIGKILLed. */
  start(env: Record<string, string>): Promise<ServeChild>;
}

/**
 * Call inside a `describe`: before it, a fresh directory whose database already knows alice/loom
 * on a knot stand-in; after it, the child killed, the stand-in stopped, the directory removed.
 */
export function serveFixture(prefix: string): ServeFixture {
  let dir = "";
  let knot: KnotStandIn | undefined;
  const children: ChildProcess[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), prefix));
    knot = await KnotStandIn.start({ gen: 1 });
    const db = openDatabase(join(dir, "spindle.db"));
    new Repos(db).upsert({ knot: knot.host, owner: ALICE, name: "loom", rkey: "3lrepo0000001" });
    db.close();
  });
  after(async () => {
    // Killing a child that already exited does nothing.
    for (const c of children) c.kill("SIGKILL");
    await knot?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    get dir() {
      return dir;
    },
    get knot() {
      if (!knot) throw new Error("serveFixture: used outside its describe");
      return knot;
    },
    get repo() {
      return { did: ALICE, repo: "loom", knot: this.knot.host };
    },
    start: (env) => startServe(env, (proc) => children.push(proc)),
  };
}
