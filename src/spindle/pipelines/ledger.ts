/**
 * Status transitions of workflow runs: the row's new status and its `/events` event are written
 * in one transaction, then published to live subscribers. Every status change goes through here.
 */
import type { DatabaseSync } from "node:sqlite";
import type { WorkflowStatus } from "../../engine/engine.ts";
import { pipelineAtUri } from "../../protocol/status.ts";
import type { RunPlan } from "../../workflow/resolve.ts";
import { transaction } from "../db/index.ts";
import type { EventLog, StoredEvent } from "./event-log.ts";
import type { SpindleMetrics } from "./metrics.ts";
import type { PipelineState, PipelineStore, RunRow } from "./store.ts";

export interface Transition {
  run: Pick<RunRow, "wid" | "knot" | "rkey" | "name">;
  status: WorkflowStatus;
  exitCode?: number | undefined;
  error?: string | undefined;
}

/** A workflow of a pipeline being admitted: its frozen plan, or why it cannot run. */
export interface AdmittedWorkflow {
  name: string;
  wid: string;
  plan: RunPlan | null;
  error?: string;
}

export interface Admission {
  /** `queued` when something will run, else `done`. */
  state: Extract<PipelineState, "queued" | "done">;
  /** The queue was full: every workflow was recorded failed and nothing will run. */
  overflow: boolean;
  transitions: Transition[];
}

/** What `admitRows` wrote: the admission and its events, still to be published. */
export interface WrittenAdmission extends Admission {
  events: StoredEvent[];
}

export class Ledger {
  readonly db: DatabaseSync;
  readonly store: PipelineStore;
  readonly events: EventLog;
  readonly #metrics: SpindleMetrics;
  readonly #now: () => Date;
  #closed = false;

  constructor(opts: {
    db: DatabaseSync;
    store: PipelineStore;
    events: EventLog;
    metrics: SpindleMetrics;
    now?: () => Date;
  }) {
    this.db = opts.db;
    this.store = opts.store;
    this.events = opts.events;
    this.#metrics = opts.metrics;
    this.#now = opts.now ?? (() => new Date());
  }

  now(): Date {
    return this.#now();
  }

  /** After close, transitions are dropped (the database is about to close). */
  close(): void {
    this.#closed = true;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Records the transitions and their events atomically, then publishes the events. */
  record(transitions: readonly Transition[], also?: () => void): void {
    if (this.#closed) return;
    const at = this.#now();
    const events = transaction(this.db, () => {
      also?.();
      return transitions.map((t) => this.#apply(t, at));
    });
    this.publish(events, transitions);
  }

  /** For callers that already hold a transaction: the row update and its event, unpublished. */
  apply(t: Transition): StoredEvent {
    return this.#apply(t, this.#now());
  }

  /** The event of a transition whose row was written by the caller (inside its transaction). */
  event(t: Transition): StoredEvent {
    return this.events.insert({
      pipeline: pipelineAtUri(t.run.knot, t.run.rkey),
      workflow: t.run.name,
      status: t.status,
      createdAt: this.#now(),
      error: t.error,
      exitCode: t.exitCode,
    });
  }

  /**
   * Stores a new pipeline, its workflow runs and their first status events in one transaction,
   * then publishes the events: `pending` for a runnable workflow, `failed` (exit code -1) for one
   * that cannot run, and `failed` for all of them when `queueSize` pipelines already wait (a full
   * queue is said, never a silent drop). Null when (knot, rkey) is already stored: nothing written.
   */
  admit(p: {
    knot: string;
    rkey: string;
    recordJson: string;
    scope: string;
    workflows: readonly AdmittedWorkflow[];
    queueSize: number;
    /**
     * Publish the record itself on `/events` before its statuses (gen2 §2.9): set for pipelines
     * the spindle built (Gen2), whose record no knot announces; Gen1 records came from a knot.
     */
    announce?: { nsid: string };
  }): Admission | null {
    let written: WrittenAdmission | null;
    try {
      written = transaction(this.db, () => this.admitRows(p));
    } catch (err) {
      this.store.recount();
      throw err;
    }
    if (written === null) return null;
    this.publish(written.events, written.transitions);
    return { state: written.state, overflow: written.overflow, transitions: written.transitions };
  }

  /**
   * The writes of `admit`, for a caller that holds the transaction (a batch of admissions,
   * db/write-batch.ts): nothing is published, and after a rollback the caller must call
   * `store.recount()`. Null when (knot, rkey) is already stored.
   */
  admitRows(p: Parameters<Ledger["admit"]>[0]): WrittenAdmission | null {
    const { knot, rkey } = p;
    const full = this.store.queuedCount() >= p.queueSize;
    const runnable = p.workflows.some((w) => w.plan !== null);
    const overflow = full && runnable;
    const state: Admission["state"] = runnable && !overflow ? "queued" : "done";
    const at = this.#now().getTime();
    const transitions: Transition[] = [];
    const events: StoredEvent[] = [];
    const id = this.store.insertPipeline({ knot, rkey, recordJson: p.recordJson, scope: p.scope, state }, at);
    if (id === null) return null;
    if (p.announce) events.push(this.events.insertRecord(p.announce.nsid, rkey, p.recordJson));
    for (const w of p.workflows) {
      const status = w.plan === null || overflow ? "failed" : "pending";
      const error =
        w.plan === null
          ? w.error
          : overflow
            ? `the spindle's queue is full (SPINDLE_SERVER_QUEUE_SIZE=${p.queueSize}); the pipeline was not run`
            : undefined;
      this.store.insertRun(
        { wid: w.wid, pipelineId: id, name: w.name, plan: w.plan, status, error: error ?? null },
        at,
      );
      // The row already holds the status: only the event is added.
      const t: Transition = {
        run: { wid: w.wid, knot, rkey, name: w.name },
        status,
        ...(status === "failed" ? { error, exitCode: -1 } : {}),
      };
      transitions.push(t);
      events.push(this.event(t));
    }
    return { state, overflow, transitions, events };
  }

  publish(events: readonly StoredEvent[], transitions: readonly Transition[]): void {
    for (const t of transitions) this.#metrics.statuses.inc({ status: t.status });
    this.events.publish(events);
  }

  #apply(t: Transition, at: Date): StoredEvent {
    this.store.setRunStatus(t.run.wid, t.status, t.exitCode ?? null, t.error ?? null, at.getTime());
    return this.events.insert({
      pipeline: pipelineAtUri(t.run.knot, t.run.rkey),
      workflow: t.run.name,
      status: t.status,
      createdAt: at,
      error: t.error,
      exitCode: t.exitCode,
    });
  }
}
