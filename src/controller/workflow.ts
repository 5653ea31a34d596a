/**
 * One workflow of a run, one step further: keep a finished status, cancel, observe the Job, or
 * start it (capacity, profile, Secret, then the Job, after its spec ConfigMap if it needs one). Returns the workflow's next status
 * and what must happen after the status is written (delete a Job, look again later).
 */
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import {
  ANNOTATIONS,
  jobName as buildJobName,
  LABELS,
  type SpindleSetRef,
  shortHash,
} from "../api/contract/index.ts";
import {
  type SpindleSet,
  type SpindleSetSpec,
  TERMINAL_PHASES,
  type WorkflowSpec,
  type WorkflowStatus,
} from "../api/v1alpha1/spindleset.ts";
import { apiMessage, type PodCreateFailure, podCreateFailureOf, statusCode } from "./api.ts";
import { planWorkflow } from "./build/plan.ts";
import { nodeLabels, type ReconcileContext } from "./context.ts";
import { jobActive, NO_POD_CHECK_MS, type Observation, observeJob, stoppedByController } from "./observe.ts";
import { iso, ms } from "./time.ts";

export interface WorkflowStep {
  status: WorkflowStatus;
  /** This reconcile created the workflow's Job (its watch event brings the next reconcile). */
  created?: boolean;
  /** Delete this Job once the status is written. */
  kill?: { name: string; uid: string };
  requeueAfterMs?: number;
}

export async function stepWorkflow(
  ctx: ReconcileContext,
  ss: SpindleSet,
  spec: SpindleSetSpec,
  wf: WorkflowSpec,
  now: Date,
): Promise<WorkflowStep> {
  const prev = ss.status?.workflows.find((w) => w.name === wf.name);
  const name = buildJobName(ss.metadata.name!, wf.name);
  const job = ctx.jobs.get(`${ss.metadata.namespace}/${name}`);
  const ours = job && ownerUid(job) === ss.metadata.uid ? job : undefined;

  if (prev && TERMINAL_PHASES.includes(prev.phase)) {
    // A Job we stopped stays stopped (its delete may have failed last time).
    const kill = ours && jobActive(ours) && stoppedByController(prev.reason) ? ref(ours) : undefined;
    return { status: prev, ...(kill && { kill }) };
  }
  if (job && !ours) {
    return {
      status: waiting(prev, wf, "Pending", `waiting for Job ${name} of an earlier run of this name to go`),
      requeueAfterMs: 2000,
    };
  }
  // A Job that already finished on its own keeps its outcome over a late cancel.
  const cancel = spec.cancel || spec.cancelWorkflows.includes(wf.name);
  if (cancel && !(ours && !jobActive(ours))) {
    const status = finished(prev, wf, { phase: "cancelled", reason: "Cancelled", message: "cancelled" }, now);
    return { status, ...(ours && jobActive(ours) && { kill: ref(ours) }) };
  }
  if (ours) {
    const pods = podsOf(ctx, ss, wf, ours);
    const obs = observeJob({
      job: ours,
      pods,
      now,
      timeouts: ctx.config.timeouts,
      podCreateFailure: podCreateFailure(ctx, ours, pods, now),
    });
    return {
      status: observed(prev, wf, name, obs, ours.metadata?.annotations?.[ANNOTATIONS.profile]),
      ...(obs.kill && { kill: ref(ours) }),
      ...(obs.recheckAfterMs !== undefined && { requeueAfterMs: obs.recheckAfterMs }),
    };
  }
  if (prev?.jobName) {
    // Created before, but not in the cache: the cache may trail our create, or the Job is gone.
    const live = await ctx.api.getJob(name);
    if (live && ownerUid(live) === ss.metadata.uid) return { status: prev, requeueAfterMs: 1000 };
    const lost = {
      phase: "failed",
      reason: "JobLost",
      message: `Job ${name} disappeared before it finished`,
    } as const;
    return { status: finished(prev, wf, lost, now) };
  }
  return startWorkflow(ctx, ss, spec, wf, prev, now);
}

async function startWorkflow(
  ctx: ReconcileContext,
  ss: SpindleSet,
  spec: SpindleSetSpec,
  wf: WorkflowSpec,
  prev: WorkflowStatus | undefined,
  now: Date,
): Promise<WorkflowStep> {
  const name = buildJobName(ss.metadata.name!, wf.name);
  // Created by an earlier reconcile of this run, not in the Job cache yet (a burst, a watch that
  // lists again): its watch event brings the next reconcile; a second POST would get a 409.
  if (ctx.capacity.createdFor(name, ss.metadata.uid!)) {
    return {
      status: { ...(prev ?? {}), name: wf.name, ...scheduled(name, now) },
      created: true,
      requeueAfterMs: 1000,
    };
  }
  // No slot: say so before the Job is built (with 200 runs waiting, most reconciles end here).
  if (!ctx.capacity.hasRoom(name)) return waitForCapacity(ctx, prev, wf);
  const owner: SpindleSetRef = {
    name: ss.metadata.name!,
    namespace: ss.metadata.namespace!,
    uid: ss.metadata.uid!,
  };
  const plan = planWorkflow({
    owner,
    spec,
    workflowName: wf.name,
    nodes: nodeLabels(ctx.nodes),
    config: ctx.config,
  });
  if (!plan.ok) {
    return {
      status: finished(prev, wf, { phase: "failed", reason: plan.reason, message: plan.message }, now),
    };
  }
  const secret = await checkSecret(ctx, ss, spec, wf, prev, now);
  if (secret) return secret;
  if (!ctx.capacity.tryReserve(plan.jobName, ss.metadata.uid)) return waitForCapacity(ctx, prev, wf);
  let created: "created" | "exists";
  let creating = "ConfigMap";
  try {
    if (plan.configMap) await ctx.api.createConfigMap(plan.configMap);
    creating = "Job";
    created = await ctx.api.createJob(plan.job);
  } catch (err) {
    ctx.capacity.release(plan.jobName);
    // 400/422 will not change on retry (an admission policy, or a Job this controller should
    // never have built): end the workflow saying so, rather than retry it for ever. Other errors
    // (conflicts, throttling, an API server away) are retried by the queue.
    const code = statusCode(err);
    if (code === 400 || code === 422) {
      const message = `the API refused the workflow's ${creating}: ${apiMessage(err)}`;
      ctx.log.warn({ spindleset: ss.metadata.name, workflow: wf.name, job: plan.jobName, code }, message);
      return { status: finished(prev, wf, { phase: "failed", reason: "InternalError", message }, now) };
    }
    throw err;
  }
  ctx.log.info(
    { spindleset: ss.metadata.name, workflow: wf.name, job: plan.jobName, profile: plan.profile },
    created === "created" ? "job created" : "job adopted",
  );
  return {
    status: { name: wf.name, ...scheduled(plan.jobName, now), profile: plan.profile },
    created: true,
  };
}

function scheduled(jobName: string, now: Date) {
  return {
    phase: "pending",
    reason: "Scheduled",
    message: "Job created",
    jobName,
    startTime: iso(now)!,
  } as const;
}

/**
 * No free slot: the run waits in the capacity queue and is woken when a Job finishes; the
 * requeue is only a backstop (a missed wake-up costs `capacityRetryMs`, never a stuck run).
 */
function waitForCapacity(
  ctx: ReconcileContext,
  prev: WorkflowStatus | undefined,
  wf: WorkflowSpec,
): WorkflowStep {
  const max = ctx.config.maxConcurrentJobs;
  return {
    status: waiting(
      prev,
      wf,
      "WaitingForCapacity",
      `${max} of maxConcurrentJobs ${max} workflows are running`,
    ),
    requeueAfterMs: ctx.capacityRetryMs,
  };
}

/** The run's Secret must exist with every key the workflow reads before its Job is created. */
async function checkSecret(
  ctx: ReconcileContext,
  ss: SpindleSet,
  spec: SpindleSetSpec,
  wf: WorkflowSpec,
  prev: WorkflowStatus | undefined,
  now: Date,
): Promise<WorkflowStep | undefined> {
  if (wf.secretKeys.length === 0 || !spec.secretRef) return undefined;
  const name = spec.secretRef.name;
  const secret = await ctx.api.getSecret(name);
  if (!secret) {
    const age = now.getTime() - new Date(ss.metadata.creationTimestamp ?? now).getTime();
    if (age < ctx.secretWaitMs) {
      return { status: waiting(prev, wf, "Pending", `waiting for Secret ${name}`), requeueAfterMs: 1000 };
    }
    const message = `Secret ${name} does not exist`;
    return { status: finished(prev, wf, { phase: "failed", reason: "SecretMissing", message }, now) };
  }
  const data = { ...secret.data, ...secret.stringData };
  const missing = wf.secretKeys.filter((key) => !(key in data));
  if (missing.length === 0) return undefined;
  const message = `Secret ${name} lacks the keys ${missing.join(", ")}`;
  return { status: finished(prev, wf, { phase: "failed", reason: "SecretMissing", message }, now) };
}

/** The Job's FailedCreate events (from the shared cache) when it has had no pod for a while. */
function podCreateFailure(
  ctx: ReconcileContext,
  job: V1Job,
  pods: readonly V1Pod[],
  now: Date,
): PodCreateFailure | undefined {
  if (pods.length > 0 || !jobActive(job) || !job.metadata?.uid) return undefined;
  if (now.getTime() - ms(job.metadata.creationTimestamp, now) < NO_POD_CHECK_MS) return undefined;
  return podCreateFailureOf(ctx.failedCreates.byIndex(job.metadata.uid), job.metadata.uid);
}

function podsOf(ctx: ReconcileContext, ss: SpindleSet, wf: WorkflowSpec, job: V1Job): V1Pod[] {
  const hash = shortHash(wf.wid);
  return ctx.pods.byIndex(ss.metadata.name!).filter((pod) => {
    const labels = pod.metadata?.labels ?? {};
    return (
      labels[LABELS.workflow] === hash &&
      (pod.metadata?.ownerReferences ?? []).some((o) => o.uid === job.metadata?.uid)
    );
  });
}

function observed(
  prev: WorkflowStatus | undefined,
  wf: WorkflowSpec,
  jobName: string,
  obs: Observation,
  jobProfile: string | undefined,
): WorkflowStatus {
  const startTime = prev?.startTime ?? obs.startTime;
  const profile = prev?.profile ?? jobProfile;
  return {
    name: wf.name,
    phase: obs.phase,
    reason: obs.reason,
    ...(obs.message !== undefined && { message: obs.message.slice(0, 32768) }),
    jobName,
    ...(profile && { profile }),
    ...(startTime && { startTime }),
    ...(obs.finishTime && TERMINAL_PHASES.includes(obs.phase) && { finishTime: obs.finishTime }),
    ...(obs.exitCode !== undefined && { exitCode: obs.exitCode }),
  };
}

function waiting(
  prev: WorkflowStatus | undefined,
  wf: WorkflowSpec,
  reason: "Pending" | "WaitingForCapacity",
  message: string,
): WorkflowStatus {
  return { ...(prev ?? {}), name: wf.name, phase: "pending", reason, message };
}

function finished(
  prev: WorkflowStatus | undefined,
  wf: WorkflowSpec,
  end: Pick<WorkflowStatus, "phase" | "reason" | "message">,
  now: Date,
): WorkflowStatus {
  return {
    ...(prev ?? {}),
    name: wf.name,
    ...end,
    finishTime: iso(now)!,
    ...(prev?.exitCode === undefined && { exitCode: -1 }),
  };
}

function ownerUid(job: V1Job): string | undefined {
  return job.metadata?.ownerReferences?.find((o) => o.controller)?.uid;
}

function ref(job: V1Job): { name: string; uid: string } {
  return { name: job.metadata!.name!, uid: job.metadata!.uid! };
}
