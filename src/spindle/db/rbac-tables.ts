/**
 * The two RBAC tables (rbac/rbac.ts says what they mean): `rbac_server_roles (did, role)` and
 * `rbac_repo_grants (did, repo key, permission)`. Plain rows; the rules live in `Rbac`.
 */
import type { DatabaseSync } from "node:sqlite";

export class RbacTables {
  readonly #db: DatabaseSync;

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** DIDs holding `role`, sorted. */
  roleHolders(role: string): string[] {
    return this.#db
      .prepare("SELECT did FROM rbac_server_roles WHERE role = ? ORDER BY did")
      .all(role)
      .map((r) => String(r.did));
  }

  hasRole(did: string, role: string): boolean {
    return (
      this.#db.prepare("SELECT 1 FROM rbac_server_roles WHERE did = ? AND role = ?").get(did, role) !==
      undefined
    );
  }

  addRole(did: string, role: string): void {
    this.#db.prepare("INSERT OR IGNORE INTO rbac_server_roles (did, role) VALUES (?, ?)").run(did, role);
  }

  removeRole(did: string, role: string): void {
    this.#db.prepare("DELETE FROM rbac_server_roles WHERE did = ? AND role = ?").run(did, role);
  }

  /** `did` alone holds `role` afterwards. */
  replaceRole(role: string, did: string): void {
    this.#db.prepare("DELETE FROM rbac_server_roles WHERE role = ?").run(role);
    this.#db.prepare("INSERT INTO rbac_server_roles (did, role) VALUES (?, ?)").run(did, role);
  }

  grant(did: string, keys: readonly string[], permissions: readonly string[]): void {
    const ins = this.#db.prepare(
      "INSERT OR IGNORE INTO rbac_repo_grants (did, repo, permission) VALUES (?, ?, ?)",
    );
    for (const key of keys) for (const p of permissions) ins.run(did, key, p);
  }

  revoke(did: string, keys: readonly string[], permissions: readonly string[]): void {
    const del = this.#db.prepare(
      "DELETE FROM rbac_repo_grants WHERE did = ? AND repo = ? AND permission = ?",
    );
    for (const key of keys) for (const p of permissions) del.run(did, key, p);
  }

  removeRepo(keys: readonly string[]): void {
    const del = this.#db.prepare("DELETE FROM rbac_repo_grants WHERE repo = ?");
    for (const key of keys) del.run(key);
  }

  /** Whether `did` holds `permission` under any of `keys`. */
  hasGrant(did: string, keys: readonly string[], permission: string): boolean {
    const q = this.#db.prepare(
      "SELECT 1 FROM rbac_repo_grants WHERE did = ? AND repo = ? AND permission = ?",
    );
    return keys.some((key) => q.get(did, key, permission) !== undefined);
  }

  /** DIDs holding `permission` under any of `keys`, sorted, without duplicates. */
  holders(keys: readonly string[], permission: string): string[] {
    const q = this.#db.prepare("SELECT did FROM rbac_repo_grants WHERE repo = ? AND permission = ?");
    const dids = new Set(keys.flatMap((key) => q.all(key, permission).map((r) => String(r.did))));
    return [...dids].sort();
  }

  /** Whether `did` holds `permission` on any repo at all. */
  hasAnyGrant(did: string, permission: string): boolean {
    const q = this.#db.prepare("SELECT 1 FROM rbac_repo_grants WHERE did = ? AND permission = ? LIMIT 1");
    return q.get(did, permission) !== undefined;
  }
}
