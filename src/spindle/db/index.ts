/**
 * Storage for the spindle: one SQLite file (spec §5.1), opened with `openDatabase`, migrations,
 * and every SQL statement outside pipelines/store.ts — small typed accessors per table (repos,
 * cursors, members, known DIDs, RBAC rows, sealed secrets, events, the jti replay cache) and the
 * ci.* index queries (ci-pipelines.ts). The rules that use them live in rbac/, secrets/,
 * pipelines/ and auth/.
 */

export { JetstreamCursor, KnotCursors } from "./cursors.ts";
export { type DatabaseSync, type OpenDatabaseOptions, openDatabase, transaction } from "./database.ts";
export { JtiReplayCache } from "./jti-replay.ts";
export { KnownDids } from "./known-dids.ts";
export { type MemberRecord, SpindleMembers } from "./members.ts";
export { MIGRATIONS, type Migration, migrate, schemaVersion } from "./migrations.ts";
export { type NewRepo, type RepoRecord, Repos } from "./repos.ts";
