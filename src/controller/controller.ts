/**
 * The SpindleSet controller: one controller for the one root kind. Informers (SpindleSets; Jobs
 * and pods with Loom's labels; nodes for the profile check) feed one keyed work queue with
 * SpindleSet keys; `reconcile(key)` does the rest. Only the Lease holder runs the queue, the
 * periodic resync and the orphan sweep; every replica keeps its caches warm, so a new leader
 * starts from a full picture. After a restart nothing is remembered but the cluster: existing
 * Jobs are found in the cache under their deterministic names and adopted.
 *
 *   SpindleSet add / spec, annotation or deletion change ─┐
 *   Job, pod add/update/delete (label → owner run) ───────┼─▶ queue ─▶ reconcile(ns/name)
 *   a Job finishes → one waiting run per free slot ───────┤
 *   resync every resyncMs → every run ────────────────────┘
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type {
  CoreV1Event,
  KubeConfig,
  KubernetesObject,
  V1Job,
  V1Node,
  V1Pod,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import { LABELS } from "../api/contract/index.ts";
import { errorText, Informer, objectKey } from "../api/informer.ts";
import { shareConnections } from "../api/kube-client.ts";
import { slimEvent, slimJob, slimNode, slimPod } from "../api/slim.ts";
import { type SpindleSet, TERMINAL_PHASES } from "../api/v1alpha1/spindleset.ts";
import { apiMessage, ClusterApi, FAILED_CREATE, statusCode } from "./api.ts";
import { Capacity } from "./capacity.ts";
import { type IsKnown, sweepOrphans } from "./cleanup.ts";
import type { ControllerConfig } from "./config.ts";
import type { ReconcileContext } from "./context.ts";
import { EventRecorder } from "./events.ts";
import { LeaderElector } from "./leader.ts";
import { type ControllerMetrics, createControllerMetrics } from "./metrics.ts";
import { jobActive } from "./observe.ts";
import { WorkQueue } from "./queue.ts";
import { reconcile } from "./reconcile.ts";
import { WrittenVersions } from "./written.ts";

export interface ControllerOptions {
  kubeConfig: KubeConfig;
  config: ControllerConfig;
  log: Logger;
  /** The spindle's answer to "do you still know this run?"; absent = never sweep runs. */
  isKnown?: IsKnown;
  /** Lease settings; `false` acts at once without a Lease (a single replica, tests). */
  leaderElection?:
    | false
    | { identity?: string; leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
  /** Overrides `config.workers` (tests). */
  workers?: number;
  /** Every run is reconciled this often even without events (default 60 s). */
  resyncMs?: number;
  /** Orphan sweep period (default 10 min); it also runs when leadership starts. */
  sweepMs?: number;
  /** Informers relist this often (default 5 min). */
  relistMs?: number;
  /** Check resource profiles against the cluster's nodes (needs `list nodes`; default true). */
  checkNodes?: boolean;
  secretWaitMs?: number;
  capacityRetryMs?: number;
  /** Runs younger than this are never swept as unknown to the spindle (default 60 s). */
  unknownMinAgeMs?: number;
  /**
   * How long a reconcile waits for the informer to bring the controller's own last status write
   * before it goes ahead on the older cached run (default 5 s; see written.ts).
   */
  staleWaitMs?: number;
  now?: () => Date;
}

export class SpindleSetController {
  readonly metrics: ControllerMetrics;
  readonly #opts: ControllerOptions;
  readonly #log: Logger;
  readonly #api: ClusterApi;
  readonly #spindleSets: Informer<SpindleSet>;
  readonly #jobs: Informer<V1Job>;
  readonly #pods: Informer<V1Pod>;
  readonly #nodes: Informer<V1Node> | undefined;
  readonly #failedCreates: Informer<CoreV1Event>;
  readonly #capacity: Capacity;
  readonly #elector: LeaderElector | undefined;
  readonly #events: EventRecorder;
  readonly #written: WrittenVersions;
  #queue: WorkQueue | undefined;
  #timers: NodeJS.Timeout[] = [];
  #sweeping: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;

  static create(opts: ControllerOptions): SpindleSetController {
    return new SpindleSetController(opts);
  }

  private constructor(opts: ControllerOptions) {
    this.#opts = opts;
    this.#log = opts.log.child({ component: "controller" });
    this.metrics = createControllerMetrics();
    const { kubeConfig, config } = opts;
    // Every client below (API, informers, Events, Lease) over one connection pool per cluster.
    shareConnections(kubeConfig);
    this.#api = new ClusterApi(kubeConfig, config.namespace);
    const paths = this.#api.paths();
    const common = {
      kubeConfig,
      log: this.#log,
      ...(opts.relistMs !== undefined && { relistMs: opts.relistMs }),
    };
    const enqueueOwner = (obj: KubernetesObject) => {
      const run = obj.metadata?.labels?.[LABELS.spindleSet];
      if (run) this.#queue?.add(`${config.namespace}/${run}`);
    };
    this.#written = new WrittenVersions(
      opts.staleWaitMs !== undefined ? { maxWaitMs: opts.staleWaitMs } : {},
    );
    this.#spindleSets = new Informer<SpindleSet>({
      ...common,
      path: paths.spindleSets,
      list: (each) => this.#api.listSpindleSets(each),
      handlers: {
        add: (ss) => {
          this.#written.delivered(objectKey(ss), ss.metadata.resourceVersion);
          this.#queue?.add(objectKey(ss), { first: needsJob(ss) });
        },
        update: (old, ss) => {
          // Our own status write arriving wakes a reconcile that waited for it (see #process);
          // other status-only updates need none.
          const waited = this.#written.delivered(objectKey(ss), ss.metadata.resourceVersion);
          if (waited || specChanged(old, ss)) this.#queue?.add(objectKey(ss), { first: needsJob(ss) });
        },
        delete: (ss) => {
          this.#written.forget(objectKey(ss));
          this.#capacity.done(objectKey(ss));
        },
      },
    });
    this.#jobs = new Informer<V1Job>({
      ...common,
      path: paths.jobs,
      labelSelector: this.#api.managedSelector(),
      list: (each) => this.#api.listJobs(each),
      transform: slimJob,
      handlers: {
        add: (job) => this.#jobEvent(job, undefined, enqueueOwner),
        update: (old, job) => this.#jobEvent(job, old, enqueueOwner),
        delete: (job) => this.#jobEvent(job, job, enqueueOwner, true),
      },
    });
    this.#pods = new Informer<V1Pod>({
      ...common,
      path: paths.pods,
      labelSelector: this.#api.managedSelector(),
      list: (each) => this.#api.listPods(each),
      transform: slimPod,
      index: (pod) => pod.metadata?.labels?.[LABELS.spindleSet],
      handlers: { add: enqueueOwner, update: (_old, pod) => enqueueOwner(pod), delete: enqueueOwner },
    });
    // Why a Job's pod cannot be created: one watch for the namespace, not a list per reconcile.
    const enqueueJobOwner = (e: CoreV1Event) => {
      const job =
        e.involvedObject?.kind === "Job" && this.#jobs.get(`${config.namespace}/${e.involvedObject.name}`);
      if (job) enqueueOwner(job);
    };
    this.#failedCreates = new Informer<CoreV1Event>({
      ...common,
      path: paths.events,
      fieldSelector: FAILED_CREATE,
      list: () => this.#api.listFailedCreates(),
      transform: slimEvent,
      index: (e) => e.involvedObject?.uid,
      handlers: { add: enqueueJobOwner, update: (_old, e) => enqueueJobOwner(e) },
    });
    this.#nodes =
      opts.checkNodes === false
        ? undefined
        : new Informer<V1Node>({
            ...common,
            path: paths.nodes,
            list: () => this.#api.listNodes(),
            transform: slimNode,
          });
    this.#capacity = new Capacity(config.maxConcurrentJobs);
    const le = opts.leaderElection === false ? {} : (opts.leaderElection ?? {});
    const identity = le.identity ?? `${hostname()}-${randomBytes(4).toString("hex")}`;
    this.#events = new EventRecorder(kubeConfig, identity, this.#log);
    if (opts.leaderElection !== false) {
      this.#elector = new LeaderElector({
        kubeConfig,
        namespace: config.namespace,
        identity,
        log: this.#log,
        ...(le.leaseDurationMs !== undefined && { leaseDurationMs: le.leaseDurationMs }),
        ...(le.renewDeadlineMs !== undefined && { renewDeadlineMs: le.renewDeadlineMs }),
        ...(le.retryPeriodMs !== undefined && { retryPeriodMs: le.retryPeriodMs }),
        onStartedLeading: () => this.#lead(),
        onStoppedLeading: () => void this.#follow(),
      });
    }
  }

  /** True while this replica acts (holds the Lease, or runs without election). */
  get active(): boolean {
    return this.#queue !== undefined && !this.#queue.stopped;
  }

  /**
   * Fails with a PreflightError saying what to do when the CRD is missing, the service account
   * may not use it, or the API is out of reach — instead of informers retrying forever.
   */
  preflight(): Promise<void> {
    return this.#api.preflight();
  }

  /** Starts the informers (resolves once their caches are filled) and the leader election. */
  async start(): Promise<void> {
    await Promise.all(this.#informers().map((i) => i?.start()));
    this.#log.info({ namespace: this.#opts.config.namespace }, "controller caches synced");
    if (this.#elector) this.#elector.start();
    else this.#lead();
  }

  /**
   * Stops acting, then the informers. `release: false` keeps the Lease as a crashed process
   * would (tests of adoption after a kill); Jobs are never touched either way.
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    // Stop acting (in-flight reconciles finish) before the Lease is released to a successor.
    await this.#follow();
    if (this.#elector && opts.release !== false) await this.#elector.stop();
    else if (this.#elector) await this.#elector.abandon();
    await Promise.all(this.#informers().map((i) => i?.stop()));
  }

  #informers() {
    return [this.#spindleSets, this.#jobs, this.#pods, this.#failedCreates, this.#nodes];
  }

  /** Runs the orphan sweep now, or joins the one in flight (it also runs while leading). */
  sweep(): Promise<void> {
    this.#sweeping ??= this.#sweepOnce()
      .catch((err: unknown) => this.#log.warn({ err: errorText(err) }, "orphan sweep failed"))
      .finally(() => {
        this.#sweeping = undefined;
      });
    return this.#sweeping;
  }

  async #sweepOnce(): Promise<void> {
    const result = await sweepOrphans(this.#api, this.#log, {
      isKnown: this.#opts.isKnown,
      unknownMinAgeMs: this.#opts.unknownMinAgeMs,
      now: this.#now(),
      cached: (name) => this.#spindleSets.get(`${this.#api.namespace}/${name}`),
    });
    for (const d of result.deleted) this.metrics.orphansDeleted.inc({ kind: d.kind });
  }

  #now(): Date {
    return this.#opts.now?.() ?? new Date();
  }

  #lead(): void {
    if (this.active) return;
    this.metrics.leader.set(1);
    const ctx: ReconcileContext = {
      config: this.#opts.config,
      log: this.#log,
      now: () => this.#now(),
      api: this.#api,
      spindleSets: this.#spindleSets,
      jobs: this.#jobs,
      pods: this.#pods,
      failedCreates: this.#failedCreates,
      nodes: this.#nodes,
      capacity: this.#capacity,
      events: this.#events,
      metrics: this.metrics,
      written: this.#written,
      secretWaitMs: this.#opts.secretWaitMs ?? 60_000,
      capacityRetryMs: this.#opts.capacityRetryMs ?? 10_000,
    };
    const queue = new WorkQueue({
      workers: this.#opts.workers ?? this.#opts.config.workers,
      process: (key) => this.#process(ctx, key),
      onError: (key, err, retryInMs) => {
        this.#log.warn({ spindleset: key, err: errorText(err), retryInMs }, "reconcile failed");
        // Also on the run itself, so `kubectl describe ss` shows why it does not move (a Role
        // missing a verb, a quota on Jobs); one Event per retry, and retries back off.
        const ss = this.#spindleSets.get(key);
        if (ss)
          this.#events.record(ss, {
            type: "Warning",
            reason: "ReconcileFailed",
            action: "Reconcile",
            note: `${apiMessage(err)} (retrying in ${Math.round(retryInMs / 1000)}s)`,
          });
      },
    });
    this.#queue = queue;
    this.#resync();
    const sweep = () => void this.sweep();
    sweep();
    this.#timers = [
      setInterval(() => this.#resync(), this.#opts.resyncMs ?? 60_000),
      setInterval(sweep, this.#opts.sweepMs ?? 600_000),
    ];
    for (const t of this.#timers) t.unref();
  }

  #follow(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    const queue = this.#queue;
    this.#queue = undefined;
    this.metrics.leader.set(0);
    if (queue) this.#stopping = Promise.all([queue.shutdown(), this.#sweeping]).then(() => undefined);
    return this.#stopping ?? Promise.resolve();
  }

  async #process(ctx: ReconcileContext, key: string) {
    this.metrics.queueDepth.set(this.#queue?.depth ?? 0);
    // The cache still has the run from before our last status write: anything computed from
    // it would be written over a status it has already replaced (a 409). The watch event that
    // brings our write queues the key again; the requeue is the backstop.
    const cached = ctx.spindleSets.get(key);
    if (cached && this.#written.stale(key, cached.metadata.resourceVersion)) {
      this.metrics.reconciles.inc({ result: "stale" });
      return { requeueAfterMs: this.#written.maxWaitMs };
    }
    const end = this.metrics.reconcileSeconds.startTimer();
    try {
      const result = await reconcile(ctx, key);
      this.metrics.reconciles.inc({ result: result?.requeueAfterMs !== undefined ? "requeue" : "ok" });
      return result;
    } catch (err) {
      // A status write raced another write: read again soon, no backoff, no alarm.
      if (statusCode(err) === 409) {
        this.metrics.reconciles.inc({ result: "conflict" });
        return { requeueAfterMs: 250 };
      }
      this.metrics.reconciles.inc({ result: "error" });
      throw err;
    } finally {
      end();
    }
  }

  #resync(): void {
    for (const ss of this.#spindleSets.list()) this.#queue?.add(objectKey(ss));
  }

  #jobEvent(job: V1Job, old: V1Job | undefined, enqueueOwner: (o: V1Job) => void, deleted = false): void {
    enqueueOwner(job);
    if (deleted) this.#capacity.forget(job.metadata!.name!);
    else this.#capacity.observe(job);
    this.metrics.activeJobs.set(this.#capacity.active);
    const freed = deleted || (old !== undefined && jobActive(old) && !jobActive(job));
    if (!freed) return;
    // A slot is free: as many waiting runs as there are free slots try again, oldest first.
    for (const key of this.#capacity.wake()) this.#queue?.add(key, { first: true });
  }
}

/**
 * A run with a workflow that has neither a Job nor an end yet (a new run, a workflow added):
 * its reconcile creates a Job, so it is queued ahead of status writes (queue.ts, first lane).
 * In a burst of runs the API server then takes the Jobs' creates before their status writes,
 * and the last run's Job exists sooner.
 */
export function needsJob(ss: SpindleSet): boolean {
  if (ss.metadata.deletionTimestamp || ss.spec?.cancel) return false;
  const started = new Set(
    (ss.status?.workflows ?? [])
      .filter((w) => w.jobName !== undefined || TERMINAL_PHASES.includes(w.phase))
      .map((w) => w.name),
  );
  return (ss.spec?.workflows ?? []).some((w) => !started.has(w.name));
}

/** Status-only updates (our own writes) do not need a reconcile. */
function specChanged(old: SpindleSet, ss: SpindleSet): boolean {
  return (
    old.metadata.generation !== ss.metadata.generation ||
    old.metadata.deletionTimestamp !== ss.metadata.deletionTimestamp ||
    JSON.stringify(old.metadata.annotations ?? {}) !== JSON.stringify(ss.metadata.annotations ?? {})
  );
}
