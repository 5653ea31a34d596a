/**
 * What a workflow's Job and pod say about it, as a status — a pure function of the objects, the
 * clock and the configured limits. This is also where the watchers live that end stuck runs with
 * a specific reason: an observation with `kill: true` means "record this terminal status, then
 * delete the Job" (an image that never pulls, a pod that never schedules, a missing secret, a
 * runner the engine reports silent). Runs that end on their own are only recorded; their Job
 * stays for `ttl.jobSecondsAfterFinished` so the engine can finish reading the pod's log.
 */
import type { V1ContainerStatus, V1Job, V1Pod } from "@kubernetes/client-node";
import { CONTAINERS, RUNNER_SILENT_ANNOTATION } from "../api/contract/index.ts";
import type { Phase, Reason } from "../api/v1alpha1/spindleset.ts";
import type { PodCreateFailure } from "./api.ts";
import { RUNNER_CANNOT_START, RUNNER_CANNOT_START_EXIT } from "./build/runner-image.ts";
import type { ControllerConfig } from "./config.ts";
import { iso, ms } from "./time.ts";

export interface Observation {
  phase: Phase;
  reason: Reason;
  message?: string;
  exitCode?: number;
  startTime?: string;
  finishTime?: string;
  /** Stop the run now: record the status, then delete the Job. */
  kill?: boolean;
  /** Look again after this long (a grace period runs out then). */
  recheckAfterMs?: number;
}

/** Reasons for which the controller itself stops a workflow's Job (deletes it while it runs). */
const STOPPED_BY_CONTROLLER: ReadonlySet<Reason> = new Set([
  "Cancelled",
  "ImagePullFailed",
  "Unschedulable",
  "PodCreateFailed",
  "SecretMissing",
  "RunnerSilent",
]);

/**
 * Whether a workflow that ended for `reason` had its Job stopped by the controller, so a Job of
 * it still active must go (its delete may have failed before). Any other end is the workflow's
 * own (a step failed, the Job's deadline): its Job stays, even while the cluster has not yet
 * marked it finished, so its pod and log stay for `ttl.jobSecondsAfterFinished`.
 */
export function stoppedByController(reason: Reason): boolean {
  return STOPPED_BY_CONTROLLER.has(reason);
}

export interface ObserveInput {
  job: V1Job;
  /** The Job's pods (backoffLimit 0: normally one). */
  pods: readonly V1Pod[];
  now: Date;
  timeouts: ControllerConfig["timeouts"];
  /** The job controller's FailedCreate events for this Job, when it has no pod (see ClusterApi). */
  podCreateFailure?: PodCreateFailure | undefined;
}

/**
 * The message of a workflow whose pod is on its way (no pod yet, being scheduled, pulling,
 * initialising) with nothing wrong: one message for all of them, so the run's status is written
 * once for the lot rather than at every step the pod takes (problems have messages of their own).
 */
const STARTING = "waiting for the Job's pod to start";

/** A Job without a pod this long gets its FailedCreate events read (creation takes milliseconds). */
export const NO_POD_CHECK_MS = 10_000;

const PULL_ERRORS = new Set(["ErrImagePull", "ImagePullBackOff"]);
const PULL_FATAL = new Set(["InvalidImageName", "ErrImageNeverPull"]);
/** The runner's exit status when its step budget ran out (src/runner/main.ts). */
const RUNNER_TIMEOUT_EXIT = 124;

export function observeJob(input: ObserveInput): Observation {
  const { job, now } = input;
  const pod = newestPod(input.pods);
  const startTime = iso(job.status?.startTime ?? job.metadata?.creationTimestamp);
  const finished = jobFinished(job, pod, now);
  if (finished) return { ...finished, ...(startTime && { startTime }) };
  const silent = job.metadata?.annotations?.[RUNNER_SILENT_ANNOTATION];
  if (silent !== undefined) {
    return end("RunnerSilent", `the runner sent nothing for too long: ${silent}`, now, { kill: true });
  }
  // The start time from the first look on, pod or not: a workflow's status is not written
  // again just because its pod appeared and brought the time along.
  const seen = pod ? observePod(pod, input) : noPod(input);
  return startTime && !seen.startTime ? { ...seen, startTime } : seen;
}

/**
 * No pod yet. Normally a moment's wait; but a pod the API refuses (Pod Security, a quota, a
 * webhook) never appears and no watched object changes, so look again until it does and end the
 * run once the refusals outlast `podCreateFailedSeconds`.
 */
function noPod(input: ObserveInput): Observation {
  const { job, now, timeouts } = input;
  const failure = input.podCreateFailure;
  if (failure) {
    const waited = now.getTime() - failure.since.getTime();
    const limit = timeouts.podCreateFailedSeconds * 1000;
    if (waited >= limit) {
      const message = `the Job's pod could not be created for ${Math.round(waited / 1000)}s: ${failure.message}`;
      return end("PodCreateFailed", message, now, { kill: true });
    }
    return pending(`the Job's pod cannot be created: ${failure.message}`, limit - waited);
  }
  const age = now.getTime() - ms(job.metadata?.creationTimestamp, now);
  return pending(STARTING, Math.max(age < NO_POD_CHECK_MS ? NO_POD_CHECK_MS - age : 5000, 1000));
}

/** A Job the job controller has finished: Complete or Failed. */
function jobFinished(job: V1Job, pod: V1Pod | undefined, now: Date): Observation | undefined {
  const complete = condition(job, "Complete");
  if (complete) {
    const at = iso(job.status?.completionTime ?? complete.lastTransitionTime);
    return { phase: "success", reason: "Succeeded", exitCode: 0, ...(at && { finishTime: at }) };
  }
  const failed = condition(job, "Failed");
  if (!failed) return undefined;
  const at = iso(failed.lastTransitionTime);
  if (failed.reason === "DeadlineExceeded") {
    return {
      phase: "timeout",
      reason: "DeadlineExceeded",
      message: `the Job ran past its deadline of ${job.spec?.activeDeadlineSeconds}s`,
      exitCode: -1,
      ...(at && { finishTime: at }),
    };
  }
  const why = (pod && podFailure(pod, now)) ?? undefined;
  return (
    why ??
    end("RunnerFailed", failed.message ?? failed.reason ?? "the Job failed", now, { at: at ?? undefined })
  );
}

function observePod(pod: V1Pod, input: ObserveInput): Observation {
  const { now, timeouts } = input;
  const failure = podFailure(pod, now);
  if (failure) return failure;
  if (pod.status?.phase === "Succeeded") return end("Succeeded", undefined, now, { exitCode: 0 });

  const scheduled = pod.status?.conditions?.find((c) => c.type === "PodScheduled");
  if (scheduled?.status === "False" && scheduled.reason === "Unschedulable") {
    const waited = now.getTime() - ms(scheduled.lastTransitionTime, now);
    const limit = timeouts.unschedulableSeconds * 1000;
    if (waited >= limit) {
      return end(
        "Unschedulable",
        `unschedulable for ${Math.round(waited / 1000)}s: ${scheduled.message ?? ""}`,
        now,
        {
          kill: true,
        },
      );
    }
    return pending(`unschedulable: ${scheduled.message ?? ""}`, limit - waited);
  }

  const stuck = stuckContainer(pod, input);
  if (stuck) return stuck;

  const runner = pod.status?.containerStatuses?.find((c) => c.name === CONTAINERS.runner);
  if (runner?.state?.running) {
    const started = iso(runner.state.running.startedAt ?? pod.status?.startTime);
    return { phase: "running", reason: "Running", ...(started && { startTime: started }) };
  }
  return pending(STARTING);
}

/** Image pulls past their grace, and containers that can never start. */
function stuckContainer(pod: V1Pod, input: ObserveInput): Observation | undefined {
  const { now, timeouts } = input;
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  for (const status of statuses) {
    const waiting = status.state?.waiting;
    if (!waiting?.reason) continue;
    const what = `${status.name} (${status.image})`;
    if (PULL_FATAL.has(waiting.reason)) {
      return end("ImagePullFailed", `${what}: ${waiting.reason}: ${waiting.message ?? ""}`, now, {
        kill: true,
      });
    }
    if (PULL_ERRORS.has(waiting.reason)) {
      const waited = now.getTime() - pullingSince(pod, status, now);
      const limit = timeouts.imagePullGraceSeconds * 1000;
      if (waited >= limit) {
        return end("ImagePullFailed", `${what}: ${waiting.message ?? waiting.reason}`, now, { kill: true });
      }
      return pending(`${what}: ${waiting.reason}`, limit - waited);
    }
    if (waiting.reason === "CreateContainerConfigError" && /secret/i.test(waiting.message ?? "")) {
      return end("SecretMissing", `${status.name}: ${waiting.message}`, now, { kill: true });
    }
  }
  return undefined;
}

/**
 * When pulling of `status`'s image began, as far as the pod tells: a container waits for the
 * init containers before it, so the last of their finish times, else the pod's start.
 */
function pullingSince(pod: V1Pod, status: V1ContainerStatus, now: Date): number {
  let since = ms(pod.status?.startTime ?? pod.metadata?.creationTimestamp, now);
  for (const init of pod.status?.initContainerStatuses ?? []) {
    if (init.name === status.name) break;
    const done = init.state?.terminated?.finishedAt;
    if (done) since = Math.max(since, ms(done, now));
  }
  return since;
}

/** Why a pod failed, if it did (or an init container already did). */
export function podFailure(pod: V1Pod, now: Date): Observation | undefined {
  const disruption = pod.status?.conditions?.find(
    (c) => c.type === "DisruptionTarget" && c.status === "True",
  );
  if (pod.status?.reason === "Evicted") return end("Evicted", pod.status.message, now);
  if (pod.status?.phase === "Failed" && disruption) {
    const lost = disruption.reason === "DeletionByTaintManager" || disruption.reason === "DeletionByPodGC";
    return end(lost ? "NodeLost" : "Evicted", disruption.message ?? disruption.reason, now);
  }
  for (const init of pod.status?.initContainerStatuses ?? []) {
    const t = init.state?.terminated;
    if (!t || t.exitCode === 0) continue;
    const reason = init.name === CONTAINERS.cloneRepo ? "CloneFailed" : "InitContainerFailed";
    return end(reason, `${init.name} exited ${t.exitCode}: ${tail(t.message ?? t.reason ?? "")}`, now, {
      exitCode: -1,
      at: t.finishedAt,
    });
  }
  const runner = pod.status?.containerStatuses?.find((c) => c.name === CONTAINERS.runner);
  const t = runner?.state?.terminated;
  if (!t) {
    return pod.status?.phase === "Failed"
      ? end("RunnerFailed", pod.status.message ?? "pod failed", now)
      : undefined;
  }
  if (t.reason === "OOMKilled") {
    return end("OOMKilled", "the runner's container ran out of memory", now, {
      exitCode: t.exitCode,
      at: t.finishedAt,
    });
  }
  if (t.exitCode === 0) return undefined;
  // The runner never ran (the image's runtime could not start the launcher, or the launcher could
  // not start Node): no step ran, so no step failed.
  const cannotStart =
    t.exitCode === RUNNER_CANNOT_START_EXIT
      ? (t.message ?? "").split("\n").find((l) => l.startsWith(RUNNER_CANNOT_START))
      : undefined;
  if (cannotStart || t.reason === "StartError" || t.reason === "ContainerCannotRun") {
    const why =
      cannotStart?.slice(RUNNER_CANNOT_START.length).trim() ?? `${t.reason}: ${tail(t.message ?? "")}`;
    return end("RunnerFailed", `the runner could not start: ${why}`, now, {
      exitCode: t.exitCode,
      at: t.finishedAt,
    });
  }
  if (t.exitCode === RUNNER_TIMEOUT_EXIT) {
    return end("TimedOut", "the workflow's time budget ran out", now, {
      exitCode: t.exitCode,
      at: t.finishedAt,
    });
  }
  return end("StepFailed", `the runner exited ${t.exitCode}`, now, {
    exitCode: t.exitCode,
    at: t.finishedAt,
  });
}

function end(
  reason: Reason,
  message: string | undefined,
  now: Date,
  extra: { kill?: boolean; exitCode?: number; at?: Date | string | undefined } = {},
): Observation {
  const phase: Phase = reason === "Succeeded" ? "success" : reason === "TimedOut" ? "timeout" : "failed";
  return {
    phase,
    reason,
    ...(message !== undefined && { message }),
    ...(extra.exitCode !== undefined && { exitCode: extra.exitCode }),
    finishTime: iso(extra.at) ?? iso(now)!,
    ...(extra.kill && { kill: true }),
  };
}

function pending(message: string, recheckAfterMs?: number): Observation {
  return {
    phase: "pending",
    reason: "Scheduled",
    message,
    ...(recheckAfterMs !== undefined && { recheckAfterMs: Math.max(1000, recheckAfterMs) }),
  };
}

export function jobActive(job: V1Job): boolean {
  return !job.metadata?.deletionTimestamp && !condition(job, "Complete") && !condition(job, "Failed");
}

function condition(job: V1Job, type: string) {
  return job.status?.conditions?.find((c) => c.type === type && c.status === "True");
}

function newestPod(pods: readonly V1Pod[]): V1Pod | undefined {
  return [...pods].sort(
    (a, b) => ms(b.metadata?.creationTimestamp, 0) - ms(a.metadata?.creationTimestamp, 0),
  )[0];
}

function tail(text: string, max = 512): string {
  const trimmed = text.trim();
  return trimmed.length > max ? `…${trimmed.slice(-max)}` : trimmed;
}
