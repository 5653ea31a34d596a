/**
 * The queue's workers (spec §6.3): at most `maxJobCount` pipelines run at once (and at most
 * `maxJobCountPerRepo` of one repo, when set); all workflows of a pipeline run concurrently on
 * the engine. Queue state lives in SQLite (`pipelines.state`), so `start()` after a crash picks
 * up where the last process stopped:
 *
 * - pipelines still `running`: their `running` workflows are handed to `engine.recover` —
 *   resumed, finished with the result the runner left (`finished`), or `failed` with the
 *   engine's reason; their `pending` ones start now;
 * - pipelines `queued`: claimed as workers free up, in fair order (fair-queue.ts: round-robin
 *   across repo owners, then across an owner's repos, FIFO within a repo).
 *
 * Waiting pipelines show their place: the first `positionsShown` in fair order carry
 * "queued: position N …" in their pending workflows' `error` (the text the appview shows, on
 * `/events` and in `sh.tangled.ci.pipeline`), the others "more than N ahead". A new pending
 * event is written only when a pipeline's text changes, so one claim writes at most about
 * `positionsShown` events however long the queue.
 *
 * A workflow is marked `running` (row + event, one transaction) before `engine.start`, so a crash
 * at any point never starts it twice: after a restart it is recovered, not started again.
 */
import type { Logger } from "pino";
import type { Engine, WorkflowOutcome, WorkflowRun } from "../../engine/engine.ts";
import { FINISHED } from "../../protocol/status.ts";
import type { RunTracer } from "../../telemetry/index.ts";
import type { SecretsProvider } from "../secrets/index.ts";
import { FairQueue } from "./fair-queue.ts";
import type { Ledger, Transition } from "./ledger.ts";
import { LiveLogSink } from "./live-sink.ts";
import type { SpindleMetrics } from "./metrics.ts";
import { type LoadedSecrets, secretsForRun } from "./run-secrets.ts";
import type { PipelineRow, RunRow } from "./store.ts";

export const USER_CANCELLED = "User canceled the workflow";

export interface SchedulerOptions {
  ledger: Ledger;
  engine: Engine;
  secrets: SecretsProvider;
  metrics: SpindleMetrics;
  logger: Logger;
  logDir: string;
  maxJobCount: number;
  /** Pipelines of one repo running at once; absent or null: no limit beyond maxJobCount. */
  maxJobCountPerRepo?: number | null;
  /** How many of the next pipelines show their exact place in the queue (default 20). */
  positionsShown?: number;
  /** Traces (src/telemetry); undefined when tracing is off. */
  tracer?: RunTracer | undefined;
}

/** The pending note of a pipeline at `position` (1 = next to start). */
export function queueNote(position: number, shown: number): string {
  return position <= shown
    ? `queued: position ${position} in the spindle's queue`
    : `queued: more than ${shown} pipelines ahead in the spindle's queue`;
}

/** One waiting pipeline, for status pages (`Scheduler.queueSnapshot`). */
export interface QueuedPipeline {
  /** The pipeline's row id. */
  id: number;
  knot: string;
  rkey: string;
  owner: string;
  repo: string;
  /** 1 = next to start (fair order, ignoring per-repo limits). */
  position: number;
  createdAt: number;
}

export type CancelResult = "cancelled" | "finished" | "not_found";

export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #log: Logger;
  readonly #active = new Map<number, Promise<void>>();
  readonly #cancelRequested = new Set<string>();
  readonly #startedWids = new Set<string>();
  /**
   * Log files of runs in flight, by wid: closed by stop() if their runs outlive its grace; each
   * knows its run's current step (currentStep).
   */
  readonly #openLogs = new Map<string, LiveLogSink>();
  readonly #stepListeners = new Set<() => void>();
  /** Queued pipelines in fair order, fed from SQLite (ids above #seen are not loaded yet). */
  readonly #queue = new FairQueue();
  readonly #queued = new Map<number, PipelineRow>();
  #seen = 0;
  /** Running pipelines per repo key (for maxJobCountPerRepo). */
  readonly #runningByRepo = new Map<string, number>();
  /** The queue note queued pipelines' pending workflows show (pipelines showing none: absent). */
  readonly #notes = new Map<number, string>();
  /** Queued pipelines whose note is an exact place (at most about `positionsShown`). */
  readonly #exact = new Set<number>();
  #stopping = false;

  constructor(opts: SchedulerOptions) {
    this.#o = opts;
    this.#log = opts.logger;
  }

  /** Reconciles what a previous process left running, then starts queued pipelines. */
  start(): void {
    for (const p of this.#o.ledger.store.pipelinesIn("running")) this.#launch(p, true);
    this.wake();
  }

  /** Claims queued pipelines, in fair order, while workers are free; updates queue notes. */
  wake(): void {
    const { ledger } = this.#o;
    const { store } = ledger;
    if (this.#stopping || ledger.closed) {
      this.#o.metrics.queueDepth.set(ledger.closed ? 0 : store.queuedCount());
      return;
    }
    this.#load();
    const limit = this.#o.maxJobCountPerRepo ?? null;
    const mayStart =
      limit === null ? undefined : (repo: string) => (this.#runningByRepo.get(repo) ?? 0) < limit;
    while (this.#active.size < this.#o.maxJobCount) {
      const e = this.#queue.take(mayStart);
      if (!e) break;
      this.#queued.delete(e.id);
      this.#notes.delete(e.id);
      this.#exact.delete(e.id);
      const p = store.claim(e.id);
      if (!p) continue;
      this.#o.metrics.queueWait.observe(Math.max(0, ledger.now().getTime() - p.createdAt) / 1000);
      this.#o.tracer?.claimed(p.knot, p.rkey);
      this.#launch(p, false);
    }
    this.#showPositions();
    this.#o.metrics.queueDepth.set(store.queuedCount());
  }

  get #shown(): number {
    return this.#o.positionsShown ?? 20;
  }

  /** The waiting pipelines in the order they would start (for status pages), at most `max`. */
  queueSnapshot(max = 100): QueuedPipeline[] {
    if (!this.#o.ledger.closed) this.#load();
    return this.#queue.peek(max).map((e, i) => {
      const p = this.#queued.get(e.id) as PipelineRow;
      return {
        id: e.id,
        knot: p.knot,
        rkey: p.rkey,
        owner: p.owner,
        repo: p.repo,
        position: i + 1,
        createdAt: p.createdAt,
      };
    });
  }

  /** Adds the pipelines queued since the last look to the fair queue. */
  #load(): void {
    const { store } = this.#o.ledger;
    for (const p of store.queuedAfter(this.#seen)) {
      this.#seen = Math.max(this.#seen, p.id);
      this.#queued.set(p.id, p);
      // A note from before a restart is looked at again unless it is already "more than N".
      const note = store.pendingNote(p.id);
      if (note !== null) this.#notes.set(p.id, note);
      if (note !== null && note !== queueNote(this.#shown + 1, this.#shown)) this.#exact.add(p.id);
      this.#queue.add({ id: p.id, owner: p.owner, repo: p.repo });
    }
  }

  /** Writes a pending event for each waiting pipeline whose place in the queue changed. */
  #showPositions(): void {
    const shown = this.#shown;
    const want = new Map<number, string>();
    for (const [i, e] of this.#queue.peek(shown).entries()) want.set(e.id, queueNote(i + 1, shown));
    // Pipelines beyond the first `shown` that never had a note keep none (no event per admission);
    // those that showed an exact place and fell back say so. Only those are looked at, so the
    // work per call is bounded by `shown`, not by the queue.
    const beyond = queueNote(shown + 1, shown);
    for (const id of this.#exact) if (!want.has(id)) want.set(id, beyond);
    const transitions: Transition[] = [];
    const { store } = this.#o.ledger;
    for (const [id, text] of want) {
      if (text === beyond) this.#exact.delete(id);
      else this.#exact.add(id);
      if (this.#notes.get(id) === text) continue;
      this.#notes.set(id, text);
      for (const run of store.runsOf(id)) {
        if (run.status === "pending") transitions.push({ run, status: "pending", error: text });
      }
    }
    if (transitions.length > 0) this.#o.ledger.record(transitions);
  }

  get activePipelines(): number {
    return this.#active.size;
  }

  /**
   * The step a workflow runs now (its name), as its log sink saw the control lines go by; null
   * between steps, and for a workflow this process does not run.
   */
  currentStep(wid: string): string | null {
    return this.#openLogs.get(wid)?.step ?? null;
  }

  /** Calls `fn` whenever a running workflow's current step changes; returns the unsubscribe. */
  onStepChange(fn: () => void): () => void {
    this.#stepListeners.add(fn);
    return () => this.#stepListeners.delete(fn);
  }

  /**
   * Cancels one workflow (XRPC cancelPipeline). A pending one is marked `cancelled` at once and
   * never starts; a running one is cancelled on the engine and reported when it stops.
   */
  async cancel(knot: string, rkey: string, name: string): Promise<CancelResult> {
    const run = this.#o.ledger.store.runByName(knot, rkey, name);
    if (!run) return "not_found";
    if (FINISHED.has(run.status)) return "finished";
    if (run.status === "pending") {
      this.#o.ledger.record([{ run, status: "cancelled", error: USER_CANCELLED, exitCode: -1 }]);
      this.#log.info({ wid: run.wid }, "pending workflow cancelled");
      return "cancelled";
    }
    this.#cancelRequested.add(run.wid);
    if (this.#startedWids.has(run.wid)) await this.#o.engine.cancel(run.wid, USER_CANCELLED);
    this.#log.info({ wid: run.wid }, "running workflow cancel requested");
    return "cancelled";
  }

  /** Stops claiming queued pipelines (they stay queued for the next start). Call before closing the engine. */
  pause(): void {
    this.#stopping = true;
  }

  /** Stops claiming work and waits (bounded) for in-flight bookkeeping after the engine closed. */
  async stop(graceMs = 5000): Promise<void> {
    this.#stopping = true;
    const all = Promise.allSettled([...this.#active.values()]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    // Runs still in flight after the grace keep their status (a restart resumes or fails them);
    // their log files are closed now, with what they hold, instead of left to the GC.
    await Promise.allSettled([...this.#openLogs.values()].map((l) => l.close()));
  }

  #launch(p: PipelineRow, recovering: boolean): void {
    this.#runningByRepo.set(p.repo, (this.#runningByRepo.get(p.repo) ?? 0) + 1);
    const job = this.#runPipeline(p, recovering)
      .catch((err: Error) => this.#log.error({ pipelineId: p.id, err }, "pipeline worker failed"))
      .finally(() => {
        this.#active.delete(p.id);
        const n = (this.#runningByRepo.get(p.repo) ?? 1) - 1;
        if (n > 0) this.#runningByRepo.set(p.repo, n);
        else this.#runningByRepo.delete(p.repo);
        if (!this.#stopping) this.wake();
      });
    this.#active.set(p.id, job);
  }

  async #runPipeline(p: PipelineRow, recovering: boolean): Promise<void> {
    const runs = this.#o.ledger.store.runsOf(p.id);
    this.#log.info({ knot: p.knot, rkey: p.rkey, recovering, workflows: runs.length }, "pipeline started");
    await Promise.all(runs.map((r) => this.#runWorkflow(p, r)));
    this.#o.tracer?.pipelineEnded(p.knot, p.rkey);
    if (this.#stopping || this.#o.ledger.closed) return;
    this.#o.ledger.store.setPipelineState(p.id, "done");
    this.#log.info({ knot: p.knot, rkey: p.rkey }, "pipeline finished");
  }

  async #runWorkflow(p: PipelineRow, initial: RunRow): Promise<void> {
    const { ledger, engine } = this.#o;
    if (initial.plan === null || FINISHED.has(initial.status)) return;
    const plan = initial.plan;
    const wid = initial.wid;
    const log = this.#log.child({ wid, workflow: initial.name, knot: p.knot, rkey: p.rkey });
    let sink: LiveLogSink | undefined;
    /** The same sink, kept after `sink` is cleared, to forget it in #openLogs at the end. */
    let opened: LiveLogSink | undefined;
    const runningGauge = this.#o.metrics.runningWorkflows;
    try {
      // Re-read: a cancel may have landed since the pipeline's rows were read.
      const current = ledger.store.runByWid(wid);
      if (!current || FINISHED.has(current.status)) return;
      try {
        sink = await LiveLogSink.open(this.#o.logDir, wid, {
          counters: { bytes: this.#o.metrics.logBytes, masked: this.#o.metrics.secretsMasked },
          onStep: () => {
            for (const fn of this.#stepListeners) fn();
          },
        });
        opened = sink;
        this.#openLogs.set(wid, sink);
      } catch (err) {
        // Without a log the run cannot be observed; fail it rather than leave it pending.
        log.error({ err: (err as Error).message }, "cannot open the workflow log file");
        ledger.record([
          { run: current, status: "failed", error: "cannot open the workflow log file", exitCode: -1 },
        ]);
        return;
      }
      const loaded = await this.#secrets(p.scope, log);
      const tracer = this.#o.tracer;
      let run: WorkflowRun = {
        plan,
        secrets: loaded.values,
        onStatus: (u) => tracer?.status(wid, u),
        log: sink,
      };
      if (tracer) run.onMilestone = (m) => tracer.milestone(wid, m);
      /** When this process started it (unknown for a run recovered after a restart). */
      let startedAt: number | undefined;
      if (current.status === "running") {
        const res = await engine.recover(run);
        if (res.state === "lost") {
          await sink.close().catch(() => {});
          sink = undefined;
          log.warn({ reason: res.reason }, "running workflow lost across restart");
          ledger.record([{ run: current, status: "failed", error: res.reason, exitCode: -1 }]);
          return;
        }
        if (res.state === "finished") {
          // It ended while no process watched it: its real outcome, from what its runner left.
          await sink.close().catch(() => {});
          sink = undefined;
          const final = this.#finalTransition(current, res.outcome);
          log.info(
            { status: final.status, exitCode: final.exitCode },
            "workflow finished before the restart",
          );
          ledger.record([final]);
          await engine.destroy(wid);
          return;
        }
        log.info("running workflow resumed after restart");
      } else {
        if (ledger.store.runByWid(wid)?.status !== "pending") return;
        const forRun = secretsForRun(plan, loaded);
        for (const u of forRun.unusable) {
          log.warn({ key: u.key, reason: u.reason, referenced: u.referenced }, "secret left out of the run");
        }
        if (forRun.error !== undefined) {
          await sink.close().catch(() => {});
          sink = undefined;
          ledger.record([{ run: current, status: "failed", error: forRun.error, exitCode: -1 }]);
          return;
        }
        run = { ...run, plan: forRun.plan, secrets: forRun.secrets };
        ledger.record([{ run: current, status: "running" }]);
        startedAt = ledger.now().getTime();
        tracer?.workflowStarting(wid, {
          ...p,
          name: initial.name,
          arch: plan.architecture,
          engine: engine.name,
        });
        if (tracer) run = { ...run, log: tracer.sink(wid, sink) };
        // Whatever an earlier process may have left under this wid goes first.
        await engine.destroy(wid);
        try {
          await engine.start(run);
          tracer?.engineStarted(wid);
        } catch (err) {
          await sink.close().catch(() => {});
          sink = undefined;
          log.error({ err: (err as Error).message }, "engine refused the workflow");
          ledger.record([{ run: current, status: "failed", error: (err as Error).message, exitCode: -1 }]);
          return;
        }
      }
      this.#startedWids.add(wid);
      runningGauge.inc();
      if (this.#cancelRequested.has(wid)) await engine.cancel(wid, USER_CANCELLED);
      let outcome: WorkflowOutcome;
      try {
        outcome = await engine.wait(wid);
      } finally {
        runningGauge.dec();
        this.#startedWids.delete(wid);
      }
      // The log is complete and durable before the final status says so (/logs relies on it).
      await sink.close().catch((err: Error) => log.error({ err: err.message }, "log file write failed"));
      sink = undefined;
      const final = this.#finalTransition(current, outcome);
      if (startedAt !== undefined)
        this.#o.metrics.workflowSeconds.observe(
          { arch: plan.architecture, status: final.status },
          Math.max(0, ledger.now().getTime() - startedAt) / 1000,
        );
      this.#cancelRequested.delete(wid);
      if (!ledger.closed) ledger.record([final]);
      this.#o.tracer?.workflowEnded(wid, final);
      log.info({ status: final.status, exitCode: final.exitCode }, "workflow finished");
      await engine.destroy(wid);
    } finally {
      if (sink) await sink.close().catch(() => {});
      if (opened && this.#openLogs.get(wid) === opened) this.#openLogs.delete(wid);
    }
  }

  #finalTransition(run: RunRow, o: WorkflowOutcome): Transition {
    switch (o.status) {
      case "success":
        return { run, status: "success" };
      case "timeout":
        return { run, status: "timeout" };
      case "cancelled":
        return {
          run,
          status: "cancelled",
          error: this.#cancelRequested.has(run.wid) ? USER_CANCELLED : (o.error ?? USER_CANCELLED),
          exitCode: -1,
        };
      default:
        return { run, status: "failed", error: o.error ?? "workflow failed", exitCode: o.exitCode ?? -1 };
    }
  }

  async #secrets(scope: string, log: Logger): Promise<LoadedSecrets> {
    try {
      const list = await this.#o.secrets.listUnlocked(scope);
      return { values: new Map(list.map((s) => [s.key, s.value])), failed: false };
    } catch (err) {
      log.warn(
        { err: (err as Error).name },
        "secrets unavailable; workflows that use them fail, the others run without them",
      );
      return { values: new Map(), failed: true };
    }
  }
}
