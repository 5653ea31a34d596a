/**
 * Batched writes (issue 12): a stream consumer admits many small records, each of which used to
 * be its own transaction (BEGIN IMMEDIATE … COMMIT was most of the CPU per record). A
 * `WriteBatch` splits the work of each record in two:
 *
 * - plan (async): `stage(job)` runs the record's handler in an async context that carries the
 *   batch. Everything that awaits (decode, validate, compile, secrets, the network) happens
 *   here, outside any transaction. When the handler reaches its write it calls
 *   `batchedWrite(db, fn)`; that write is parked in the batch and `stage` returns (the handler
 *   waits for the commit).
 * - write (sync): `commit(finish)` opens ONE transaction, runs every parked write in its own
 *   savepoint (a write that throws rolls back alone, and only its handler sees the error), then
 *   `finish` (the consumer stores its cursor there, in the same transaction as the rows it
 *   covers), and commits. Only then are the parked handlers resumed with their results.
 *
 * A transaction is never open across an await: the write phase is synchronous, so the rest of
 * the server (status transitions, XRPC) never sees a half-written batch and never waits on one.
 * Outside a batch (or on another connection) `batchedWrite` is just `transaction(db, fn)`.
 * A handler writes through the batch at most once; a later write goes straight to the database.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { DatabaseSync } from "node:sqlite";
import { transaction } from "./database.ts";

interface Parked {
  run: () => unknown;
  onRollback: (() => void) | undefined;
  resolve: (v: unknown) => void;
  reject: (err: unknown) => void;
}

/** One staged job: how its plan phase ended, and (after `commit`) how its write went. */
export class Staged<T> {
  readonly #slot: Slot;
  /** Settles when the job is completely done (after the commit when it wrote). */
  readonly done: Promise<T>;
  constructor(slot: Slot, done: Promise<T>) {
    this.#slot = slot;
    this.done = done;
  }
  /** The job rejected before it reached a write (nothing of it is in the batch). */
  get planFailed(): boolean {
    return this.#slot.planFailed;
  }
  get planError(): unknown {
    return this.#slot.planError;
  }
  /** The job parked a write in the batch. */
  get wrote(): boolean {
    return this.#slot.parked !== null;
  }
  /** Its write was rolled back (alone, or with the whole batch). */
  get writeFailed(): boolean {
    return this.#slot.writeFailed;
  }
  get writeError(): unknown {
    return this.#slot.writeError;
  }
}

class Slot {
  readonly batch: WriteBatch;
  parked: Parked | null = null;
  planError: unknown = undefined;
  planFailed = false;
  writeError: unknown = undefined;
  writeFailed = false;
  wake: (() => void) | null = null;
  constructor(batch: WriteBatch) {
    this.batch = batch;
  }
}

const current = new AsyncLocalStorage<Slot>();

export class WriteBatch {
  readonly db: DatabaseSync;
  #slots: Slot[] = [];
  #open = true;

  constructor(db: DatabaseSync) {
    this.db = db;
  }

  /** Jobs staged so far. */
  get size(): number {
    return this.#slots.length;
  }

  /** Whether writes can still join (false once `commit` ran). */
  get open(): boolean {
    return this.#open;
  }

  /**
   * Runs `job` until it settles or parks its write in this batch. Never rejects: a job that
   * failed before writing says so in `planError` (its rejection is also on `done`).
   */
  async stage<T>(job: () => Promise<T>): Promise<Staged<T>> {
    if (!this.#open) throw new Error("write batch already committed");
    const slot = new Slot(this);
    this.#slots.push(slot);
    const parked = new Promise<void>((r) => {
      slot.wake = r;
    });
    const done = current.run(slot, job);
    const settled = done.then(
      () => undefined,
      (err: unknown) => {
        if (slot.parked === null) {
          slot.planFailed = true;
          slot.planError = err;
        }
      },
    );
    await Promise.race([settled, parked]);
    slot.wake = null;
    return new Staged(slot, done);
  }

  /**
   * The write phase: one transaction with every parked write in its own savepoint, then
   * `finish(failed)` (`failed[i]`: the i-th staged job failed, in plan or write), then COMMIT.
   * Resumes the parked jobs afterwards. When the transaction as a whole fails (BEGIN, COMMIT,
   * `finish`, or an error that made SQLite roll everything back), every parked write is
   * rejected with that error and it is rethrown: nothing of the batch was stored.
   */
  commit(finish?: (failed: readonly boolean[]) => void): void {
    this.#open = false;
    const slots = this.#slots;
    this.#slots = [];
    const parked = slots.filter((s) => s.parked !== null);
    if (parked.length === 0 && finish === undefined) return;
    const results = new Map<Slot, unknown>();
    try {
      transaction(this.db, () => {
        for (const s of parked) {
          const p = s.parked as Parked;
          try {
            results.set(s, transaction(this.db, p.run));
          } catch (err) {
            // SQLite ended the whole transaction (e.g. disk full): nothing of it stands.
            if (!this.db.isTransaction) throw err;
            s.writeFailed = true;
            s.writeError = err;
            p.onRollback?.();
          }
        }
        finish?.(slots.map((s) => s.planFailed || s.writeFailed));
      });
    } catch (err) {
      for (const s of parked) {
        const p = s.parked as Parked;
        s.writeFailed = true;
        s.writeError ??= err;
        p.onRollback?.();
        p.reject(s.writeError);
      }
      throw err;
    }
    for (const s of parked) {
      const p = s.parked as Parked;
      if (s.writeFailed) p.reject(s.writeError);
      else p.resolve(results.get(s));
    }
  }

  /** @internal */
  park(slot: Slot, p: Parked): boolean {
    if (!this.#open || slot.parked !== null) return false;
    slot.parked = p;
    slot.wake?.();
    return true;
  }
}

/**
 * Runs the synchronous write `fn` atomically: in the caller's write batch when it runs inside
 * `WriteBatch.stage` on the same connection (resolved after the batch commits), else in its own
 * transaction now. `onRollback` runs when `fn`'s writes were undone (e.g. to recount a cache).
 */
export function batchedWrite<T>(db: DatabaseSync, fn: () => T, onRollback?: () => void): Promise<T> {
  const slot = current.getStore();
  if (slot !== undefined && slot.batch.db === db && slot.batch.open && slot.parked === null) {
    return new Promise<T>((resolve, reject) => {
      const parked = slot.batch.park(slot, {
        run: fn,
        onRollback,
        resolve: resolve as (v: unknown) => void,
        reject,
      });
      if (!parked) resolve(direct(db, fn, onRollback));
    });
  }
  try {
    return Promise.resolve(direct(db, fn, onRollback));
  } catch (err) {
    return Promise.reject(err);
  }
}

function direct<T>(db: DatabaseSync, fn: () => T, onRollback?: () => void): T {
  try {
    return transaction(db, fn);
  } catch (err) {
    onRollback?.();
    throw err;
  }
}
