import type { DatabaseSync, StatementSync } from "node:sqlite";

/** A repo that chose this spindle. Gen1 records give `name`; Gen2 records give `repoDid`. */
export interface RepoRecord {
  knot: string;
  owner: string;
  name: string | null;
  rkey: string | null;
  repoDid: string | null;
  addedAt: string;
}

export type NewRepo = Pick<RepoRecord, "knot" | "owner"> &
  Partial<Pick<RepoRecord, "name" | "rkey" | "repoDid">>;

/** The `repos` table (§1.2 Gen1, gen2 §2.2). */
export class Repos {
  readonly #db: DatabaseSync;
  /** Prepared once per connection: looked up for every knot event. */
  readonly #byName: StatementSync;
  readonly #byDid: StatementSync;
  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#byName = db.prepare("SELECT * FROM repos WHERE owner = ? AND name = ?");
    this.#byDid = db.prepare("SELECT * FROM repos WHERE repo_did = ?");
  }

  /**
   * Records a repo. A repeat of the same (owner, name) or repoDid updates knot/rkey and fills in
   * whichever of name/repoDid was missing, so a Gen1 row gains its DID when a Gen2 record comes.
   * Throws if the repoDid is already registered by a different owner (gen2 §2.2 step 4).
   */
  upsert(repo: NewRepo): RepoRecord {
    const name = repo.name ?? null;
    const repoDid = repo.repoDid ?? null;
    if (name === null && repoDid === null) throw new TypeError("a repo needs a name or a repo DID");
    const existing =
      (repoDid !== null ? this.#row("repo_did = ?", repoDid) : undefined) ??
      (name !== null ? this.#row("owner = ? AND name = ?", repo.owner, name) : undefined);
    if (existing && String(existing.owner) !== repo.owner) {
      throw new Error(`repo ${repoDid ?? name} is already registered by another owner`);
    }
    if (existing) {
      this.#db
        .prepare(
          `UPDATE repos SET knot = ?, rkey = COALESCE(?, rkey), name = COALESCE(?, name),
             repo_did = COALESCE(?, repo_did) WHERE id = ?`,
        )
        .run(repo.knot, repo.rkey ?? null, name, repoDid, Number(existing.id));
    } else {
      this.#db
        .prepare("INSERT INTO repos (knot, owner, name, rkey, repo_did) VALUES (?, ?, ?, ?, ?)")
        .run(repo.knot, repo.owner, name, repo.rkey ?? null, repoDid);
    }
    const saved = (repoDid !== null ? this.byDid(repoDid) : null) ?? this.byName(repo.owner, name as string);
    if (!saved) throw new Error("repo vanished after upsert");
    return saved;
  }

  #row(where: string, ...args: string[]): Record<string, unknown> | undefined {
    return this.#db.prepare(`SELECT * FROM repos WHERE ${where}`).get(...args);
  }

  byDid(repoDid: string): RepoRecord | null {
    const row = this.#byDid.get(repoDid);
    return row ? toRepo(row) : null;
  }

  /** The repo of `owner` whose record key is `rkey`, when its name is known. */
  byRkey(owner: string, rkey: string): RepoRecord | null {
    const row = this.#db
      .prepare("SELECT * FROM repos WHERE owner = ? AND rkey = ? AND name IS NOT NULL")
      .get(owner, rkey);
    return row ? toRepo(row) : null;
  }

  byName(owner: string, name: string): RepoRecord | null {
    const row = this.#byName.get(owner, name);
    return row ? toRepo(row) : null;
  }

  /** Distinct knots of all repos: the event sources to subscribe to at start-up (§1.3). */
  knots(): string[] {
    return this.#db
      .prepare("SELECT DISTINCT knot FROM repos ORDER BY knot")
      .all()
      .map((r) => String(r.knot));
  }

  /** Removes a repo row (Gen2 teardown); returns whether one was removed. */
  remove(key: { repoDid: string } | { owner: string; name: string }): boolean {
    const res =
      "repoDid" in key
        ? this.#db.prepare("DELETE FROM repos WHERE repo_did = ?").run(key.repoDid)
        : this.#db.prepare("DELETE FROM repos WHERE owner = ? AND name = ?").run(key.owner, key.name);
    return Number(res.changes) > 0;
  }
}

function toRepo(r: Record<string, unknown>): RepoRecord {
  const opt = (v: unknown) => (v === null || v === undefined ? null : String(v));
  return {
    knot: String(r.knot),
    owner: String(r.owner),
    name: opt(r.name),
    rkey: opt(r.rkey),
    repoDid: opt(r.repo_did),
    addedAt: String(r.added_at),
  };
}
