/**
 * The controller's per-workflow status (+ what the relay read from the runner) → the engine's
 * outcome, pure. The controller is the authority on the phase (it sees the pod, the Job, the
 * deadline, cancellation); the runner's `result` event adds what only the runner knows — the
 * exact step that failed and its exit code (the container's own exit code is 124 for a timeout,
 * 143 for a cancel) — when it agrees with the controller about the phase.
 */
import type { WorkflowStatus } from "../../api/v1alpha1/spindleset.ts";
import { TERMINAL_PHASES } from "../../api/v1alpha1/spindleset.ts";
import { maskSecrets } from "../../mask/masker.ts";
import type { RunnerResult } from "../../relay/relay.ts";
import type { FinalStatus, WorkflowOutcome } from "../engine.ts";

export function isFinal(ws: WorkflowStatus | undefined): ws is WorkflowStatus & { phase: FinalStatus } {
  return ws !== undefined && TERMINAL_PHASES.includes(ws.phase);
}

export interface OutcomeInput {
  status: WorkflowStatus & { phase: FinalStatus };
  result: RunnerResult | undefined;
  /** The reason given to cancel(), when the engine asked for the cancel. */
  cancelReason: string | undefined;
  /** Secret values: an error text is masked before it leaves the engine. */
  secrets: Iterable<string>;
  /** Why the log is incomplete, if it is (appended to a failure's error). */
  logProblem?: string;
}

export function outcomeFrom(input: OutcomeInput): WorkflowOutcome {
  const { status, result } = input;
  const phase = status.phase;
  if (phase === "success") return { status: "success", exitCode: 0, failedStep: null };
  const agrees = result !== undefined && result.status === phase;
  const exitCode = agrees
    ? result.exitCode
    : status.exitCode !== undefined && status.exitCode >= 0
      ? status.exitCode
      : null;
  let error =
    phase === "cancelled" && input.cancelReason !== undefined
      ? input.cancelReason
      : status.message || (agrees ? result.error : undefined) || reasonText(status.reason);
  if (input.logProblem && phase === "failed") error = `${error} (${input.logProblem})`;
  return {
    status: phase,
    exitCode,
    failedStep: agrees ? result.failedStep : null,
    error: maskSecrets(error, input.secrets),
  };
}

function reasonText(reason: string): string {
  // "StepFailed" → "step failed"
  return reason.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
}
