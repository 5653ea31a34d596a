/**
 * Who may do what on this spindle (spec §1.2, §3.1, §5.1; Gen2 §2.2, §2.6).
 *
 * Upstream keeps these rules in casbin (`sub, dom, obj, act` with role inheritance). Loom's
 * model is small and fixed, so two tables answer every check with one indexed lookup and no
 * policy language:
 * - spindle roles (`rbac_server_roles`): `server:owner` (exactly one, from configuration; it
 *   implies `server:member` and `server:invite`) and `server:member` (from member records);
 * - repo permissions (`rbac_repo_grants`): `(did, repo key, permission)`, where the repo key is
 *   the repo DID or `<ownerDid>/<name>` (see `repo-ref.ts`). Grants are written under every key
 *   the caller knows and a check passes if any of the repo's keys carries the permission.
 *
 * All methods are synchronous SQLite calls; callers combine them with other writes inside
 * `transaction()` from `db/` when an event must apply atomically.
 */
import type { DatabaseSync } from "node:sqlite";
import { type RepoRef, repoObjectKeys } from "./repo-ref.ts";

export type RepoPermission =
  | "repo:owner"
  | "repo:settings"
  | "repo:push"
  | "repo:invite"
  | "repo:delete"
  | "repo:collaborator";

/** What the repo's owner gets when its `sh.tangled.repo` record names this spindle (§1.2). */
export const REPO_OWNER_PERMISSIONS: readonly RepoPermission[] = [
  "repo:settings",
  "repo:push",
  "repo:owner",
  "repo:invite",
  "repo:delete",
];

/** What a collaborator gets (§1.2 `sh.tangled.repo.collaborator`). */
export const COLLABORATOR_PERMISSIONS: readonly RepoPermission[] = [
  "repo:collaborator",
  "repo:settings",
  "repo:push",
];

const OWNER = "server:owner";
const MEMBER = "server:member";

export class Rbac {
  readonly #db: DatabaseSync;

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  // --- spindle roles -------------------------------------------------------------------------

  /**
   * Makes `did` the spindle owner, replacing a single previous owner (§5.1: done at every
   * start-up with `SPINDLE_SERVER_OWNER`). More than one owner on record means the database was
   * edited by hand or is corrupt; like upstream, that stops start-up.
   */
  setOwner(did: string): void {
    const owners = this.#db
      .prepare("SELECT did FROM rbac_server_roles WHERE role = ?")
      .all(OWNER)
      .map((r) => String(r.did));
    if (owners.length > 1)
      throw new Error(`more than one spindle owner on record (${owners.length}); fix the database`);
    if (owners[0] === did) return;
    this.#db.prepare("DELETE FROM rbac_server_roles WHERE role = ?").run(OWNER);
    this.#db.prepare("INSERT INTO rbac_server_roles (did, role) VALUES (?, ?)").run(did, OWNER);
  }

  /** The owner DID, or null before `setOwner` ran. */
  owner(): string | null {
    const row = this.#db.prepare("SELECT did FROM rbac_server_roles WHERE role = ?").get(OWNER);
    return row ? String(row.did) : null;
  }

  isOwner(did: string): boolean {
    return this.#hasRole(did, OWNER);
  }

  /** Owner or a member added by a `sh.tangled.spindle.member` record. */
  isMember(did: string): boolean {
    return this.isOwner(did) || this.#hasRole(did, MEMBER);
  }

  /** `server:invite`: who may add members (only the owner, §1.2 step 3). */
  canInvite(did: string): boolean {
    return this.isOwner(did);
  }

  addMember(did: string): void {
    this.#db.prepare("INSERT OR IGNORE INTO rbac_server_roles (did, role) VALUES (?, ?)").run(did, MEMBER);
  }

  removeMember(did: string): void {
    this.#db.prepare("DELETE FROM rbac_server_roles WHERE did = ? AND role = ?").run(did, MEMBER);
  }

  /** Members with the `server:member` role (the owner is not listed unless also a member). */
  members(): string[] {
    return this.#db
      .prepare("SELECT did FROM rbac_server_roles WHERE role = ? ORDER BY did")
      .all(MEMBER)
      .map((r) => String(r.did));
  }

  #hasRole(did: string, role: string): boolean {
    return (
      this.#db.prepare("SELECT 1 FROM rbac_server_roles WHERE did = ? AND role = ?").get(did, role) !==
      undefined
    );
  }

  // --- repo permissions ----------------------------------------------------------------------

  grantRepoOwner(did: string, repo: RepoRef): void {
    this.#grant(did, repo, REPO_OWNER_PERMISSIONS);
  }

  grantCollaborator(did: string, repo: RepoRef): void {
    this.#grant(did, repo, COLLABORATOR_PERMISSIONS);
  }

  /** Takes back what `grantCollaborator` gave, unless `did` also owns the repo. */
  revokeCollaborator(did: string, repo: RepoRef): void {
    const owner = this.hasRepoPermission(did, repo, "repo:owner");
    const drop = owner ? ["repo:collaborator"] : COLLABORATOR_PERMISSIONS;
    const del = this.#db.prepare(
      "DELETE FROM rbac_repo_grants WHERE did = ? AND repo = ? AND permission = ?",
    );
    for (const key of repoObjectKeys(repo)) for (const p of drop) del.run(did, key, p);
  }

  /** Removes every grant on the repo (Gen2 teardown when a repo leaves this spindle). */
  removeRepo(repo: RepoRef): void {
    const del = this.#db.prepare("DELETE FROM rbac_repo_grants WHERE repo = ?");
    for (const key of repoObjectKeys(repo)) del.run(key);
  }

  hasRepoPermission(did: string, repo: RepoRef, permission: RepoPermission): boolean {
    const q = this.#db.prepare(
      "SELECT 1 FROM rbac_repo_grants WHERE did = ? AND repo = ? AND permission = ?",
    );
    return repoObjectKeys(repo).some((key) => q.get(did, key, permission) !== undefined);
  }

  /** DIDs holding `repo:collaborator` on the repo. */
  collaborators(repo: RepoRef): string[] {
    const q = this.#db.prepare(
      "SELECT did FROM rbac_repo_grants WHERE repo = ? AND permission = 'repo:collaborator'",
    );
    const dids = new Set(repoObjectKeys(repo).flatMap((key) => q.all(key).map((r) => String(r.did))));
    return [...dids].sort();
  }

  // --- the checks the XRPC handlers call -----------------------------------------------------

  /** add/remove/listSecrets need `repo:settings`: the repo owner or a collaborator (§3.1). */
  canManageSecrets(actor: string, repo: RepoRef): boolean {
    return this.hasRepoPermission(actor, repo, "repo:settings");
  }

  /** Gen1 `sh.tangled.pipeline.cancelPipeline` needs `repo:owner` (§3.1). */
  canCancel(actor: string, repo: RepoRef): boolean {
    return this.hasRepoPermission(actor, repo, "repo:owner");
  }

  /** Gen2 `sh.tangled.ci.triggerPipeline` / `ci.cancelPipeline`: push rights (gen2 §2.6). */
  canPush(actor: string, repo: RepoRef): boolean {
    return this.hasRepoPermission(actor, repo, "repo:push");
  }

  /**
   * Whether `actor` may push to any repo of this spindle: a check that needs no repo, for events
   * that name theirs only behind a network call (a pull status names its pull, whose record on
   * some PDS names the repo) — most such events on the firehose concern nobody here.
   */
  canPushAnywhere(actor: string): boolean {
    const q = this.#db.prepare(
      "SELECT 1 FROM rbac_repo_grants WHERE did = ? AND permission = 'repo:push' LIMIT 1",
    );
    return q.get(actor) !== undefined;
  }

  #grant(did: string, repo: RepoRef, permissions: readonly RepoPermission[]): void {
    const ins = this.#db.prepare(
      "INSERT OR IGNORE INTO rbac_repo_grants (did, repo, permission) VALUES (?, ?, ?)",
    );
    for (const key of repoObjectKeys(repo)) for (const p of permissions) ins.run(did, key, p);
  }
}
