/**
 * The engine interface: the only thing the spindle server knows about where workflows run.
 * Every implementation runs one behaviour suite (test/engine/suite.ts): the local engine
 * (src/engine/local, the runner as a child process) in local.test.ts; the Kubernetes engine
 * (src/engine/kubernetes) on the real control plane in kubernetes-suite.test.ts, where kwok runs
 * no containers and the harness runs the runner for the pod, so the one case it cannot stage
 * (cancel while a step's output is being read) is skipped there with that reason.
 * src/engine/fake is a fake for server tests: the same contract, steps scripted instead of run.
 *
 * Lifecycle of one workflow run, keyed by its workflow id (wid, spec §4.3):
 *
 *   start(run) ─▶ onStatus(running) ─▶ set up ─▶ steps ─▶ onStatus(final) ─▶ resources released
 *                                                                  │
 *                                        wait(wid) resolves ◀──────┘     destroy(wid) forgets it
 *
 * - `start` returns once the engine has taken the run; everything after that (set-up errors
 *   included) is reported through the run's sinks, never thrown. It rejects only with an
 *   EngineError: `duplicate` (that wid is already known), `closed`, or `invalid` (a plan the
 *   engine cannot take at all).
 * - `onStatus` is called with `running` at most once, then with exactly one final status
 *   (success | failed | timeout | cancelled). `pending` belongs to the server's queue and is
 *   never reported by an engine. The final call comes after every log line of the run has been
 *   written to (and flushed from) the log sink, and after the run's processes, workspaces and
 *   other resources are gone, so a server that sees the final status may delete anything.
 * - `wait(wid)` resolves with the same final outcome, for as long as the engine knows the wid
 *   (until destroy); for an unknown wid it rejects with EngineError `not_found`.
 * - `cancel(wid)` asks a run to stop; its final status is `cancelled` unless it had already
 *   finished. Cancelling a finished or unknown run does nothing.
 * - `destroy(wid)` cancels the run if needed, waits for its cleanup and forgets it. It is
 *   idempotent: any number of calls, for known, finished or unknown wids, succeed.
 *
 * Concurrency: runs with different wids are independent and may all be in flight at once (the
 * server's queue bounds how many). Calls for one wid may overlap (cancel during start, two
 * destroys) and stay safe. Callbacks are never called after destroy() has resolved.
 *
 * Restarts: a new server process calls `recover(run)` for every run its database still shows as
 * running. The engine either re-attaches (`resumed`: the sinks receive the rest of the logs and
 * the final status as if the run had been started by this process), or reports the outcome the
 * run reached while no server watched (`finished`: its runner's durable result, with the real
 * status and exit code), or reports it `lost` with a reason; for `finished` and `lost` it has
 * already released whatever the run left behind. The server records the outcome, or `failed`
 * with the reason. `close()` stops the engine for a shutdown: runs that can outlive the
 * process (Kubernetes) are left running for the next process to recover; runs that cannot
 * (local children) are stopped and reported `failed` with a reason.
 *
 * Secrets: values travel only in `WorkflowRun.secrets` and reach the steps through the engine's
 * private channel (child environment, Kubernetes Secret); they never appear in specs, resources
 * or errors, and every log line is masked before it reaches the sink.
 */
import type { WorkflowStatus } from "../protocol/status.ts";
import type { LogSink } from "../relay/sink.ts";
import type { RunnerStep } from "../runner/protocol.ts";

export type { WorkflowStatus };
export type FinalStatus = "success" | "failed" | "timeout" | "cancelled";

/** How a run ended. */
export interface WorkflowOutcome {
  status: FinalStatus;
  /** Exit code of the failing step; 0 on success; null when no step exit code applies. */
  exitCode: number | null;
  /** Step id that failed, timed out or was cancelled; null when none did. */
  failedStep: number | null;
  /** Why it did not succeed (never holds a secret value). */
  error?: string;
}

export type StatusUpdate = { status: "running" } | ({ status: FinalStatus } & WorkflowOutcome);

/**
 * The parts of a resolved workflow (src/workflow's RunPlan) an engine needs; a RunPlan is
 * accepted as is. Frozen when the run starts.
 */
export interface EngineRunPlan {
  pipeline: { knot: string; rkey: string };
  workflowName: string;
  /** Workflow id (spec §4.3): the key of the run everywhere. */
  wid: string;
  engine: string;
  image: string;
  architecture: string;
  steps: RunnerStep[];
  /** Secret keys the steps refer to; values come with the run. */
  secretKeys: string[];
  /** Budget for all steps; 0 = none. */
  timeoutSeconds: number;
  /** `engine: microvm`: the image name to map and the services/virtualisation asked for. */
  microvm?: {
    image: string;
    services: string[];
    virtualisation: string[];
    postgresql?: {
      ensureDatabases: string[];
      ensureUsers: { name: string; ensureDBOwnership: boolean }[];
    };
    redis?: { port: number };
    /** `services.mysql` or `services.mariadb`: one MariaDB server. */
    mysql?: {
      ensureDatabases: string[];
      ensureUsers: { name: string; ensurePermissions: { on: string; privileges: string }[] }[];
    };
  };
  /**
   * The clone the system step `stepId` performs, as data (absent: no clone, or an error step).
   * An engine may clone outside the image instead (Kubernetes: the clone-repo init container,
   * which never sees secrets) and let that step only report it.
   */
  clone?: { url: string; sha?: string; depth: number; submodules: boolean; stepId: number };
}

export interface WorkflowRun {
  plan: EngineRunPlan;
  /** Secret values by key (the repo's secrets). */
  secrets: ReadonlyMap<string, string>;
  /** Receives `running`, then one final status. Must not throw. */
  onStatus(update: StatusUpdate): void;
  /** Receives every log line of the run, already masked. */
  log: LogSink;
  /** Optional: milestones before `running`, for traces (Kubernetes: the workflow's Job exists). Must not throw. */
  onMilestone?(what: "job_created"): void;
}

export type RecoverResult =
  | { state: "resumed" }
  | { state: "finished"; outcome: WorkflowOutcome }
  | { state: "lost"; reason: string };

export interface Engine {
  /** Engine name as written in workflow files (`engine:`), e.g. "local", "kubernetes". */
  readonly name: string;
  start(run: WorkflowRun): Promise<void>;
  wait(wid: string): Promise<WorkflowOutcome>;
  cancel(wid: string, reason?: string): Promise<void>;
  destroy(wid: string): Promise<void>;
  recover(run: WorkflowRun): Promise<RecoverResult>;
  close(): Promise<void>;
}

export type EngineErrorCode = "duplicate" | "closed" | "invalid" | "not_found";

export class EngineError extends Error {
  override readonly name = "EngineError";
  readonly code: EngineErrorCode;
  constructor(code: EngineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
