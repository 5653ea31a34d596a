import type { DatabaseSync, StatementSync } from "node:sqlite";

/** The Jetstream cursor (§1.2): one row, microseconds since the epoch. */
export class JetstreamCursor {
  readonly #db: DatabaseSync;
  constructor(db: DatabaseSync) {
    this.#db = db;
  }
  /** The stored cursor, or null if none was ever saved. */
  get(): number | null {
    const row = this.#db.prepare("SELECT last_time_us FROM _jetstream WHERE id = 1").get();
    return row ? Number(row.last_time_us) : null;
  }
  set(timeUs: number): void {
    if (!Number.isSafeInteger(timeUs) || timeUs < 0)
      throw new RangeError(`invalid jetstream cursor ${timeUs}`);
    this.#db
      .prepare(
        "INSERT INTO _jetstream (id, last_time_us) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET last_time_us = excluded.last_time_us",
      )
      .run(timeUs);
  }
}

/**
 * Knot event-stream cursors (§1.3), one per knot host; opaque strings as the knot sent them.
 * The statements are prepared once per connection (every knot frame reads and writes here).
 */
export class KnotCursors {
  readonly db: DatabaseSync;
  readonly #get: StatementSync;
  readonly #set: StatementSync;
  constructor(db: DatabaseSync) {
    this.db = db;
    this.#get = db.prepare("SELECT cursor FROM cursors WHERE knot = ?");
    this.#set = db.prepare(
      "INSERT INTO cursors (knot, cursor) VALUES (?, ?) ON CONFLICT (knot) DO UPDATE SET cursor = excluded.cursor",
    );
  }
  get(knot: string): string | null {
    const row = this.#get.get(knot);
    return row ? String(row.cursor) : null;
  }
  set(knot: string, cursor: string): void {
    this.#set.run(knot, cursor);
  }
}
