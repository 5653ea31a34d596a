/**
 * The durable queue's limits: SPINDLE_SERVER_QUEUE_SIZE overflow fails the pipeline with a
 * clear error (never a silent drop), SPINDLE_SERVER_MAX_JOB_COUNT bounds concurrency, and
 * cancelling a queued workflow means it never starts.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Engine } from "../../src/engine/engine.ts";
import { LocalEngine } from "../../src/engine/local/engine.ts";
import {
  ALICE,
  addRepo,
  type Booted,
  bootServer,
  Collector,
  KNOT,
  pipelineRecord,
  statuses,
  waitFor,
  workflow,
} from "./server-kit.ts";

describe("spindle server: queue bounds and cancel", () => {
  let b: Booted;
  before(async () => {
    b = await bootServer({ env: { SPINDLE_SERVER_QUEUE_SIZE: "1", SPINDLE_SERVER_MAX_JOB_COUNT: "1" } });
    addRepo(b.server, ALICE, "loom");
  });
  after(() => b.stop());

  it("overflow fails with a clear error; a cancelled queued workflow never runs; one job at a time", async () => {
    const events = new Collector(`${b.wsUrl}/events`);
    await events.opened;
    const mark = (n: string) => join(b.dir, `m-${n}`);
    const p = (name: string, command: string) => pipelineRecord([workflow(name, [{ name: "s", command }])]);
    await b.server.pipelines.acceptPipeline(
      KNOT,
      "3lxyz2queue01",
      p("one.yml", `touch ${mark("one")}; sleep 30`),
    );
    await events.until((f) => statuses(f, "one.yml").some((e) => e.status === "running"));
    await b.server.pipelines.acceptPipeline(KNOT, "3lxyz2queue02", p("two.yml", `touch ${mark("two")}`));
    await b.server.pipelines.acceptPipeline(KNOT, "3lxyz2queue03", p("three.yml", `touch ${mark("three")}`));
    await events.until((f) => statuses(f, "three.yml").length === 1 && statuses(f, "two.yml").length === 2);
    // Waiting behind the busy worker, two.yml shows its place in the queue (fair share, issue 12).
    assert.deepEqual(
      statuses(events.frames, "two.yml").map((e) => [e.status, e.error]),
      [
        ["pending", undefined],
        ["pending", "queued: position 1 in the spindle's queue"],
      ],
    );
    const overflow = statuses(events.frames, "three.yml")[0];
    assert.equal(overflow?.status, "failed");
    assert.equal(overflow?.exitCode, -1);
    assert.equal(
      overflow?.error,
      "the spindle's queue is full (SPINDLE_SERVER_QUEUE_SIZE=1); the pipeline was not run",
    );
    const metrics = await b.server.metrics.registry.getSingleMetricAsString("loom_pipelines_total");
    assert.match(metrics, /result="overflow",reason="queue_full"\} 1/);

    // Cancel the queued one, then the running one: the queued one never starts.
    assert.equal(await b.server.scheduler.cancel(KNOT, "3lxyz2queue02", "two.yml"), "cancelled");
    assert.equal(await b.server.scheduler.cancel(KNOT, "3lxyz2queue01", "one.yml"), "cancelled");
    await events.until((f) => statuses(f, "one.yml").some((e) => e.status === "cancelled"));
    assert.equal(await b.server.scheduler.cancel(KNOT, "3lxyz2queue01", "one.yml"), "finished");
    assert.equal(await b.server.scheduler.cancel(KNOT, "3lxyz2queue01", "nope.yml"), "not_found");
    await b.server.pipelines.acceptPipeline(KNOT, "3lxyz2queue04", p("four.yml", `touch ${mark("four")}`));
    await events.until((f) => statuses(f, "four.yml").some((e) => e.status === "success"));
    assert.deepEqual(
      statuses(events.frames, "two.yml").map((e) => e.status),
      ["pending", "pending", "cancelled"],
    );
    assert.ok(!existsSync(mark("two")), "a cancelled queued workflow ran");
    assert.ok(existsSync(mark("four")));

    // Never more than one workflow running at once (MAX_JOB_COUNT=1).
    let running = 0;
    for (const e of statuses(events.frames)) {
      if (e.status === "running") running++;
      if (["success", "failed", "cancelled", "timeout"].includes(String(e.status)) && running > 0) running--;
      assert.ok(running <= 1, "two workflows ran at once");
    }
    events.close();
  });
});

describe("spindle server: graceful stop and start on the same database", () => {
  it("a stop fails the running local workflow with a reason, keeps queued ones, and the next start runs them", async () => {
    const dir = mkdtempSync(join(tmpdir(), "loom-stop-"));
    const env = { SPINDLE_SERVER_MAX_JOB_COUNT: "1" };
    const mark = (n: string) => join(dir, `m-${n}`);
    const p = (name: string, command: string) => pipelineRecord([workflow(name, [{ name: "s", command }])]);
    let b = await bootServer({ dir, env });
    try {
      addRepo(b.server, ALICE, "loom");
      const events = new Collector(`${b.wsUrl}/events`);
      await events.opened;
      await b.server.pipelines.acceptPipeline(
        KNOT,
        "3lxyz2stop001",
        p("run.yml", `echo x >> ${mark("run")}; sleep 30`),
      );
      await events.until((f) => statuses(f, "run.yml").some((e) => e.status === "running"));
      await b.server.pipelines.acceptPipeline(
        KNOT,
        "3lxyz2stop002",
        p("wait.yml", `echo x >> ${mark("wait")}`),
      );
      await events.until((f) => statuses(f, "wait.yml").some((e) => e.status === "pending"));
      await waitFor(() => existsSync(mark("run")), 10_000, "the step started");
      await b.stop();
      b = await bootServer({ dir, env });
      const all = new Collector(`${b.wsUrl}/events?cursor=1`);
      await all.until((f) => statuses(f, "wait.yml").some((e) => e.status === "success"));
      assert.deepEqual(
        statuses(all.frames, "run.yml").map((e) => [e.status, e.error]),
        [
          ["pending", undefined],
          ["running", undefined],
          ["failed", "the spindle shut down while the workflow was running"],
        ],
      );
      assert.deepEqual(
        statuses(all.frames, "wait.yml").map((e) => [e.status, e.error]),
        [
          ["pending", undefined],
          ["pending", "queued: position 1 in the spindle's queue"],
          ["running", undefined],
          ["success", undefined],
        ],
      );
      assert.equal(readFileSync(mark("run"), "utf8"), "x\n");
      assert.equal(readFileSync(mark("wait"), "utf8"), "x\n");
      all.close();
    } finally {
      await b.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("spindle server: an unusable log directory", () => {
  it("fails the workflow with a reason instead of leaving it pending", async () => {
    const dir = mkdtempSync(join(tmpdir(), "loom-logdir-"));
    const notADir = join(dir, "logs-is-a-file");
    writeFileSync(notADir, "");
    const b = await bootServer({ dir, env: { SPINDLE_SERVER_LOG_DIR: notADir } });
    try {
      addRepo(b.server, ALICE, "loom");
      const events = new Collector(`${b.wsUrl}/events`);
      await events.opened;
      await b.server.pipelines.acceptPipeline(
        KNOT,
        "3lxyz2nolog02",
        pipelineRecord([workflow("n.yml", [{ name: "s", command: "true" }])]),
      );
      await events.until((f) => statuses(f, "n.yml").some((e) => e.status === "failed"));
      assert.equal(statuses(events.frames, "n.yml").at(-1)?.error, "cannot open the workflow log file");
      events.close();
    } finally {
      await b.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("spindle server: a run that outlives the process is resumed", () => {
  it("the next process recovers a running workflow as resumed and records its real outcome", async () => {
    const dir = mkdtempSync(join(tmpdir(), "loom-resume-"));
    // Like the Kubernetes engine: runs survive close(); the next process re-attaches.
    const local = new LocalEngine({ baseDir: join(dir, "runs"), killGraceMs: 1000 });
    const surviving: Engine = {
      name: "surviving",
      start: (run) => local.start(run),
      wait: (wid) => local.wait(wid),
      cancel: (wid, reason) => local.cancel(wid, reason),
      destroy: (wid) => local.destroy(wid),
      recover: (run) => local.recover(run),
      close: async () => {},
    };
    const mark = join(dir, "m-resume");
    let b = await bootServer({ dir, server: { engine: surviving } });
    try {
      addRepo(b.server, ALICE, "loom");
      const events = new Collector(`${b.wsUrl}/events`);
      await events.opened;
      await b.server.pipelines.acceptPipeline(
        KNOT,
        "3lxyz2resume2",
        pipelineRecord([workflow("r.yml", [{ name: "s", command: `echo x >> ${mark}; sleep 7; exit 5` }])]),
      );
      await events.until((f) => statuses(f, "r.yml").some((e) => e.status === "running"));
      await waitFor(() => existsSync(mark), 10_000, "the step started");
      events.close();
      await b.stop(); // the run keeps going
      b = await bootServer({ dir, server: { engine: surviving } });
      const all = new Collector(`${b.wsUrl}/events?cursor=1`);
      await all.until((f) => statuses(f, "r.yml").some((e) => e.status === "failed"), 30_000);
      assert.deepEqual(
        statuses(all.frames, "r.yml").map((e) => [e.status, e.exitCode]),
        [
          ["pending", undefined],
          ["running", undefined],
          ["failed", 5],
        ],
      );
      assert.equal(readFileSync(mark, "utf8"), "x\n");
      all.close();
    } finally {
      await b.stop();
      await local.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
