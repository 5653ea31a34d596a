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
 * All methods are synchronous SQLite calls (the SQL is in db/rbac-tables.ts); callers combine them with other writes inside
 * `transaction()` from `db/` when an event must apply atomically.
 */
import type { DatabaseSync } from "node:sqlite";
import { RbacTables } from "../db/rbac-tables.ts";
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
  readonly #t: RbacTables;

  constructor(db: DatabaseSync) {
    this.#t = new RbacTables(db);
  }

  // --- spindle roles -------------------------------------------------------------------------

  /**
   * Makes `did` the spindle owner, replacing a single previous owner (§5.1: done at every
   * start-up with `SPINDLE_SERVER_OWNER`). More than one owner on record means the database was
   * edited by hand or is corrupt; like upstream, that stops start-up.
   */
  setOwner(did: string): void {
    const owners = this.#t.roleHolders(OWNER);
    if (owners.length > 1)
      throw new Error(`more than one spindle owner on record (${owners.length}); fix the database`);
    if (owners[0] === did) return;
    this.#t.replaceRole(OWNER, did);
  }

  /** The owner DID, or null before `setOwner` ran. */
  owner(): string | null {
    return this.#t.roleHolders(OWNER)[0] ?? null;
  }

  isOwner(did: string): boolean {
    return this.#t.hasRole(did, OWNER);
  }

  /** Owner or a member added by a `sh.tangled.spindle.member` record. */
  isMember(did: string): boolean {
    return this.isOwner(did) || this.#t.hasRole(did, MEMBER);
  }

  /** `server:invite`: who may add members (only the owner, §1.2 step 3). */
  canInvite(did: string): boolean {
    return this.isOwner(did);
  }

  addMember(did: string): void {
    this.#t.addRole(did, MEMBER);
  }

  removeMember(did: string): void {
    this.#t.removeRole(did, MEMBER);
  }

  /** Members with the `server:member` role (the owner is not listed unless also a member). */
  members(): string[] {
    return this.#t.roleHolders(MEMBER);
  }

  // --- repo permissions ----------------------------------------------------------------------

  grantRepoOwner(did: string, repo: RepoRef): void {
    this.#t.grant(did, repoObjectKeys(repo), REPO_OWNER_PERMISSIONS);
  }

  grantCollaborator(did: string, repo: RepoRef): void {
    this.#t.grant(did, repoObjectKeys(repo), COLLABORATOR_PERMISSIONS);
  }

  /** Takes back what `grantCollaborator` gave, unless `did` also owns the repo. */
  revokeCollaborator(did: string, repo: RepoRef): void {
    const owner = this.hasRepoPermission(did, repo, "repo:owner");
    const drop = owner ? ["repo:collaborator"] : COLLABORATOR_PERMISSIONS;
    this.#t.revoke(did, repoObjectKeys(repo), drop);
  }

  /** Removes every grant on the repo (Gen2 teardown when a repo leaves this spindle). */
  removeRepo(repo: RepoRef): void {
    this.#t.removeRepo(repoObjectKeys(repo));
  }

  hasRepoPermission(did: string, repo: RepoRef, permission: RepoPermission): boolean {
    return this.#t.hasGrant(did, repoObjectKeys(repo), permission);
  }

  /** DIDs holding `repo:collaborator` on the repo. */
  collaborators(repo: RepoRef): string[] {
    return this.#t.holders(repoObjectKeys(repo), "repo:collaborator");
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
    return this.#t.hasAnyGrant(actor, "repo:push");
  }
}
