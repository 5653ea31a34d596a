/**
 * Crash safety with the real CLI process: `loom serve` as a child, fed by a knot stand-in,
 * SIGKILLed while one workflow runs and two pipelines wait in the queue. After a restart on the
 * same database nothing is lost (the queued pipelines run) and nothing runs twice (the
 * interrupted workflow is reported failed with the engine's reason, not started again; no
 * process of it is left — the runner stops when its stdout breaks, and recovery sweeps the rest).
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { serveFixture } from "./serve-child.ts";
import { Collector, pipelineRecord, statuses, testEnv, waitFor, workflow } from "./server-kit.ts";

function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(text)) pids.push(Number(pid));
    } catch {}
  }
  return pids;
}

describe("e2e: SIGKILL mid-run and with queued pipelines", () => {
  const fx = serveFixture("loom-restart-");

  it("loses nothing and runs nothing twice", async () => {
    const env = testEnv(fx.dir, { SPINDLE_SERVER_MAX_JOB_COUNT: "1", SPINDLE_SERVER_QUEUE_SIZE: "10" });
    let child = await fx.start(env);
    await fx.knot.waitForConnections(1);
    const events = new Collector(`${child.wsUrl}/events`);
    await events.opened;

    const mark = (name: string) => join(fx.dir, `marker-${name}`);
    const repo = fx.repo;
    fx.knot.emitPipeline(
      "3lxyz2restrta",
      pipelineRecord(
        [workflow("long.yml", [{ name: "long", command: `echo started >> ${mark("a")}; sleep 37` }])],
        repo,
      ),
    );
    await events.until((f) => statuses(f, "long.yml").some((e) => e.status === "running"));
    await waitFor(() => existsSync(mark("a")), 10_000, "long step started");
    fx.knot.emitPipeline(
      "3lxyz2restrtb",
      pipelineRecord([workflow("b.yml", [{ name: "b", command: `echo ran >> ${mark("b")}` }])], repo),
    );
    fx.knot.emitPipeline(
      "3lxyz2restrtc",
      pipelineRecord([workflow("c.yml", [{ name: "c", command: `echo ran >> ${mark("c")}` }])], repo),
    );
    await events.until(
      (f) =>
        statuses(f, "b.yml").some((e) => e.status === "pending") &&
        statuses(f, "c.yml").some((e) => e.status === "pending"),
    );
    assert.ok(!existsSync(mark("b")) && !existsSync(mark("c")), "queued pipelines waited for the worker");

    child.proc.kill("SIGKILL");
    await child.exited;
    events.close();

    child = await fx.start(env);
    const all = new Collector(`${child.wsUrl}/events?cursor=1`);
    await all.opened;
    await all.until(
      (f) =>
        statuses(f, "long.yml").some((e) => e.status === "failed") &&
        statuses(f, "b.yml").some((e) => e.status === "success") &&
        statuses(f, "c.yml").some((e) => e.status === "success"),
      30_000,
    );
    assert.deepEqual(
      statuses(all.frames, "long.yml").map((e) => e.status),
      ["pending", "running", "failed"],
    );
    const lost = statuses(all.frames, "long.yml").at(-1);
    assert.match(String(lost?.error), /cannot resume/);
    assert.equal(lost?.exitCode, -1);
    // Queued behind the busy worker, each shows its place; the notes survive the restart (they
    // are the rows' error text), so only a change of place writes a new one.
    const q = (n: number) => `queued: position ${n} in the spindle's queue`;
    assert.deepEqual(
      statuses(all.frames, "b.yml").map((e) => [e.status, e.error]),
      [
        ["pending", undefined],
        ["pending", q(1)],
        ["running", undefined],
        ["success", undefined],
      ],
    );
    assert.deepEqual(
      statuses(all.frames, "c.yml").map((e) => [e.status, e.error]),
      [
        ["pending", undefined],
        ["pending", q(2)],
        ["pending", q(1)],
        ["running", undefined],
        ["success", undefined],
      ],
    );
    assert.equal(readFileSync(mark("a"), "utf8"), "started\n");
    assert.equal(readFileSync(mark("b"), "utf8"), "ran\n");
    assert.equal(readFileSync(mark("c"), "utf8"), "ran\n");
    await waitFor(() => processesMentioning(mark("a")).length === 0, 10_000, "orphaned step cleaned up");
    // The /logs of the interrupted workflow ends: it is finished.
    const logs = new Collector(`${child.wsUrl}/logs/${fx.knot.host}/3lxyz2restrta/long.yml`);
    assert.equal((await logs.closed).code, 1000);
    all.close();

    child.proc.kill("SIGTERM");
    assert.equal(await child.exited, 0);
  });
});
