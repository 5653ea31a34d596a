/**
 * The `events` table behind `/events` (spec §4.1): one row per published event, keyed by its
 * exact nanosecond `created` (read as BigInt: it exceeds 2^53). pipelines/event-log.ts keeps
 * the in-memory tail and the subscribers; this is only its SQL.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";

export interface EventRow {
  created: bigint;
  rkey: string;
  nsid: string;
  /** The event's JSON, verbatim. */
  event: string;
}

export class EventRows {
  readonly #insert: StatementSync;
  readonly #after: StatementSync;
  readonly #max: StatementSync;

  constructor(db: DatabaseSync) {
    this.#insert = db.prepare("INSERT INTO events (created, rkey, nsid, event) VALUES (?, ?, ?, ?)");
    this.#after = db.prepare(
      "SELECT created, rkey, nsid, event FROM events WHERE created > ? ORDER BY created LIMIT ?",
    );
    this.#after.setReadBigInts(true);
    this.#max = db.prepare("SELECT max(created) AS m FROM events");
    this.#max.setReadBigInts(true);
  }

  insert(row: EventRow): void {
    this.#insert.run(row.created, row.rkey, row.nsid, row.event);
  }

  /** Up to `limit` rows with created > cursor, oldest first. */
  after(cursor: bigint, limit: number): EventRow[] {
    return this.#after.all(cursor, limit).map((r) => ({
      created: r.created as bigint,
      rkey: String(r.rkey),
      nsid: String(r.nsid),
      event: String(r.event),
    }));
  }

  /** The newest `created`, or null when the table is empty. */
  maxCreated(): bigint | null {
    return (this.#max.get() as { m: bigint | null }).m;
  }
}
