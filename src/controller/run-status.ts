/**
 * The run-level status from the workflows' statuses (pure): phase, reason and progress for
 * `kubectl get`, the Succeeded condition (Unknown → True/False), start and completion times.
 */
import {
  CONDITION_SUCCEEDED,
  type SpindleSetStatus,
  type WorkflowStatus,
} from "../api/v1alpha1/spindleset.ts";
import { setCondition, summarizeRun } from "../api/v1alpha1/status.ts";
import { iso } from "./time.ts";

export function runStatus(
  previous: SpindleSetStatus | undefined,
  workflowNames: readonly string[],
  workflows: readonly WorkflowStatus[],
  generation: number | undefined,
  now: Date,
): SpindleSetStatus {
  const summary = summarizeRun(workflowNames, workflows);
  const finished = summary.progress === `${workflowNames.length}/${workflowNames.length}`;
  const starts = workflows.map((w) => w.startTime).filter((t): t is string => !!t);
  const startTime = previous?.startTime ?? starts.sort()[0];
  const failing = workflows.find((w) => w.reason === summary.reason && w.message);
  const message = finished
    ? `${summary.phase}: ${summary.progress} workflows finished${failing ? `; ${failing.name}: ${failing.message}` : ""}`
    : `${summary.progress} workflows finished`;
  const conditions = setCondition(
    previous?.conditions ?? [],
    {
      type: CONDITION_SUCCEEDED,
      status: finished ? (summary.phase === "success" ? "True" : "False") : "Unknown",
      reason: summary.reason,
      message: message.slice(0, 32768),
      ...(generation !== undefined && { observedGeneration: generation }),
    },
    now,
  );
  return {
    ...(generation !== undefined && { observedGeneration: generation }),
    phase: summary.phase,
    reason: summary.reason,
    progress: summary.progress,
    ...(startTime && { startTime }),
    // A run that grew (the engine adds workflows one at a time) finishes anew.
    ...(finished && {
      completionTime: (previous?.progress === summary.progress && previous.completionTime) || iso(now)!,
    }),
    workflows: [...workflows],
    conditions,
  };
}

/** True when every workflow of the spec has a terminal status. */
export function runFinished(status: SpindleSetStatus | undefined, workflowNames: readonly string[]): boolean {
  return !!status?.completionTime && status.progress === `${workflowNames.length}/${workflowNames.length}`;
}
