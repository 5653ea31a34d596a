import type { Engine, WorkflowOutcome, WorkflowRun } from "../src/engine/engine.ts";

/**
 * An engine that takes runs and holds them until cancelled or closed: the benches measure the
 * spindle (intake, queries, streams), not execution.
 */
export class HoldingEngine implements Engine {
  readonly name = "hold";
  readonly #runs = new Map<string, (o: WorkflowOutcome) => void>();
  readonly #done = new Map<string, Promise<WorkflowOutcome>>();
  async start(run: WorkflowRun): Promise<void> {
    this.#done.set(run.plan.wid, new Promise((r) => this.#runs.set(run.plan.wid, r)));
  }
  wait(wid: string): Promise<WorkflowOutcome> {
    return this.#done.get(wid) ?? Promise.resolve({ status: "failed", exitCode: null, failedStep: null });
  }
  async cancel(wid: string): Promise<void> {
    this.#runs.get(wid)?.({ status: "cancelled", exitCode: null, failedStep: null });
  }
  async destroy(wid: string): Promise<void> {
    await this.cancel(wid);
  }
  async recover(): Promise<{ state: "lost"; reason: string }> {
    return { state: "lost", reason: "bench" };
  }
  async close(): Promise<void> {
    for (const r of this.#runs.values())
      r({ status: "failed", exitCode: null, failedStep: null, error: "closed" });
  }
}
