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
