/**
 * Crash recovery keeps the truth (issue 12): `loom serve` (local engine) is SIGKILLed while
 * three workflows run. Two of them end while no server watches (one succeeds, one fails with
 * exit code 3); the third is still running at the restart. The restarted server reports the two
 * with their real status and exit code (read from the result file each runner left) and the
 * third as failed with the reason; nothing runs twice.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { serveFixture } from "./serve-child.ts";
import { Collector, pipelineRecord, statuses, testEnv, waitFor, workflow } from "./server-kit.ts";

/** Result files the runners left in the local engine's run directories. */
function resultFiles(runs: string): string[] {
  if (!existsSync(runs)) return [];
  return readdirSync(runs)
    .map((d) => join(runs, d, "result.json"))
    .filter((f) => existsSync(f));
}

describe("e2e: a SIGKILLed server reports what finished meanwhile with its real outcome", () => {
  const fx = serveFixture("loom-crash-");

  it("finished workflows keep their status and exit code; the unfinished one fails with a reason", async () => {
    const env = testEnv(fx.dir, { SPINDLE_SERVER_MAX_JOB_COUNT: "3" });
    let child = await fx.start(env);
    await fx.knot.waitForConnections(1);
    const events = new Collector(`${child.wsUrl}/events`);
    await events.opened;
    const gate = join(fx.dir, "gate");
    const mark = (name: string) => join(fx.dir, `marker-${name}`);
    const wait = `while [ ! -e ${gate} ]; do sleep 0.05; done`;
    const repo = fx.repo;
    const emit = (rkey: string, name: string, command: string) =>
      fx.knot.emitPipeline(rkey, pipelineRecord([workflow(name, [{ name: "s", command }])], repo));
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
    const runs = join(fx.dir, "runs");
    await waitFor(() => resultFiles(runs).length === 2, 20_000, "two runners wrote their results");

    child = await fx.start(env);
    const all = new Collector(`${child.wsUrl}/events?cursor=1`);
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
  });
});
