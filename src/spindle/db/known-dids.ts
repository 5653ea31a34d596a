import type { DatabaseSync } from "node:sqlite";

/** DIDs (besides the owner) whose Jetstream events the spindle handles (§1.2). */
export class KnownDids {
  readonly #db: DatabaseSync;
  constructor(db: DatabaseSync) {
    this.#db = db;
  }
  add(did: string): void {
    this.#db.prepare("INSERT OR IGNORE INTO known_dids (did) VALUES (?)").run(did);
  }
  remove(did: string): void {
    this.#db.prepare("DELETE FROM known_dids WHERE did = ?").run(did);
  }
  has(did: string): boolean {
    return this.#db.prepare("SELECT 1 FROM known_dids WHERE did = ?").get(did) !== undefined;
  }
  all(): string[] {
    return this.#db
      .prepare("SELECT did FROM known_dids ORDER BY did")
      .all()
      .map((r) => String(r.did));
  }
}
