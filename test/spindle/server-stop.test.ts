/**
 * Stopping the spindle while a run outlives it (the Kubernetes engine leaves Jobs running for the
 * next process to recover): the run's log file is flushed and closed, not left open for the GC.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { Engine, WorkflowOutcome, WorkflowRun } from "../../src/engine/engine.ts";
import { ALICE, addRepo, bootServer, KNOT, pipelineRecord, waitFor, workflow } from "./server-kit.ts";

/** Runs that survive the process: close() leaves them, wait() never ends here. */
class OutlivingEngine implements Engine {
  readonly name = "kubernetes";
  readonly started: WorkflowRun[] = [];
  async start(run: WorkflowRun): Promise<void> {
    this.started.push(run);
    run.onStatus({ status: "running" });
    run.log.write({ kind: "data", content: "still building", time: "2026-01-01T00:00:00Z", step_id: 1 });
  }
  wait(): Promise<WorkflowOutcome> {
    return new Promise(() => {});
  }
  async cancel(): Promise<void> {}
  async destroy(): Promise<void> {}
  async recover(): Promise<{ state: "lost"; reason: string }> {
    return { state: "lost", reason: "test" };
  }
  async close(): Promise<void> {}
}

const openFiles = (dir: string): string[] =>
  readdirSync("/proc/self/fd")
    .map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return "";
      }
    })
    .filter((target) => target.startsWith(dir));

describe("spindle server: stop with a run in flight", () => {
  it("closes the run's log file with its lines in it", async () => {
    const engine = new OutlivingEngine();
    const b = await bootServer({ server: { engine } });
    const logDir = b.server.config.server.logDir;
    try {
      addRepo(b.server, ALICE, "loom");
      const record = pipelineRecord([workflow("ci.yml", [{ name: "build", command: "make" }])]);
      await b.server.pipelines.acceptPipeline(KNOT, "3lxyz2stop001", record);
      await waitFor(() => engine.started.length === 1, 10_000, "run started");
      assert.equal(openFiles(logDir).length, 1, "the log file is open while the run goes on");
      await b.server.stop();
      assert.deepEqual(openFiles(logDir), []);
      const wid = engine.started[0]?.plan.wid as string;
      assert.match(readFileSync(join(logDir, `${wid}.log`), "utf8"), /"content":"still building"/);
    } finally {
      await b.stop(); // idempotent server stop; removes the folder
    }
  });
});
