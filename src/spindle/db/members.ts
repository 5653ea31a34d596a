import type { DatabaseSync } from "node:sqlite";

/** One `sh.tangled.spindle.member` record: `did` wrote it, `subject` is the member (§1.2). */
export interface MemberRecord {
  did: string;
  rkey: string;
  instance: string;
  subject: string;
  created: string;
}

/**
 * The `spindle_members` table. Only the records themselves live here; the `server:member` role
 * that goes with them is granted through `rbac/`, in the same transaction by the caller.
 */
export class SpindleMembers {
  readonly #db: DatabaseSync;
  constructor(db: DatabaseSync) {
    this.#db = db;
  }
  /** Inserts the record; a repeat of (did, instance, subject) is ignored, as upstream. */
  add(m: Omit<MemberRecord, "created">): void {
    this.#db
      .prepare("INSERT OR IGNORE INTO spindle_members (did, rkey, instance, subject) VALUES (?, ?, ?, ?)")
      .run(m.did, m.rkey, m.instance, m.subject);
  }
  /** Removes the record `did` wrote under `rkey`; returns it (for revoking the role) or null. */
  removeByRkey(did: string, rkey: string): MemberRecord | null {
    const row = this.#db.prepare("SELECT * FROM spindle_members WHERE did = ? AND rkey = ?").get(did, rkey);
    if (!row) return null;
    this.#db.prepare("DELETE FROM spindle_members WHERE did = ? AND rkey = ?").run(did, rkey);
    return toMember(row);
  }
  list(instance?: string): MemberRecord[] {
    const rows =
      instance === undefined
        ? this.#db.prepare("SELECT * FROM spindle_members ORDER BY id").all()
        : this.#db.prepare("SELECT * FROM spindle_members WHERE instance = ? ORDER BY id").all(instance);
    return rows.map(toMember);
  }
}

function toMember(r: Record<string, unknown>): MemberRecord {
  return {
    did: String(r.did),
    rkey: String(r.rkey),
    instance: String(r.instance),
    subject: String(r.subject),
    created: String(r.created),
  };
}
