/**
 * The `secrets` table of the sqlite secrets provider (secrets/sqlite.ts encrypts and decrypts;
 * this holds only sealed values): one row per (repo scope, key).
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";

export interface SecretRow {
  repo: string;
  key: string;
  createdAt: string;
  createdBy: string;
}

export interface SealedSecretRow extends SecretRow {
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

export class SecretRows {
  readonly #db: DatabaseSync;
  /** Prepared on first use, then kept: asked once per admitted pipeline. */
  #list: StatementSync | null = null;

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** False when (repo, key) is already present (nothing written). */
  insert(row: SealedSecretRow): boolean {
    const res = this.#db
      .prepare(
        `INSERT INTO secrets (repo, key, nonce, ciphertext, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (repo, key) DO NOTHING`,
      )
      .run(row.repo, row.key, row.nonce, row.ciphertext, row.createdAt, row.createdBy);
    return Number(res.changes) > 0;
  }

  /** False when there was no such row. */
  delete(repo: string, key: string): boolean {
    const res = this.#db.prepare("DELETE FROM secrets WHERE repo = ? AND key = ?").run(repo, key);
    return Number(res.changes) > 0;
  }

  list(repo: string): SecretRow[] {
    this.#list ??= this.#db.prepare("SELECT repo, key, created_at, created_by FROM secrets WHERE repo = ?");
    return this.#list.all(repo).map((r) => ({
      repo: String(r.repo),
      key: String(r.key),
      createdAt: String(r.created_at),
      createdBy: String(r.created_by),
    }));
  }

  listSealed(repo: string): SealedSecretRow[] {
    return this.#db
      .prepare("SELECT * FROM secrets WHERE repo = ?")
      .all(repo)
      .map((r) => ({
        repo: String(r.repo),
        key: String(r.key),
        createdAt: String(r.created_at),
        createdBy: String(r.created_by),
        nonce: r.nonce as Uint8Array,
        ciphertext: r.ciphertext as Uint8Array,
      }));
  }
}
