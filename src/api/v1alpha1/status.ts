/**
 * Pure helpers for SpindleSet status: the run-level summary `kubectl get` shows, and
 * condition updates that keep lastTransitionTime meaningful.
 */
import type { Condition, Phase, Reason, WorkflowStatus } from "./spindleset.ts";
import { TERMINAL_PHASES } from "./spindleset.ts";

export interface RunSummary {
  phase: Phase;
  reason: Reason;
  /** `finished/total`. */
  progress: string;
}

/** Outcome precedence when every workflow has finished: the worst one names the run. */
const OUTCOME_ORDER: Phase[] = ["failed", "timeout", "cancelled", "success"];

/**
 * The run's phase from its workflows' statuses. `workflowNames` are the spec's workflows; one
 * with no status yet counts as pending. While anything is unfinished the run is running (if any
 * workflow is) or pending; once all are finished, the worst outcome wins, and its reason with it.
 */
export function summarizeRun(
  workflowNames: readonly string[],
  statuses: readonly WorkflowStatus[],
): RunSummary {
  const byName = new Map(statuses.map((s) => [s.name, s]));
  const list = workflowNames.map(
    (name): Pick<WorkflowStatus, "phase" | "reason"> =>
      byName.get(name) ?? { phase: "pending", reason: "Pending" },
  );
  const finished = list.filter((s) => TERMINAL_PHASES.includes(s.phase));
  const progress = `${finished.length}/${list.length}`;
  if (finished.length < list.length) {
    const running = list.find((s) => s.phase === "running");
    if (running) return { phase: "running", reason: "Running", progress };
    const waiting = list.find((s) => !TERMINAL_PHASES.includes(s.phase));
    return { phase: "pending", reason: waiting?.reason ?? "Pending", progress };
  }
  for (const phase of OUTCOME_ORDER) {
    const hit = list.find((s) => s.phase === phase);
    if (hit) return { phase, reason: hit.reason, progress };
  }
  // No workflows at all cannot pass validation (minItems 1); treat it as an empty success.
  return { phase: "success", reason: "Succeeded", progress };
}

/**
 * Sets a condition by type, keeping lastTransitionTime when the status did not change (API
 * conventions: it marks a transition, not the last write). Returns a new list.
 */
export function setCondition(
  conditions: readonly Condition[],
  next: Omit<Condition, "lastTransitionTime">,
  now: Date,
): Condition[] {
  const previous = conditions.find((c) => c.type === next.type);
  const lastTransitionTime =
    previous && previous.status === next.status
      ? previous.lastTransitionTime
      : now.toISOString().replace(/\.\d{3}Z$/, "Z");
  const updated: Condition = { ...next, lastTransitionTime };
  return previous ? conditions.map((c) => (c.type === next.type ? updated : c)) : [...conditions, updated];
}
