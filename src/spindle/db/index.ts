/**
 * Storage for the spindle: one SQLite file (spec §5.1), opened with `openDatabase`, and small
 * typed accessors per table, the ci.* index queries (ci-pipelines.ts) and the service-auth jti
 * replay cache. Secrets, RBAC and the events log keep their accessors in `secrets/`, `rbac/` and
 * `pipelines/`; their tables are created by the migrations here.
 */

export { JetstreamCursor, KnotCursors } from "./cursors.ts";
export { type DatabaseSync, type OpenDatabaseOptions, openDatabase, transaction } from "./database.ts";
export { JtiReplayCache } from "./jti-replay.ts";
export { KnownDids } from "./known-dids.ts";
export { type MemberRecord, SpindleMembers } from "./members.ts";
export { MIGRATIONS, type Migration, migrate, schemaVersion } from "./migrations.ts";
export { type NewRepo, type RepoRecord, Repos } from "./repos.ts";
