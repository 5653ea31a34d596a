/**
 * Cleanup. Two parts:
 *
 * - expireRun: a finished SpindleSet is deleted `ttl.spindleSetSecondsAfterFinished` after its
 *   completionTime (owner references take its Jobs, pods, Secret and ConfigMaps with it);
 *   called by the reconciler, which requeues the key for the moment the TTL runs out.
 * - sweepOrphans: at start and periodically, objects with Loom's labels whose SpindleSet is gone
 *   (or is a newer SpindleSet of the same name), and SpindleSets the spindle no longer knows
 *   (when an `isKnown` callback is given), except those labelled loom.tangled.sh/hand-made=true
 *   (a SpindleSet applied by hand, as config/samples does, is unknown to the spindle). Every
 *   "gone" is confirmed with a live read, never the cache alone, and deletes carry a uid
 *   precondition, so a sweep racing a new run cannot delete the wrong object.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { LABELS } from "../api/contract/index.ts";
import type { ListResult } from "../api/informer.ts";
import { type SpindleSet, TERMINAL_PHASES } from "../api/v1alpha1/spindleset.ts";
import { type ClusterApi, paged } from "./api.ts";
import type { ReconcileContext } from "./context.ts";
import { jobActive, stoppedByController } from "./observe.ts";
import type { ProcessResult } from "./queue.ts";
import { ms } from "./time.ts";

export async function expireRun(
  ctx: ReconcileContext,
  ss: SpindleSet,
  now: Date,
): Promise<ProcessResult | undefined> {
  // Jobs the controller stopped stay stopped (a delete may have failed before the run finished).
  // A workflow that ended on its own keeps its Job: the cluster may not have marked it finished
  // yet, and deleting it would take the pod and its log before anyone read them.
  for (const w of ss.status?.workflows ?? []) {
    if (!w.jobName || !TERMINAL_PHASES.includes(w.phase) || !stoppedByController(w.reason)) continue;
    const job = ctx.jobs.get(`${ss.metadata.namespace}/${w.jobName}`);
    const owned = job?.metadata?.ownerReferences?.some((o) => o.uid === ss.metadata.uid);
    if (job && owned && jobActive(job)) await ctx.api.deleteJob(w.jobName, job.metadata!.uid!);
  }
  const ttlMs = ctx.config.ttl.spindleSetSecondsAfterFinished * 1000;
  const left = ms(ss.status?.completionTime, now) + ttlMs - now.getTime();
  if (left > 0) return { requeueAfterMs: left };
  await ctx.api.deleteSpindleSet(ss.metadata.name!, ss.metadata.uid!);
  ctx.log.info({ spindleset: ss.metadata.name }, "finished spindleset deleted after its ttl");
  return undefined;
}

/** Answers whether the spindle still knows a pipeline run; absent = skip that part. */
export type IsKnown = (knot: string, rkey: string) => boolean | Promise<boolean>;

export interface SweepResult {
  deleted: { kind: string; name: string }[];
}

export interface SweepOptions {
  isKnown?: IsKnown | undefined;
  /**
   * The controller's cached SpindleSet of this name, if any. An object its cached run owns is
   * kept without asking the API server (one GET per run made the sweep of a namespace with
   * thousands of runs cost thousands of requests); anything else is checked with a live read
   * before it is deleted, so a cache that trails the cluster can only keep an object longer.
   */
  cached?: ((name: string) => SpindleSet | undefined) | undefined;
  /** SpindleSets younger than this are never swept as unknown (default 60 s): the engine
   * records a run in its database before it creates the SpindleSet, but give it slack. */
  unknownMinAgeMs?: number | undefined;
  now?: Date;
}

export async function sweepOrphans(
  api: ClusterApi,
  log: Logger,
  opts: SweepOptions = {},
): Promise<SweepResult> {
  const { isKnown } = opts;
  const now = opts.now ?? new Date();
  const minAge = opts.unknownMinAgeMs ?? 60_000;
  const deleted: SweepResult["deleted"] = [];
  const selector = api.managedSelector();
  const ns = api.namespace;
  // In pages, keeping only the metadata the sweep reads: the full objects of a namespace's Jobs,
  // pods and ConfigMaps (pod templates, scripts) held together were the controller's largest
  // peak of memory, and V8 keeps a peak's pages long after.
  const page = { namespace: ns, labelSelector: selector };
  type List = (p: { limit: number; _continue?: string }) => Promise<ListResult<KubernetesObject>>;
  const kinds: [kind: "Job" | "Pod" | "Secret" | "ConfigMap", list: List][] = [
    ["Job", (p) => api.batch.listNamespacedJob({ ...page, ...p }) as Promise<ListResult<KubernetesObject>>],
    ["Pod", (p) => api.core.listNamespacedPod({ ...page, ...p }) as Promise<ListResult<KubernetesObject>>],
    [
      "Secret",
      (p) => api.core.listNamespacedSecret({ ...page, ...p }) as Promise<ListResult<KubernetesObject>>,
    ],
    [
      "ConfigMap",
      (p) => api.core.listNamespacedConfigMap({ ...page, ...p }) as Promise<ListResult<KubernetesObject>>,
    ],
  ];
  const lists = await Promise.all(
    kinds.map(async ([kind, list]) => [kind, (await paged(list, sweepMeta)).items] as const),
  );
  const owners = new Map<string, Promise<SpindleSet | undefined>>();
  const owner = (name: string) => {
    let found = owners.get(name);
    if (!found) {
      found = api.getSpindleSet(name);
      owners.set(name, found);
    }
    return found;
  };
  for (const [kind, items] of lists) {
    for (const obj of items) {
      const run = obj.metadata?.labels?.[LABELS.spindleSet];
      if (!run || obj.metadata?.deletionTimestamp) continue;
      const known = opts.cached?.(run);
      if (known && ownedBy(obj, known)) continue;
      const ss = await owner(run);
      if (ss && ownedBy(obj, ss)) continue;
      if (!(await api.deleteKind(kind, obj.metadata!.name!, obj.metadata!.uid!))) continue;
      deleted.push({ kind, name: obj.metadata!.name! });
      log.info({ kind, name: obj.metadata!.name, spindleset: run }, "orphan deleted");
    }
  }
  if (isKnown) {
    const list = (
      await api.listSpindleSets(
        (ss) => ({ metadata: sweepMeta(ss).metadata, spec: { pipeline: ss.spec?.pipeline } }) as SpindleSet,
      )
    ).items;
    for (const ss of list) {
      const age = now.getTime() - ms(ss.metadata.creationTimestamp, now);
      const pipeline = ss.spec?.pipeline;
      if (age < minAge || !pipeline || ss.metadata.deletionTimestamp) continue;
      if (ss.metadata.labels?.[LABELS.handMade] === "true") continue;
      if (await isKnown(pipeline.knot, pipeline.rkey)) continue;
      if (!(await api.deleteSpindleSet(ss.metadata.name!, ss.metadata.uid!))) continue;
      deleted.push({ kind: "SpindleSet", name: ss.metadata.name! });
      log.info(
        { spindleset: ss.metadata.name, knot: pipeline.knot, rkey: pipeline.rkey },
        "unknown spindleset deleted",
      );
    }
  }
  return { deleted };
}

/** What the sweep reads of an object: name, uid, labels, owners, deletion. */
function sweepMeta(obj: KubernetesObject): KubernetesObject {
  const m = obj.metadata ?? {};
  return {
    metadata: {
      name: m.name,
      uid: m.uid,
      labels: m.labels,
      ownerReferences: m.ownerReferences,
      deletionTimestamp: m.deletionTimestamp,
      creationTimestamp: m.creationTimestamp,
    },
  };
}

/**
 * Whether `obj` belongs to the live SpindleSet `ss`: Jobs, Secrets and ConfigMaps carry its uid;
 * a pod is owned by its Job (the garbage collector's business), so it counts as owned while a
 * SpindleSet of its run's name exists.
 */
function ownedBy(obj: KubernetesObject, ss: SpindleSet): boolean {
  const refs = obj.metadata?.ownerReferences ?? [];
  if (refs.some((r) => r.kind === "Job")) return true;
  return refs.some((r) => r.uid === ss.metadata.uid);
}
