/**
 * Storage for the spindle: one SQLite file (spec §5.1), opened with `openDatabase`, and small
 * typed accessors per table. Secrets, RBAC and the jti replay cache have their accessors in
 * `secrets/`, `rbac/` and `auth/`; their tables are created by the migrations here.
 */

export { JetstreamCursor, KnotCursors } from "./cursors.ts";
export { type DatabaseSync, type OpenDatabaseOptions, openDatabase, transaction } from "./database.ts";
export { KnownDids } from "./known-dids.ts";
export { type MemberRecord, SpindleMembers } from "./members.ts";
export { MIGRATIONS, type Migration, migrate, schemaVersion } from "./migrations.ts";
export { type NewRepo, type RepoRecord, Repos } from "./repos.ts";
