/**
 * A fake engine for tests of the server (queue, statuses, logs, cancel, restarts) that need no
 * processes and no cluster. It keeps the whole contract of ../engine.ts (lifecycle, one
 * `running` then one final status, idempotent destroy, EngineError codes, callbacks never after
 * destroy) and runs no command: what each step prints and how it ends comes from `script`.
 *
 * Its log lines are real: the fake writes the runner protocol's events (step_start, output,
 * step_end, result) into a Relay, as a real runner's output would arrive, so the sink receives
 * exactly the LogLines a real engine delivers, masked the same way.
 *
 *   start ─▶ (next tick) running ─▶ each step: start line, its output, end line ─▶ final
 *   a `hang` step runs until cancel (cancelled), the plan's budget (timeout) or close (failed)
 *
 * What it does not do: run shell commands, enforce anything about images or architectures, or
 * survive a restart (`recover` always answers `lost`).
 */
import { Relay } from "../../relay/relay.ts";
import {
  RUNNER_PROTOCOL_VERSION,
  type RunnerEvent,
  type RunnerStep,
  type RunStatus,
} from "../../runner/protocol.ts";
import {
  type Engine,
  EngineError,
  type EngineRunPlan,
  type RecoverResult,
  type WorkflowOutcome,
  type WorkflowRun,
} from "../engine.ts";

/** How one step behaves. */
export interface FakeStep {
  /** What it prints, in order. A secret value in it is masked like any step output. */
  output?: { stream: "stdout" | "stderr"; text: string }[];
  /** Its exit status (default 0); a non-zero status fails the run at this step. */
  exitCode?: number;
  /** It never ends on its own: only cancel, the plan's timeout or close() stop it. */
  hang?: boolean;
}

export interface FakeEngineOptions {
  /** Engine name (default "fake"). */
  name?: string;
  /** The behaviour of each step (default: succeeds at once, printing nothing). */
  script?: (step: RunnerStep, plan: EngineRunPlan) => FakeStep;
}

/** The exit status of a step stopped by SIGTERM, as the runner reports it. */
const STOPPED_EXIT = 143;

interface FakeRun {
  readonly run: WorkflowRun;
  readonly relay: Relay;
  done: Promise<WorkflowOutcome>;
  /** Ends a hanging step: cancel, timeout or close. */
  stop(status: "cancelled" | "timeout" | "failed", reason: string): void;
  stopped: { status: "cancelled" | "timeout" | "failed"; reason: string } | undefined;
  final: WorkflowOutcome | undefined;
  destroyed: boolean;
  destroying: Promise<void> | undefined;
}

export class FakeEngine implements Engine {
  readonly name: string;
  readonly #script: (step: RunnerStep, plan: EngineRunPlan) => FakeStep;
  readonly #runs = new Map<string, FakeRun>();
  #closed = false;

  constructor(opts: FakeEngineOptions = {}) {
    this.name = opts.name ?? "fake";
    this.#script = opts.script ?? (() => ({}));
  }

  /** Workflow ids the engine knows (started and not destroyed). */
  get wids(): string[] {
    return [...this.#runs.keys()];
  }

  async start(run: WorkflowRun): Promise<void> {
    if (this.#closed) throw new EngineError("closed", "the fake engine is closed");
    const plan = run.plan;
    if (typeof plan?.wid !== "string" || plan.wid === "" || !Array.isArray(plan.steps)) {
      throw new EngineError("invalid", "a run needs a workflow id and a list of steps");
    }
    if (this.#runs.has(plan.wid)) throw new EngineError("duplicate", `workflow ${plan.wid} is already known`);
    let wake: () => void = () => {};
    const woken = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const r: FakeRun = {
      run,
      relay: new Relay({ sink: run.log, secrets: run.secrets.values() }),
      done: woken.then(() => r.final!),
      stop: (status, reason) => {
        r.stopped ??= { status, reason };
        wake();
      },
      stopped: undefined,
      final: undefined,
      destroyed: false,
      destroying: undefined,
    };
    r.done = this.#execute(r, woken);
    r.done.catch(() => {});
    this.#runs.set(plan.wid, r);
  }

  wait(wid: string): Promise<WorkflowOutcome> {
    const r = this.#runs.get(wid);
    if (!r) return Promise.reject(new EngineError("not_found", `workflow ${wid} is not known`));
    return r.done;
  }

  async cancel(wid: string, reason?: string): Promise<void> {
    const r = this.#runs.get(wid);
    if (!r || r.final) return;
    r.stop("cancelled", reason ?? "cancelled");
  }

  destroy(wid: string): Promise<void> {
    const r = this.#runs.get(wid);
    if (!r) return Promise.resolve();
    r.destroying ??= (async () => {
      r.stop("cancelled", "the workflow was destroyed");
      await r.done.catch(() => {});
      r.destroyed = true;
      if (this.#runs.get(wid) === r) this.#runs.delete(wid);
    })();
    return r.destroying;
  }

  async recover(_run: WorkflowRun): Promise<RecoverResult> {
    if (this.#closed) throw new EngineError("closed", "the fake engine is closed");
    return { state: "lost", reason: "the fake engine keeps no runs across restarts" };
  }

  /** Like the local engine: runs cannot outlive the process, so they end `failed`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const runs = [...this.#runs.values()];
    for (const r of runs) r.stop("failed", "the spindle stopped while the workflow ran");
    await Promise.allSettled(runs.map((r) => r.done));
  }

  async #execute(r: FakeRun, woken: Promise<void>): Promise<WorkflowOutcome> {
    const { plan } = r.run;
    // Like a real engine, nothing is reported before start() has returned.
    await new Promise((resolve) => setImmediate(resolve));
    const budget =
      plan.timeoutSeconds > 0
        ? setTimeout(
            () => r.stop("timeout", `timed out after ${plan.timeoutSeconds}s`),
            plan.timeoutSeconds * 1000,
          )
        : undefined;
    budget?.unref();
    let seq = 0;
    const emit = (event: DistributiveOmit<RunnerEvent, "time">) =>
      r.relay.handleLine(JSON.stringify({ ...event, time: new Date().toISOString() }));
    emit({ type: "hello", version: RUNNER_PROTOCOL_VERSION, pid: process.pid, shell: "fake" });
    if (!r.stopped) this.#status(r, { status: "running" });
    let result: { status: RunStatus; exitCode: number; failedStep: number | null } = {
      status: "success",
      exitCode: 0,
      failedStep: null,
    };
    for (const step of plan.steps) {
      if (r.stopped) break;
      const behaviour = this.#script(step, plan);
      emit({ type: "step_start", step: step.id, name: step.name, kind: step.kind, command: step.command });
      for (const out of behaviour.output ?? []) {
        emit({ type: "output", step: step.id, stream: out.stream, seq: ++seq, data: out.text });
      }
      if (behaviour.hang && !r.stopped) await woken;
      // Read again: cancel, timeout or close may have come while the step hung.
      const stopped = r.stopped as FakeRun["stopped"];
      const exitCode = stopped ? STOPPED_EXIT : (behaviour.exitCode ?? 0);
      emit({
        type: "step_end",
        step: step.id,
        exitCode,
        durationMs: 0,
        timedOut: stopped?.status === "timeout",
        cancelled: stopped?.status === "cancelled",
      });
      if (stopped) {
        result = {
          status: stopped.status === "timeout" ? "timeout" : "failed",
          exitCode,
          failedStep: step.id,
        };
        break;
      }
      if (exitCode !== 0) {
        result = { status: "failed", exitCode, failedStep: step.id };
        break;
      }
    }
    clearTimeout(budget);
    r.relay.end();
    await r.run.log.flush().catch(() => {});
    const outcome = this.#outcome(r, result);
    r.final = outcome;
    this.#status(r, outcome);
    return outcome;
  }

  #outcome(
    r: FakeRun,
    result: { status: RunStatus; exitCode: number; failedStep: number | null },
  ): WorkflowOutcome {
    const stopped = r.stopped;
    if (stopped?.status === "timeout")
      return {
        status: "timeout",
        exitCode: result.exitCode,
        failedStep: result.failedStep,
        error: stopped.reason,
      };
    if (stopped)
      return { status: stopped.status, exitCode: null, failedStep: result.failedStep, error: stopped.reason };
    if (result.status === "success") return { status: "success", exitCode: 0, failedStep: null };
    return { status: "failed", exitCode: result.exitCode, failedStep: result.failedStep };
  }

  #status(r: FakeRun, update: Parameters<WorkflowRun["onStatus"]>[0]): void {
    if (r.destroyed) return;
    try {
      r.run.onStatus(update);
    } catch {
      // The contract says onStatus does not throw.
    }
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
