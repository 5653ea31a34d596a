/**
 * The `/events` log (spec §4.1): status events stored in SQLite with `created` = unix nanos,
 * strictly increasing, which is the stream cursor. Nanos exceed 2^53, so they are BigInt here
 * and read with `setReadBigInts`.
 *
 * Writers call `insert` inside the transaction that changes the run's state, then `publish` the
 * returned events right after the commit (same synchronous block, so a reader never sees a
 * committed row that is missing from the in-memory tail). The tail keeps the newest events so
 * live subscribers — the common case, 200 at once in the bench — never touch the database;
 * a cursor older than the tail is served from SQLite.
 */
import type { DatabaseSync } from "node:sqlite";
import { STATUS_NSID } from "../../protocol/nsid.ts";
import { encodeEnvelope, encodeStatus, type PipelineStatus } from "../../protocol/status.ts";
import { TidGenerator } from "../../protocol/tid.ts";
import { EventRows } from "../db/events.ts";

export interface StoredEvent {
  created: bigint;
  /** The whole envelope, ready to send as one text frame. */
  frame: string;
  /** `frame` as UTF-8, encoded once for every subscriber. */
  bytes: Buffer;
}

function stored(created: bigint, frame: string): StoredEvent {
  return { created, frame, bytes: Buffer.from(frame, "utf8") };
}

export interface EventLogOptions {
  /** Wall clock in unix nanos (injected by tests). */
  nowNanos?: () => bigint;
  tids?: TidGenerator;
  /** Events kept in memory for live subscribers (default 4096). */
  tailSize?: number;
  /**
   * Wait this long before waking subscribers, so events published close together share one
   * write per subscriber (default 5 ms: with 200 subscribers it halves the server's CPU per
   * delivered frame at a few hundred events/s; 0 = next turn of the event loop).
   */
  coalesceMs?: number;
}

const INT64_MAX = (1n << 63n) - 1n;

/** Nanosecond wall clock: Date.now() anchored, hrtime for the sub-millisecond part. */
export function wallClockNanos(): () => bigint {
  const base = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  return () => base + process.hrtime.bigint();
}

export class EventLog {
  readonly #now: () => bigint;
  readonly #tids: TidGenerator;
  readonly #tailSize: number;
  readonly #rows: EventRows;
  readonly #listeners = new Set<() => void>();
  /** Contiguous newest events; every event with created > #floor is in it. */
  #tail: StoredEvent[] = [];
  #floor: bigint;
  #last: bigint;
  #wakeScheduled = false;
  readonly #coalesceMs: number;

  constructor(db: DatabaseSync, opts: EventLogOptions = {}) {
    this.#now = opts.nowNanos ?? wallClockNanos();
    this.#tids = opts.tids ?? new TidGenerator();
    this.#tailSize = opts.tailSize ?? 4096;
    this.#coalesceMs = opts.coalesceMs ?? 5;
    this.#rows = new EventRows(db);
    this.#last = this.#rows.maxCreated() ?? 0n;
    this.#floor = this.#last;
  }

  /** Newest `created` written so far (0 when none). */
  get last(): bigint {
    return this.#last;
  }

  /** Stores a status event. Call inside the caller's transaction; `publish` after commit. */
  insert(status: PipelineStatus): StoredEvent {
    return this.insertRecord(STATUS_NSID, this.#tids.next(), encodeStatus(status));
  }

  /**
   * Stores any record event (`event` is its JSON, sent verbatim): the spindle's own
   * `sh.tangled.pipeline` records (gen2 §2.9) go out on `/events` this way, keyed by their TID.
   * Same transaction rule as `insert`.
   */
  insertRecord(nsid: string, rkey: string, event: string): StoredEvent {
    const now = this.#now();
    const created = now > this.#last ? now : this.#last + 1n;
    this.#rows.insert({ created, rkey, nsid, event });
    this.#last = created;
    return stored(created, encodeEnvelope(event, nsid, rkey));
  }

  /** Makes committed events visible to live subscribers and wakes them (on the next turn). */
  publish(events: readonly StoredEvent[]): void {
    if (events.length === 0) return;
    this.#tail.push(...events);
    const excess = this.#tail.length - this.#tailSize;
    if (excess > 0) {
      this.#floor = (this.#tail[excess - 1] as StoredEvent).created;
      this.#tail = this.#tail.slice(excess);
    }
    // Wake subscribers once per coalescing window: events published together (a burst of
    // transitions) then go out to each subscriber in one write instead of one write each.
    if (!this.#wakeScheduled) {
      this.#wakeScheduled = true;
      const wake = () => {
        this.#wakeScheduled = false;
        for (const fn of this.#listeners) fn();
      };
      if (this.#coalesceMs > 0) setTimeout(wake, this.#coalesceMs);
      else setImmediate(wake);
    }
  }

  /** Up to `limit` events with created > cursor, oldest first. */
  after(cursor: bigint, limit: number): StoredEvent[] {
    if (cursor >= this.#floor) {
      let lo = 0;
      let hi = this.#tail.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((this.#tail[mid] as StoredEvent).created > cursor) hi = mid;
        else lo = mid + 1;
      }
      return this.#tail.slice(lo, lo + limit);
    }
    return this.#rows
      .after(cursor, limit)
      .map((r) => stored(r.created, encodeEnvelope(r.event, r.nsid, r.rkey)));
  }

  /** Calls `fn` after every publish; returns the unsubscribe function. */
  subscribe(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  get subscribers(): number {
    return this.#listeners.size;
  }

  /**
   * A `?cursor=` value (§4.1): unix nanos; missing, zero or unparsable means "now" (no
   * backfill), as Gen1 does.
   */
  cursorFrom(param: string | null): bigint {
    const clock = this.#now();
    // biome-ignore lint/complexity/useMathMinMax: BigInt operands (Math.max takes numbers)
    const now = clock > this.#last ? clock : this.#last;
    if (param === null || !/^-?[0-9]{1,19}$/.test(param)) return now;
    const v = BigInt(param);
    if (v === 0n || v > INT64_MAX || v < -INT64_MAX) return now;
    return v;
  }
}
