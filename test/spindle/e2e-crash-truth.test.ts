/**
 * Crash recovery keeps the truth (issue 12): `loom serve` (local engine) is SIGKILLed while
 * three workflows run. Two of them end while no server watches (one succeeds, one fails with
 * exit code 3); the third is still running at the restart. The restarted server reports the two
 * with their real status and exit code (read from the result file each runner left) and the
 * third as failed with the reason; nothing runs twice.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openDatabase, Repos } from "../../src/spindle/db/index.ts";
import { KnotStandIn } from "../support/knot-standin.ts";
import { ALICE, Collector, pipelineRecord, statuses, testEnv, waitFor, workflow } from "./server-kit.ts";

const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;

interface Child {
  proc: ChildProcess;
  url: string;
  exited: Promise<number | null>;
}

async function startServe(env: Record<string, string>): Promise<Child> {
  const proc = spawn(process.execPath, [MAIN, "serve"], {
    env: { ...env, PATH: process.env.PATH ?? "/usr/bin:/bin", LOOM_LOG_LEVEL: "warn" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const exited = new Promise<number | null>((res) => proc.once("exit", (code) => res(code)));
  let err = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${err}`)), 20_000);
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
  return { proc, url, exited };
}

/** Result files the runners left in the local engine's run directories. */
function resultFiles(runs: string): string[] {
  if (!existsSync(runs)) return [];
  return readdirSync(runs)
    .map((d) => join(runs, d, "result.json"))
    .filter((f) => existsSync(f));
}

describe("e2e: a SIGKILLed server reports what finished meanwhile with its real outcome", () => {
  let dir: string;
  let knot: KnotStandIn;
  let child: Child | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "loom-crash-"));
    knot = await KnotStandIn.start({ gen: 1 });
    const db = openDatabase(join(dir, "spindle.db"));
    new Repos(db).upsert({ knot: knot.host, owner: ALICE, name: "loom", rkey: "3lrepo0000001" });
    db.close();
  });
  after(async () => {
    child?.proc.kill("SIGKILL");
    await knot.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("finished workflows keep their status and exit code; the unfinished one fails with a reason", async () => {
    const env = testEnv(dir, { SPINDLE_SERVER_MAX_JOB_COUNT: "3" });
    child = await startServe(env);
    await knot.waitForConnections(1);
    const events = new Collector(`${child.url.replace("http", "ws")}/events`);
    await events.opened;
    const gate = join(dir, "gate");
    const mark = (name: string) => join(dir, `marker-${name}`);
    const wait = `while [ ! -e ${gate} ]; do sleep 0.05; done`;
    const repo = { did: ALICE, repo: "loom", knot: knot.host };
    const emit = (rkey: string, name: string, command: string) =>
      knot.emitPipeline(rkey, pipelineRecord([workflow(name, [{ name: "s", command }])], repo));
    // Silent after the gate: a runner whose reader is gone stops its steps at the next output
    // line (so a step printing after the crash is cut, and reported so); these end first.
    emit("3lxyz2crasha", "ok.yml", `echo x >> ${mark("ok")}; ${wait}; true`);
    emit("3lxyz2crashb", "bad.yml", `echo x >> ${mark("bad")}; ${wait}; exit 3`);
    emit("3lxyz2crashc", "long.yml", `echo x >> ${mark("long")}; sleep 36`);
    await events.until((f) => ["ok.yml", "bad.yml", "long.yml"].every((w) => statuses(f, w).length === 2));
    await waitFor(() => ["ok", "bad", "long"].every((n) => existsSync(mark(n))), 10_000, "steps started");

    child.proc.kill("SIGKILL");
    await child.exited;
    events.close();
    // With no server watching, two runners finish and leave their results.
    writeFileSync(gate, "");
    const runs = join(dir, "runs");
    await waitFor(() => resultFiles(runs).length === 2, 20_000, "two runners wrote their results");

    child = await startServe(env);
    const all = new Collector(`${child.url.replace("http", "ws")}/events?cursor=1`);
    await all.opened;
    const final = (f: string[], w: string) =>
      statuses(f, w).find((e) => ["success", "failed", "timeout", "cancelled"].includes(String(e.status)));
    await all.until((f) => ["ok.yml", "bad.yml", "long.yml"].every((w) => final(f, w) !== undefined), 30_000);
    const story = (w: string) => statuses(all.frames, w).map((e) => [e.status, e.exitCode, e.error]);
    assert.deepEqual(story("ok.yml"), [
      ["pending", undefined, undefined],
      ["running", undefined, undefined],
      ["success", undefined, undefined],
    ]);
    assert.deepEqual(story("bad.yml"), [
      ["pending", undefined, undefined],
      ["running", undefined, undefined],
      ["failed", 3, "workflow failed"],
    ]);
    const long = statuses(all.frames, "long.yml");
    assert.deepEqual(
      long.map((e) => e.status),
      ["pending", "running", "failed"],
    );
    assert.equal(long.at(-1)?.exitCode, -1);
    assert.match(String(long.at(-1)?.error), /cannot resume a workflow after a restart/);
    // Nothing ran twice, and the run directories are gone.
    for (const n of ["ok", "bad", "long"]) assert.equal(readFileSync(mark(n), "utf8"), "x\n", n);
    assert.deepEqual(existsSync(runs) ? readdirSync(runs) : [], []);
    all.close();

    child.proc.kill("SIGTERM");
    assert.equal(await child.exited, 0);
    child = undefined;
  });
});
