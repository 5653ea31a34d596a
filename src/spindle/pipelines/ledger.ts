/**
 * Status transitions of workflow runs: the row's new status and its `/events` event are written
 * in one transaction, then published to live subscribers. Every status change goes through here.
 */
import type { DatabaseSync } from "node:sqlite";
import type { WorkflowStatus } from "../../engine/engine.ts";
import { transaction } from "../db/index.ts";
import type { EventLog, StoredEvent } from "./event-log.ts";
import type { SpindleMetrics } from "./metrics.ts";
import { pipelineAtUri } from "./status.ts";
import type { PipelineStore, RunRow } from "./store.ts";

export interface Transition {
  run: Pick<RunRow, "wid" | "knot" | "rkey" | "name">;
  status: WorkflowStatus;
  exitCode?: number | undefined;
  error?: string | undefined;
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
