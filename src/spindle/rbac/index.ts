/**
 * Roles and permissions (spec §1.2, §3.1, §5.1): `Rbac` over two SQLite tables, and the repo
 * naming rules shared with `secrets/` (`repo-ref.ts`). At start-up call
 * `new Rbac(db).setOwner(config.server.owner)`.
 */
export {
  COLLABORATOR_PERMISSIONS,
  Rbac,
  REPO_OWNER_PERMISSIONS,
  type RepoPermission,
} from "./rbac.ts";
export {
  didSlashRepo,
  parseRepoAtUri,
  type RepoRecordUri,
  type RepoRef,
  repoObjectKeys,
  repoScopeKey,
} from "./repo-ref.ts";
