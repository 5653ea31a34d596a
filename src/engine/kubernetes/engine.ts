/**
 * The Kubernetes engine: each pipeline run becomes one SpindleSet (plus its Secret), each
 * workflow one Job that the controller (src/controller) creates and reports on. Contract:
 * ../engine.ts. This engine writes only `spec` and metadata; the controller writes `status`.
 *
 *   start(run) ─▶ SpindleSet: create with this workflow, or add it to the run's existing one
 *            ─▶ Secret (owned by the SpindleSet, so it needs its uid: created second; the
 *               controller reports SecretMissing only after a grace period)
 *   watch SpindleSets ─▶ status.workflows[name]: running → onStatus(running)
 *                                                 final   → drain the log, then onStatus(final)
 *   pod log (logs.ts) ─▶ LogCursor + EventDeduper ─▶ Relay (masks again) ─▶ run.log
 *
 * One SpindleSet per pipeline, built up one workflow at a time: the spindle's scheduler starts
 * a pipeline's workflows concurrently but each after its own awaits (log file, secrets), so the
 * starts of one pipeline do not arrive together, and after a restart some of a pipeline's
 * workflows are recovered while others start fresh. So the first start creates the SpindleSet
 * and later ones add their workflow (optimistic concurrency on resourceVersion). Writes to one
 * SpindleSet go through one promise chain, so starts that arrive while a write is in flight
 * queue behind it rather than conflict.
 *
 * Cancel: the workflow's name goes into `spec.cancelWorkflows` (the controller records
 * `cancelled` and deletes the Job; the runner gets SIGTERM and ends its step).
 *
 * Runner silence: only the engine reads the runner's heartbeats. A runner silent (no line,
 * heartbeats included) for `runnerSilentSeconds` while its container runs gets its Job annotated
 * (silence.ts, the contract in src/api/contract/signals.ts); the controller then ends the
 * workflow with RunnerSilent.
 *
 * Recovery: `recover` finds the run's SpindleSet by its deterministic name, re-reads the pod
 * log from the start and, because the relay turns the same runner output into the same lines,
 * drops as many lines as the log file already holds (see SkipSink).
 */
import type { KubeConfig } from "@kubernetes/client-node";
import pino, { type Logger } from "pino";
import {
  CONTAINERS,
  managedSelector,
  secretName,
  selectorString,
  spindleSetName,
  workflowLabels,
} from "../../api/contract/index.ts";
import { shareConnections } from "../../api/kube-client.ts";
import type { SpindleSet, WorkflowStatus } from "../../api/v1alpha1/spindleset.ts";
import { Relay } from "../../relay/relay.ts";
import { SINK_HIGH_WATER, waitForSink } from "../../relay/sink.ts";
import {
  type Engine,
  EngineError,
  type RecoverResult,
  type WorkflowOutcome,
  type WorkflowRun,
} from "../engine.ts";
import { ClusterError, SpindleSetStore } from "./cluster.ts";
import { Limiter } from "./limit.ts";
import { describe, type FollowEnd, PodLogFollower } from "./logs.ts";
import { PodCache } from "./pods.ts";
import { SilenceWatchdog } from "./silence.ts";
import { existingLines, SkipSink } from "./skip-sink.ts";
import { runSpecFromPlan, workflowSpecFromPlan } from "./spec.ts";
import { isFinal, outcomeFrom } from "./status.ts";
import { SpindleSetWatch } from "./watch.ts";

/** SpindleSet placements (create/update + Secret) in flight at once, by default. */
const PLACING_AT_ONCE = 16;

export interface KubernetesEngineOptions {
  kubeConfig: KubeConfig;
  /** Where SpindleSets are created (the controller's namespace). */
  namespace: string;
  logger?: Logger;
  /** Runner silence reported to the controller (default 120 s, as the controller's default); 0 = off. */
  runnerSilentSeconds?: number;
  /** How long the log may still drain after the final status (default 60 s). */
  drainTimeoutMs?: number;
  /** How long destroy waits for a cancelled run to finish (default 120 s). */
  destroyTimeoutMs?: number;
  /** Pod lookup interval of the log followers (default 1 s). */
  pollMs?: number;
  /**
   * SpindleSet placements in flight at once (default 16; the server passes the controller's
   * `workers`, the same bound on Loom's requests in flight for starting runs).
   */
  placing?: number;
}

/**
 * Where one run is; it only moves forward:
 *
 *   placing ─▶ placed ─▶ running ─▶ finishing ─▶ done
 *      │          └──────────────────────┘           (a final status before running was seen:
 *      └────────────────────────────────────▶ done    running is reported first, then the final)
 *   any phase ─▶ destroyed (destroy(): forgotten, no more callbacks)
 *
 * placing: the SpindleSet write is in flight; placed: in the SpindleSet (`uid` known), waiting
 * for the controller; running: onStatus(running) was sent; finishing: the controller's final
 * status was seen and the pod log drains; done: the final status was reported (`final`).
 */
type RunPhase = "placing" | "placed" | "running" | "finishing" | "done" | "destroyed";

/** Phases in which a run still waits for its final status (cancel and silence apply). */
function waiting(phase: RunPhase): boolean {
  return phase === "placing" || phase === "placed" || phase === "running";
}

interface Tracked {
  readonly run: WorkflowRun;
  readonly wid: string;
  readonly ss: string;
  readonly name: string;
  readonly relay: Relay;
  readonly follower: PodLogFollower;
  followDone: Promise<FollowEnd> | undefined;
  /** The SpindleSet's uid once this workflow is in it. */
  uid: string | undefined;
  ready: Promise<void>;
  phase: RunPhase;
  /** The outcome once reported (also when destroy() came first and nobody hears it). */
  final: WorkflowOutcome | undefined;
  cancelReason: string | undefined;
  /** The workflow's Job was seen in status (reported once, to `run.onMilestone`). */
  jobSeen?: boolean;
  destroying: Promise<void> | undefined;
  readonly done: Promise<WorkflowOutcome>;
  resolve(o: WorkflowOutcome): void;
  reject(e: Error): void;
}

export class KubernetesEngine implements Engine {
  readonly name = "kubernetes";
  readonly #o: Required<Omit<KubernetesEngineOptions, "logger" | "placing">>;
  readonly #log: Logger;
  readonly #store: SpindleSetStore;
  readonly #runs = new Map<string, Tracked>();
  /** Latest SpindleSet seen by the watch, by name. */
  readonly #cache = new Map<string, SpindleSet>();
  /** The SpindleSet name of every workflow id in the cache (#destroyUnknown). */
  readonly #byWid = new Map<string, string>();
  readonly #chains = new Map<string, Promise<unknown>>();
  /** Placements in flight at once (see limit.ts: a burst is placed in order, not all late). */
  readonly #placing: Limiter;
  readonly #watch: SpindleSetWatch;
  /** Every workflow pod of the namespace, shared by the log followers. */
  readonly #pods: PodCache;
  #watching: Promise<void> | undefined;
  readonly #silence: SilenceWatchdog;
  #closed = false;

  constructor(opts: KubernetesEngineOptions) {
    // Every client below (API, watch, logs) over one connection pool per cluster.
    shareConnections(opts.kubeConfig);
    this.#o = {
      kubeConfig: opts.kubeConfig,
      namespace: opts.namespace,
      runnerSilentSeconds: opts.runnerSilentSeconds ?? 120,
      drainTimeoutMs: opts.drainTimeoutMs ?? 60_000,
      destroyTimeoutMs: opts.destroyTimeoutMs ?? 120_000,
      pollMs: opts.pollMs ?? 1000,
    };
    this.#log = (opts.logger ?? pino({ level: "silent" })).child({ engine: "kubernetes" });
    this.#placing = new Limiter(opts.placing ?? PLACING_AT_ONCE);
    this.#store = new SpindleSetStore(opts.kubeConfig, opts.namespace);
    this.#watch = new SpindleSetWatch({
      kubeConfig: opts.kubeConfig,
      namespace: opts.namespace,
      labelSelector: selectorString(managedSelector()),
      logger: this.#log,
      onObject: (ss) => this.#onObject(ss),
      onGone: (name, uid) => this.#onGone(name, uid),
    });
    this.#pods = new PodCache({
      kubeConfig: opts.kubeConfig,
      namespace: opts.namespace,
      labelSelector: selectorString(managedSelector()),
      log: this.#log,
    });
    this.#silence = new SilenceWatchdog({
      silentSeconds: this.#o.runnerSilentSeconds,
      log: this.#log,
      annotateJob: (job, key, value) => this.#store.annotateJob(job, key, value),
      candidates: () =>
        [...this.#runs.values()].map((t) => ({
          key: t,
          wid: t.wid,
          waiting: waiting(t.phase) && !this.#closed,
          silentMs: () => t.follower.silentMs(),
          jobName: () => this.#cache.get(t.ss)?.status?.workflows?.find((w) => w.name === t.name)?.jobName,
        })),
    });
  }

  async start(run: WorkflowRun): Promise<void> {
    if (this.#closed) throw new EngineError("closed", "the kubernetes engine is closed");
    const plan = run.plan;
    if (typeof plan?.wid !== "string" || plan.wid === "" || !Array.isArray(plan.steps)) {
      throw new EngineError("invalid", "a run needs a workflow id and a list of steps");
    }
    if (this.#runs.has(plan.wid)) throw new EngineError("duplicate", `workflow ${plan.wid} is already known`);
    const checked = runSpecFromPlan(plan, plan.secretKeys.length > 0);
    if (!checked.ok) throw new EngineError("invalid", `the plan cannot be a SpindleSet: ${checked.error}`);
    const t = this.#track(run, 0);
    t.ready = this.#ensureWatch()
      .then(() => this.#serial(t.ss, () => this.#placing.run(() => this.#place(t))))
      .catch((err: unknown) => this.#setupFailed(t, err));
    await t.ready;
  }

  wait(wid: string): Promise<WorkflowOutcome> {
    const t = this.#runs.get(wid);
    if (!t) return Promise.reject(new EngineError("not_found", `workflow ${wid} is not known`));
    return t.done;
  }

  async cancel(wid: string, reason?: string): Promise<void> {
    const t = this.#runs.get(wid);
    if (!t || !waiting(t.phase) || this.#closed) return;
    t.cancelReason ??= reason ?? "cancelled";
    await t.ready.catch(() => {});
    if (t.uid === undefined || !waiting(t.phase)) return;
    await this.#serial(t.ss, () => this.#writeCancel(t.ss)).catch((err: unknown) =>
      this.#log.error({ wid, err: describe(err) }, "cancel could not be written"),
    );
  }

  destroy(wid: string): Promise<void> {
    const t = this.#runs.get(wid);
    if (!t) return this.#destroyUnknown(wid);
    t.destroying ??= this.#destroy(t);
    return t.destroying;
  }

  async recover(run: WorkflowRun): Promise<RecoverResult> {
    if (this.#closed) throw new EngineError("closed", "the kubernetes engine is closed");
    const { plan } = run;
    if (this.#runs.has(plan.wid)) return { state: "resumed" };
    let ss: SpindleSet | undefined;
    try {
      await this.#ensureWatch();
      ss = await this.#store.get(spindleSetName(plan.pipeline));
    } catch (err) {
      return { state: "lost", reason: `the run's SpindleSet could not be read (${describe(err)})` };
    }
    const wf = ss?.spec.workflows.find((w) => w.name === plan.workflowName);
    if (!ss || ss.metadata.deletionTimestamp || wf?.wid !== plan.wid) {
      return { state: "lost", reason: "the workflow's SpindleSet is no longer in the cluster" };
    }
    const skip = await existingLines(run.log);
    const t = this.#track(run, skip);
    t.uid = ss.metadata.uid;
    t.phase = "placed";
    t.ready = Promise.resolve();
    this.#startFollowing(t);
    this.#log.info({ wid: plan.wid, skip }, "workflow resumed");
    this.#apply(t, ss);
    return { state: "resumed" };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#silence.stop();
    this.#watch.stop();
    const runs = [...this.#runs.values()];
    for (const t of runs) t.follower.stop();
    await Promise.allSettled(runs.map((t) => t.followDone));
    await this.#pods.stop();
    // The runs go on in the cluster; the next process recovers them. What was relayed is kept.
    await Promise.allSettled(runs.map((t) => t.run.log.flush()));
    for (const t of runs) {
      if (!t.final) t.reject(new EngineError("closed", "the kubernetes engine closed; the run goes on"));
    }
    this.#runs.clear();
  }

  // --- tracking ------------------------------------------------------------------------------

  #track(run: WorkflowRun, skipLines: number): Tracked {
    const { plan } = run;
    const ss = spindleSetName(plan.pipeline);
    const secrets = [...run.secrets.values()];
    const sink = skipLines > 0 ? new SkipSink(run.log, skipLines) : run.log;
    let resolve!: (o: WorkflowOutcome) => void;
    let reject!: (e: Error) => void;
    const done = new Promise<WorkflowOutcome>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // A close() rejects waits nobody may be holding; that is not an unhandled rejection.
    done.catch(() => {});
    const relay = new Relay({
      sink,
      secrets,
      onFatal: (err) => this.#log.error({ wid: plan.wid, code: err.code }, "runner output unusable"),
    });
    const follower = new PodLogFollower({
      kubeConfig: this.#o.kubeConfig,
      namespace: this.#o.namespace,
      labels: workflowLabels(ss, plan.wid),
      pods: this.#pods,
      container: CONTAINERS.runner,
      logger: this.#log.child({ wid: plan.wid }),
      pollMs: this.#o.pollMs,
      onLines: (lines) => {
        for (const line of lines) relay.handleLine(line);
        if (run.log.backlog > SINK_HIGH_WATER) return waitForSink(run.log);
      },
    });
    const t: Tracked = {
      run,
      wid: plan.wid,
      ss,
      name: plan.workflowName,
      relay,
      follower,
      followDone: undefined,
      uid: undefined,
      ready: Promise.resolve(),
      phase: "placing",
      final: undefined,
      cancelReason: undefined,
      destroying: undefined,
      done,
      resolve,
      reject,
    };
    this.#runs.set(plan.wid, t);
    this.#silence.start();
    return t;
  }

  #startFollowing(t: Tracked): void {
    t.followDone = t.follower.run().catch((err: unknown) => {
      this.#log.error({ wid: t.wid, err: describe(err) }, "log follower failed");
      return "stopped" as const;
    });
  }

  /**
   * Starts the SpindleSet watch; waits for its first list, but not forever: placement and
   * recovery read what they need directly, the watch only brings later status changes.
   */
  #ensureWatch(): Promise<void> {
    this.#watching ??= this.#watch.start();
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((r) => {
      timer = setTimeout(r, 10_000);
    });
    return Promise.race([this.#watching, limit]).finally(() => clearTimeout(timer));
  }

  /** Runs writes to one SpindleSet one after another. */
  #serial<T>(ss: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#chains.get(ss) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    this.#chains.set(ss, tail);
    void tail.then(() => {
      if (this.#chains.get(ss) === tail) this.#chains.delete(ss);
    });
    return next;
  }

  // --- start ---------------------------------------------------------------------------------

  /** Puts the workflow into its run's SpindleSet (creating it), then the Secret. */
  async #place(t: Tracked): Promise<void> {
    const { plan, secrets } = t.run;
    const workflow = workflowSpecFromPlan(plan);
    const needSecret = workflow.secretKeys !== undefined && workflow.secretKeys.length > 0;
    for (let attempt = 0; attempt < 10; attempt++) {
      if (t.phase === "destroyed" || this.#closed) return;
      // A run the watch has never seen is most likely new: try the create first (one round trip
      // instead of a read and a create); a 409 brings the read on the next attempt.
      let ss = attempt === 0 && !this.#cache.has(t.ss) ? undefined : await this.#store.get(t.ss);
      if (ss?.metadata.deletionTimestamp) {
        await this.#store.waitGone(t.ss, ss.metadata.uid, 30_000);
        continue;
      }
      if (!ss) {
        const checked = runSpecFromPlan(plan, needSecret);
        if (!checked.ok) throw new EngineError("invalid", checked.error);
        ss = await this.#store.create(checked.spec, needSecret);
        if (!ss) continue;
      } else {
        const existing = ss.spec.workflows.find((w) => w.name === workflow.name);
        if (existing && existing.wid !== workflow.wid) {
          throw new EngineError("invalid", `the run already has a workflow ${workflow.name} with another id`);
        }
        if (existing) {
          // Left by an earlier process. Alone in it, the old run goes; beside a live run of this
          // engine it cannot be replaced (workflows are keyed by name).
          if (!this.#ownsNoOther(t)) {
            throw new EngineError("duplicate", `workflow ${t.wid} is already in SpindleSet ${t.ss}`);
          }
          await this.#store.delete(t.ss, ss.metadata.uid);
          await this.#store.waitGone(t.ss, ss.metadata.uid, 30_000);
          continue;
        }
        ss = await this.#store.addWorkflow(ss, workflow, needSecret ? secretName(t.ss) : undefined);
        if (!ss) continue;
      }
      t.uid = ss.metadata.uid;
      if (t.phase === "placing") t.phase = "placed";
      this.#startFollowing(t);
      if (needSecret || ss.spec.secretRef) await this.#store.ensureSecret(ss, secrets);
      this.#log.info({ wid: t.wid, spindleSet: t.ss }, "workflow placed");
      if (t.cancelReason !== undefined) await this.#writeCancel(t.ss);
      const cached = this.#cache.get(t.ss);
      this.#apply(t, cached && cached.metadata.uid === t.uid ? cached : ss);
      return;
    }
    throw new ClusterError(`placing workflow ${t.wid}`, new Error("too many conflicting writes"));
  }

  /** Whether no other run of this engine is in the same SpindleSet (then a leftover is stale). */
  #ownsNoOther(t: Tracked): boolean {
    for (const other of this.#runs.values()) if (other !== t && other.ss === t.ss) return false;
    return true;
  }

  #setupFailed(t: Tracked, err: unknown): void {
    if (err instanceof EngineError && err.code !== "closed") {
      this.#runs.delete(t.wid);
      throw err;
    }
    const message = err instanceof ClusterError || err instanceof Error ? err.message : String(err);
    this.#log.error({ wid: t.wid, err: message }, "workflow could not be placed in the cluster");
    void this.#report(t, {
      status: "failed",
      exitCode: null,
      failedStep: null,
      error: `the workflow could not be started on Kubernetes: ${message}`,
    });
  }

  // --- status --------------------------------------------------------------------------------

  #onObject(ss: SpindleSet): void {
    const name = ss.metadata.name!;
    this.#cache.set(name, ss);
    for (const w of ss.spec?.workflows ?? []) this.#byWid.set(w.wid, name);
    for (const t of this.#runs.values()) if (t.ss === name && t.uid === ss.metadata.uid) this.#apply(t, ss);
  }

  #onGone(name: string, uid: string | undefined): void {
    const cached = this.#cache.get(name);
    if (cached && (uid === undefined || cached.metadata.uid === uid)) {
      this.#cache.delete(name);
      for (const w of cached.spec?.workflows ?? []) {
        if (this.#byWid.get(w.wid) === name) this.#byWid.delete(w.wid);
      }
    }
    for (const t of this.#runs.values()) {
      if (t.ss !== name || t.uid === undefined || (uid !== undefined && t.uid !== uid)) continue;
      if (!waiting(t.phase)) continue;
      void this.#finish(t, {
        name: t.name,
        phase: "failed",
        reason: "JobLost",
        message: "the workflow's SpindleSet was deleted before the workflow finished",
      });
    }
  }

  #apply(t: Tracked, ss: SpindleSet): void {
    if (t.phase !== "placed" && t.phase !== "running") return;
    const ws = ss.status?.workflows?.find((w) => w.name === t.name);
    if (!ws) return;
    if (ws.jobName && !t.jobSeen) {
      t.jobSeen = true;
      t.run.onMilestone?.("job_created");
    }
    if (ws.phase === "running") {
      t.follower.kick();
      this.#running(t);
    }
    if (isFinal(ws)) void this.#finish(t, ws);
  }

  /** The controller says the workflow is over: drain the log, then report. */
  async #finish(t: Tracked, ws: WorkflowStatus): Promise<void> {
    if (!waiting(t.phase)) return;
    this.#running(t);
    t.phase = "finishing";
    t.follower.finalSeen();
    let logProblem: string | undefined;
    const end = await Promise.race([
      t.followDone ?? Promise.resolve<FollowEnd>("no_pod"),
      new Promise<"timeout">((r) => setTimeout(() => r("timeout"), this.#o.drainTimeoutMs).unref()),
    ]);
    if (end === "timeout") {
      t.follower.stop();
      logProblem = "its log could not be read to the end";
      this.#log.warn({ wid: t.wid }, "log not drained in time");
    }
    t.relay.end();
    await t.run.log.flush().catch(() => {});
    if (!isFinal(ws)) return;
    await this.#report(
      t,
      outcomeFrom({
        status: ws,
        result: t.relay.result,
        cancelReason: t.cancelReason,
        secrets: t.run.secrets.values(),
        ...(logProblem && { logProblem }),
      }),
    );
  }

  /** placed ─▶ running: onStatus(running), once. */
  #running(t: Tracked): void {
    if (t.phase !== "placed") return;
    t.phase = "running";
    t.run.onStatus({ status: "running" });
  }

  async #report(t: Tracked, outcome: WorkflowOutcome): Promise<void> {
    if (t.final) return;
    t.final = outcome;
    t.follower.stop();
    if (t.phase === "destroyed") return;
    const runningSent = t.phase === "running" || t.phase === "finishing";
    t.phase = "done";
    if (this.#closed) return;
    if (!runningSent) t.run.onStatus({ status: "running" });
    t.run.onStatus(outcome);
    t.resolve(outcome);
    this.#log.info({ wid: t.wid, status: outcome.status, exitCode: outcome.exitCode }, "workflow finished");
  }

  // --- cancel, silence, destroy ---------------------------------------------------------------

  /** Adds every cancelled, unfinished workflow of the run to spec.cancelWorkflows. */
  async #writeCancel(name: string): Promise<void> {
    const wanted = [...this.#runs.values()]
      .filter((r) => r.ss === name && r.cancelReason !== undefined && waiting(r.phase))
      .map((r) => r.name);
    if (wanted.length === 0) return;
    const ss = await this.#store.get(name);
    if (!ss || ss.spec.cancel) return;
    const current = ss.spec.cancelWorkflows ?? [];
    const next = [...new Set([...current, ...wanted])].sort();
    if (next.length === current.length) return;
    await this.#store.patch(name, { spec: { cancelWorkflows: next } });
    this.#log.info({ spindleSet: name, workflows: wanted }, "cancel written");
  }

  async #destroy(t: Tracked): Promise<void> {
    await t.ready.catch(() => {});
    if (!t.final && !this.#closed) {
      await this.cancel(t.wid, t.cancelReason ?? "the workflow was destroyed");
      const timer = new Promise<void>((r) => setTimeout(r, this.#o.destroyTimeoutMs).unref());
      await Promise.race([
        t.done.then(
          () => {},
          () => {},
        ),
        timer,
      ]);
    }
    t.phase = "destroyed";
    t.follower.stop();
    await t.followDone;
    if (this.#runs.get(t.wid) === t) this.#runs.delete(t.wid);
    if (!t.final) t.reject(new EngineError("not_found", `workflow ${t.wid} was destroyed`));
    if (t.uid === undefined || this.#closed) return;
    // The last workflow of the run that this engine knows takes the SpindleSet with it.
    const others = [...this.#runs.values()].some((r) => r.ss === t.ss);
    if (others) return;
    await this.#serial(t.ss, async () => {
      if ([...this.#runs.values()].some((r) => r.ss === t.ss)) return;
      await this.#store.delete(t.ss, t.uid);
      await this.#store.waitGone(t.ss, t.uid, 30_000);
    }).catch((err: unknown) => this.#log.error({ wid: t.wid, err: describe(err) }, "SpindleSet not deleted"));
  }

  /**
   * destroy() of a wid this process does not know: a SpindleSet still holding it was left by an
   * earlier process (the scheduler recovers runs it shows as running instead of destroying
   * them), so unless a live run of this engine shares it, it goes.
   */
  async #destroyUnknown(wid: string): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#ensureWatch();
    } catch {
      return;
    }
    // By the wid index, not a scan of every cached run: the scheduler calls this before every
    // start, so a burst of n starts would cost n × (runs in the namespace).
    const name = this.#byWid.get(wid);
    const ss = name === undefined ? undefined : this.#cache.get(name);
    if (name !== undefined && ss?.spec?.workflows?.some((w) => w.wid === wid)) {
      if ([...this.#runs.values()].some((r) => r.ss === name)) return;
      await this.#serial(name, async () => {
        await this.#store.delete(name, ss.metadata.uid);
        await this.#store.waitGone(name, ss.metadata.uid, 30_000);
      }).catch((err: unknown) =>
        this.#log.error({ wid, err: describe(err) }, "stale SpindleSet not deleted"),
      );
    }
  }
}
