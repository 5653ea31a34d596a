/**
 * Opens the spindle's one SQLite file (spec §5.1) through Node's built-in `node:sqlite`, so there
 * is no native addon to build. Every open applies the same pragmas and brings the schema up to
 * date with the migrations in `./migrations.ts`.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { MIGRATIONS, type Migration, migrate } from "./migrations.ts";

export type { DatabaseSync } from "node:sqlite";

export interface OpenDatabaseOptions {
  /** How long a writer waits for another connection's lock before SQLITE_BUSY (ms). */
  busyTimeoutMs?: number;
  /** Defaults to the full list; tests of a single migration may pass a prefix. */
  migrations?: readonly Migration[];
}

/**
 * Opens (creating if needed) the database at `path`, or an in-memory one for `":memory:"`.
 * WAL journal so readers never block the writer; foreign keys on; NORMAL sync, which is
 * durable across process crashes in WAL mode (upstream uses the same).
 */
export function openDatabase(path: string, opts: OpenDatabaseOptions = {}): DatabaseSync {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path, {
    enableForeignKeyConstraints: true,
    timeout: opts.busyTimeoutMs ?? 5000,
  });
  try {
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    migrate(db, opts.migrations ?? MIGRATIONS);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/**
 * Runs `fn` in one IMMEDIATE transaction (takes the write lock up front, so two writers cannot
 * both read-then-write). Commits on return, rolls back on throw.
 *
 * Nested: called while a transaction is already open on `db` (a batch of admissions,
 * write-batch.ts), `fn` runs in a savepoint instead, so a throw rolls back `fn`'s writes alone
 * and the outer transaction goes on. When SQLite itself ended the outer transaction (some
 * errors roll it back whole), the error is rethrown as is.
 */
export function transaction<T>(db: DatabaseSync, fn: () => T): T {
  if (db.isTransaction) return savepoint(db, fn);
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = fn();
    db.exec("COMMIT");
    return result;
  } catch (err) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw err;
  }
}

let savepoints = 0;

function savepoint<T>(db: DatabaseSync, fn: () => T): T {
  const name = `sp${++savepoints}`;
  db.exec(`SAVEPOINT ${name}`);
  try {
    const result = fn();
    db.exec(`RELEASE ${name}`);
    return result;
  } catch (err) {
    if (db.isTransaction) {
      db.exec(`ROLLBACK TO ${name}`);
      db.exec(`RELEASE ${name}`);
    }
    throw err;
  }
}
