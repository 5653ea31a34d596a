/**
 * Remembers each (issuer, jti) of an accepted service JWT until the token expires, so the same
 * token cannot be used twice (upstream does not check; gen2 §2.6 notes stricter is compatible).
 * Persisted in SQLite so a restart does not reopen the window.
 */
import type { DatabaseSync } from "node:sqlite";

export class JtiReplayCache {
  readonly #db: DatabaseSync;
  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /**
   * Records the pair; returns false if it was already recorded (a replay). `expiresAtSec` is
   * when the row may be forgotten: the token's `exp` plus the clock leeway. Expired rows are
   * pruned on the way, which keeps the table as small as the set of live tokens.
   */
  remember(iss: string, jti: string, expiresAtSec: number, nowSec: number): boolean {
    this.#db.prepare("DELETE FROM auth_jti WHERE expires_at < ?").run(nowSec);
    const res = this.#db
      .prepare("INSERT INTO auth_jti (iss, jti, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
      .run(iss, jti, Math.ceil(expiresAtSec));
    return Number(res.changes) === 1;
  }
}
