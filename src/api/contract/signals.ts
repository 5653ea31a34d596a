/**
 * How the spindle's Kubernetes engine talks to the controller beyond the SpindleSet spec.
 *
 * Runner silence: only the engine reads the pod's log, so only it sees the runner's heartbeats.
 * When none arrived for `timeouts.runnerSilentSeconds`, it annotates the workflow's Job (its name
 * is in `status.workflows[].jobName`) with RUNNER_SILENT_ANNOTATION; the value is a short
 * human-readable note (e.g. "no event since 2026-11-27T17:00:00Z"). The controller then records
 * the workflow as failed with reason RunnerSilent and deletes the Job (and with it the pod).
 *
 *   PATCH jobs/<jobName>  {"metadata":{"annotations":{"loom.tangled.sh/runner-silent":"..."}}}
 *
 * Cancelling: `spec.cancel: true` cancels every unfinished workflow of the run;
 * `spec.cancelWorkflows: [name, ...]` cancels single workflows (Tangled's cancelPipeline names
 * one). Either way the controller records `cancelled`/Cancelled and deletes the Job.
 */
import { LABEL_PREFIX } from "../v1alpha1/group.ts";

export const RUNNER_SILENT_ANNOTATION = `${LABEL_PREFIX}/runner-silent`;
