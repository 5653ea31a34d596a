/**
 * reconcile(key): one SpindleSet, read from the cache, brought one step closer to its spec.
 * A short ladder of early returns; every decision about a single workflow is in workflow.ts,
 * every Kubernetes object comes from the pure builders in build/.
 *
 *   gone or being deleted           → nothing (owner references take the children)
 *   spec invalid                    → every unfinished workflow failed/InvalidSpec
 *   finished                        → stopped Jobs stay stopped; TTL delete, or requeue for it
 *   otherwise, per workflow         → observe its Job / cancel / start it (workflow.ts)
 *                                   → write status (resourceVersion-guarded), then delete the
 *                                     Jobs of runs that were stopped, so the reason sticks
 */
import {
  parseSpindleSetSpec,
  type SpindleSet,
  type SpindleSetStatus,
  TERMINAL_PHASES,
  type WorkflowStatus,
} from "../api/v1alpha1/spindleset.ts";
import { setCondition } from "../api/v1alpha1/status.ts";
import { expireRun } from "./cleanup.ts";
import type { ReconcileContext } from "./context.ts";
import type { ProcessResult } from "./queue.ts";
import { runFinished, runStatus } from "./run-status.ts";
import { iso } from "./time.ts";
import { stepWorkflow, type WorkflowStep } from "./workflow.ts";

/** After a create, look again this soon even if the Job's watch event never comes. */
const CREATED_RECHECK_MS = 5000;

/** Workflow reasons that get no Event (see writeStatus). */
const QUIET_REASONS: ReadonlySet<string> = new Set(["Scheduled", "Running"]);

export async function reconcile(ctx: ReconcileContext, key: string): Promise<ProcessResult | undefined> {
  const ss = ctx.spindleSets.get(key);
  const waits = await stepRun(ctx, ss);
  // In the capacity queue while a workflow waits for a slot, out of it otherwise.
  if (waits?.waiting) ctx.capacity.wait(key);
  else ctx.capacity.done(key);
  return waits?.result;
}

/** reconcile's ladder; `waiting` says whether a workflow of the run waits for capacity. */
async function stepRun(
  ctx: ReconcileContext,
  ss: SpindleSet | undefined,
): Promise<{ result: ProcessResult | undefined; waiting: boolean } | undefined> {
  if (!ss || ss.metadata.deletionTimestamp) return undefined;
  const now = ctx.now();
  const parsed = parseSpindleSetSpec(ss.spec);
  if (!parsed.ok) return { result: await invalidSpec(ctx, ss, parsed.issues, now), waiting: false };
  const spec = parsed.value;
  const names = spec.workflows.map((wf) => wf.name);
  if (runFinished(ss.status, names)) return { result: await expireRun(ctx, ss, now), waiting: false };

  const steps: WorkflowStep[] = [];
  for (const workflow of spec.workflows) steps.push(await stepWorkflow(ctx, ss, spec, workflow, now));
  const waiting = steps.some((s) => s.status.reason === "WaitingForCapacity");
  const next = runStatus(
    ss.status,
    names,
    steps.map((s) => s.status),
    ss.metadata.generation,
    now,
  );
  // A Job just created: its watch event brings the next reconcile, which writes what it finds
  // (one status write instead of "created" and then "waiting for its pod"), and this worker is
  // free for the next run one round trip sooner. A status that must stick before a Job is
  // deleted is written now.
  if (steps.some((s) => s.created) && !steps.some((s) => s.kill)) {
    const wait = Math.min(CREATED_RECHECK_MS, ...steps.map((s) => s.requeueAfterMs ?? CREATED_RECHECK_MS));
    return { result: { requeueAfterMs: wait }, waiting };
  }
  await writeStatus(ctx, ss, next);
  for (const step of steps) {
    if (!step.kill) continue;
    await ctx.api.deleteJob(step.kill.name, step.kill.uid);
    ctx.log.info(
      {
        spindleset: ss.metadata.name,
        workflow: step.status.name,
        job: step.kill.name,
        reason: step.status.reason,
      },
      "job deleted",
    );
  }
  const waits = steps.map((s) => s.requeueAfterMs).filter((ms): ms is number => ms !== undefined);
  if (runFinished(next, names))
    return { result: { requeueAfterMs: ctx.config.ttl.spindleSetSecondsAfterFinished * 1000 }, waiting };
  return { result: waits.length > 0 ? { requeueAfterMs: Math.min(...waits) } : undefined, waiting };
}

/** Writes `next` unless it says nothing new; logs every workflow whose phase or reason moved. */
async function writeStatus(ctx: ReconcileContext, ss: SpindleSet, next: SpindleSetStatus): Promise<void> {
  if (stable(ss.status ?? {}) === stable(next)) return;
  // A merge patch keeps what it does not mention: a run that is unfinished again drops its time.
  const reopened = ss.status?.completionTime && !next.completionTime;
  const body = reopened ? ({ ...next, completionTime: null } as unknown as SpindleSetStatus) : next;
  const key = `${ss.metadata.namespace}/${ss.metadata.name}`;
  ctx.written?.writing(key);
  let written: SpindleSet | undefined;
  try {
    written = await ctx.api.patchStatus(ss.metadata.name!, ss.metadata.resourceVersion!, body);
  } finally {
    ctx.written?.wrote(key, written?.metadata?.resourceVersion);
  }
  const before = new Map((ss.status?.workflows ?? []).map((w) => [w.name, w]));
  for (const w of next.workflows) {
    const old = before.get(w.name);
    if (old?.phase === w.phase && old.reason === w.reason) continue;
    ctx.log.info(
      {
        spindleset: ss.metadata.name,
        workflow: w.name,
        phase: w.phase,
        reason: w.reason,
        ...(w.jobName && { job: w.jobName }),
        ...(w.exitCode !== undefined && { exitCode: w.exitCode }),
      },
      "workflow status changed",
    );
    // Counted here, after the guarded write succeeded: a 409 retry never counts twice.
    if (TERMINAL_PHASES.includes(w.phase) && !TERMINAL_PHASES.includes(old?.phase ?? "pending"))
      ctx.metrics?.workflowsFinished.inc({ phase: w.phase, reason: w.reason });
    // Routine progress (a Job created, its pod running) is in the status alone: an Event each
    // would be two more writes per workflow for the API server. Waiting, stuck and final
    // states get one.
    if (QUIET_REASONS.has(w.reason)) continue;
    const bad = w.phase === "failed" || w.phase === "timeout";
    ctx.events?.record(ss, {
      type: bad ? "Warning" : "Normal",
      reason: w.reason,
      action: w.phase,
      note: `${w.name}: ${w.message ?? w.phase}`,
    });
  }
}

function invalidSpec(ctx: ReconcileContext, ss: SpindleSet, issues: string[], now: Date): Promise<undefined> {
  const message = issues.join("; ").slice(0, 32768);
  const raw = (ss.spec as { workflows?: unknown } | undefined)?.workflows;
  const names = Array.isArray(raw)
    ? raw
        .map((w) => (w as { name?: unknown })?.name)
        .filter((n): n is string => typeof n === "string" && n !== "")
    : [];
  const previous = new Map((ss.status?.workflows ?? []).map((w) => [w.name, w]));
  const workflows = [...new Set(names)].map((name): WorkflowStatus => {
    const old = previous.get(name);
    if (old && TERMINAL_PHASES.includes(old.phase)) return old;
    return { name, phase: "failed", reason: "InvalidSpec", message, finishTime: iso(now)!, exitCode: -1 };
  });
  let status: SpindleSetStatus;
  if (workflows.length > 0) {
    status = runStatus(ss.status, names, workflows, ss.metadata.generation, now);
  } else {
    const conditions = setCondition(
      ss.status?.conditions ?? [],
      { type: "Succeeded", status: "False", reason: "InvalidSpec", message },
      now,
    );
    status = { phase: "failed", reason: "InvalidSpec", progress: "0/0", workflows: [], conditions };
    if (ss.metadata.generation !== undefined) status.observedGeneration = ss.metadata.generation;
  }
  ctx.log.warn({ spindleset: ss.metadata.name, issues }, "spindleset spec invalid");
  return writeStatus(ctx, ss, status).then(() => undefined);
}

/** JSON with sorted keys: the apiserver does not keep our key order. */
export function stable(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
        )
      : v,
  );
}
