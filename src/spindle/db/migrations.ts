/**
 * Schema migrations, versioned in code. The database's `PRAGMA user_version` holds the number of
 * the last migration applied; on open every later one runs, each in its own transaction together
 * with the `user_version` bump, so a crash never leaves a half-applied step.
 *
 * HOW TO ADD A MIGRATION: append `{ version: <last + 1>, name, sql }` to `MIGRATIONS` (or `up`
 * for steps SQL alone cannot express). Never edit or reorder an entry that has shipped: a
 * database that already ran it will not run it again. Keep each step small and say why in `name`.
 */
import type { DatabaseSync } from "node:sqlite";

export interface Migration {
  readonly version: number;
  readonly name: string;
  /** SQL run with `exec` (several statements allowed). */
  readonly sql?: string;
  /** For data rewrites; runs after `sql`, inside the same transaction. */
  readonly up?: (db: DatabaseSync) => void;
}

// UTC, second precision, RFC 3339 with `Z`: the shape upstream's `created_at` default has.
const NOW = "(strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))";

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "core tables: jetstream cursor, known DIDs, repos, members, knot cursors",
    sql: `
      -- Single row (id = 1): the Jetstream cursor in microseconds (§1.2).
      CREATE TABLE _jetstream (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last_time_us INTEGER NOT NULL
      );
      -- DIDs whose Jetstream events are handled besides the owner's (§1.2).
      CREATE TABLE known_dids (did TEXT PRIMARY KEY) WITHOUT ROWID;
      -- Repos that chose this spindle. Gen1 keys them by (owner, name); Gen2 by repo_did.
      -- Both are optional-but-one-required so records that only have one keep working.
      CREATE TABLE repos (
        id INTEGER PRIMARY KEY,
        knot TEXT NOT NULL,
        owner TEXT NOT NULL,
        name TEXT,
        rkey TEXT,
        repo_did TEXT UNIQUE,
        added_at TEXT NOT NULL DEFAULT ${NOW},
        UNIQUE (owner, name),
        CHECK (name IS NOT NULL OR repo_did IS NOT NULL)
      );
      CREATE INDEX repos_knot ON repos (knot);
      -- sh.tangled.spindle.member records: did = record author, subject = the member (§1.2).
      CREATE TABLE spindle_members (
        id INTEGER PRIMARY KEY,
        did TEXT NOT NULL,
        rkey TEXT NOT NULL,
        instance TEXT NOT NULL,
        subject TEXT NOT NULL,
        created TEXT NOT NULL DEFAULT ${NOW},
        UNIQUE (did, instance, subject)
      );
      CREATE INDEX spindle_members_rkey ON spindle_members (did, rkey);
      -- Knot event-stream cursors (§1.3).
      CREATE TABLE cursors (knot TEXT PRIMARY KEY, cursor TEXT NOT NULL) WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    name: "sqlite secrets provider: AES-256-GCM ciphertext per value (upstream stores plaintext)",
    sql: `
      -- repo = the scope key (repo DID, or <ownerDid>/<name> for name-only records).
      CREATE TABLE secrets (
        id INTEGER PRIMARY KEY,
        repo TEXT NOT NULL,
        key TEXT NOT NULL,
        nonce BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        created_at TEXT NOT NULL DEFAULT ${NOW},
        created_by TEXT NOT NULL,
        UNIQUE (repo, key)
      );
    `,
  },
  {
    version: 3,
    name: "service-auth jti replay cache (Loom is stricter than upstream)",
    sql: `
      -- A (iss, jti) pair is kept until the token's exp (plus leeway), then pruned.
      CREATE TABLE auth_jti (
        iss TEXT NOT NULL,
        jti TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (iss, jti)
      ) WITHOUT ROWID;
      CREATE INDEX auth_jti_expires ON auth_jti (expires_at);
    `,
  },
  {
    version: 4,
    name: "RBAC: spindle roles and per-repo permissions (replaces upstream's casbin acl table)",
    sql: `
      -- role: 'server:owner' | 'server:member'. At most one owner (enforced in code, §5.1).
      CREATE TABLE rbac_server_roles (
        did TEXT NOT NULL,
        role TEXT NOT NULL,
        PRIMARY KEY (did, role)
      ) WITHOUT ROWID;
      -- repo = object key: repo DID or <ownerDid>/<name>; permission e.g. 'repo:settings'.
      CREATE TABLE rbac_repo_grants (
        did TEXT NOT NULL,
        repo TEXT NOT NULL,
        permission TEXT NOT NULL,
        PRIMARY KEY (did, repo, permission)
      ) WITHOUT ROWID;
      CREATE INDEX rbac_repo_grants_repo ON rbac_repo_grants (repo);
    `,
  },
  {
    version: 5,
    name: "durable pipeline queue, workflow runs and the /events log (accepted before acknowledged)",
    sql: `
      -- One row per accepted sh.tangled.pipeline event; (knot, rkey) is the dedupe key, so a
      -- replayed or re-delivered envelope is never run twice. Queue order = id.
      -- state: 'queued' (waiting for a worker) | 'running' (claimed) | 'done'.
      CREATE TABLE pipelines (
        id INTEGER PRIMARY KEY,
        knot TEXT NOT NULL,
        rkey TEXT NOT NULL,
        record TEXT NOT NULL,
        -- the secrets scope key of the repo (rbac/repo-ref.ts repoScopeKey)
        scope TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done')),
        created_at INTEGER NOT NULL,
        UNIQUE (knot, rkey)
      );
      CREATE INDEX pipelines_state ON pipelines (state, id);
      -- One row per workflow of a pipeline. plan = the frozen RunPlan JSON (NULL when the
      -- workflow failed at acceptance). status is the latest status sent on /events.
      CREATE TABLE workflow_runs (
        wid TEXT PRIMARY KEY,
        pipeline_id INTEGER NOT NULL REFERENCES pipelines (id),
        name TEXT NOT NULL,
        plan TEXT,
        status TEXT NOT NULL,
        exit_code INTEGER,
        error TEXT,
        updated_at INTEGER NOT NULL,
        UNIQUE (pipeline_id, name)
      );
      -- The /events stream (§4.1): created = unix nanos, strictly increasing (the cursor).
      CREATE TABLE events (
        created INTEGER PRIMARY KEY,
        rkey TEXT NOT NULL,
        nsid TEXT NOT NULL,
        event TEXT NOT NULL
      );
    `,
  },
  {
    version: 6,
    name: "Gen2 ci index (queryPipelines by repo DID, commit, kind; created-nanos cursor) and workflow start/finish times, kept by triggers so every insert path fills them",
    sql: `
      -- One row per pipeline, Gen1 (knot) and Gen2 (spindle-built) alike (gen2 §2.6). repo_did
      -- from the trigger, else from the repos row of (owner, name); commit_sha = push.newSha |
      -- pullRequest.sourceSha | manual.sha; created_ns = created_at in nanos, bumped to be
      -- strictly increasing, so it is a unique, stable page cursor.
      CREATE TABLE ci_pipelines (
        pipeline_id INTEGER PRIMARY KEY REFERENCES pipelines (id),
        tid TEXT NOT NULL,
        repo_did TEXT,
        commit_sha TEXT NOT NULL,
        kind TEXT NOT NULL,
        ref TEXT,
        created_ns INTEGER NOT NULL UNIQUE
      );
      CREATE INDEX ci_pipelines_repo ON ci_pipelines (repo_did, created_ns);
      CREATE INDEX ci_pipelines_commit ON ci_pipelines (repo_did, commit_sha, created_ns);
      CREATE INDEX ci_pipelines_tid ON ci_pipelines (tid);
      CREATE TRIGGER ci_pipelines_index AFTER INSERT ON pipelines WHEN json_valid(new.record)
      BEGIN
        INSERT INTO ci_pipelines (pipeline_id, tid, repo_did, commit_sha, kind, ref, created_ns)
        VALUES (
          new.id,
          new.rkey,
          COALESCE(
            NULLIF(json_extract(new.record, '$.triggerMetadata.repo.repoDid'), ''),
            (SELECT repo_did FROM repos
              WHERE owner = json_extract(new.record, '$.triggerMetadata.repo.did')
                AND name = json_extract(new.record, '$.triggerMetadata.repo.repo'))
          ),
          COALESCE(
            json_extract(new.record, '$.triggerMetadata.push.newSha'),
            json_extract(new.record, '$.triggerMetadata.pullRequest.sourceSha'),
            json_extract(new.record, '$.triggerMetadata.manual.sha'),
            ''
          ),
          COALESCE(json_extract(new.record, '$.triggerMetadata.kind'), ''),
          COALESCE(
            json_extract(new.record, '$.triggerMetadata.push.ref'),
            json_extract(new.record, '$.triggerMetadata.manual.ref')
          ),
          max(new.created_at * 1000000, COALESCE((SELECT max(created_ns) FROM ci_pipelines), 0) + 1)
        );
      END;
      -- Pipelines stored before this migration (ms * 1e6 + id keeps them distinct).
      INSERT INTO ci_pipelines (pipeline_id, tid, repo_did, commit_sha, kind, ref, created_ns)
      SELECT p.id, p.rkey,
        COALESCE(NULLIF(json_extract(p.record, '$.triggerMetadata.repo.repoDid'), ''),
          (SELECT r.repo_did FROM repos r
            WHERE r.owner = json_extract(p.record, '$.triggerMetadata.repo.did')
              AND r.name = json_extract(p.record, '$.triggerMetadata.repo.repo'))),
        COALESCE(json_extract(p.record, '$.triggerMetadata.push.newSha'),
          json_extract(p.record, '$.triggerMetadata.pullRequest.sourceSha'),
          json_extract(p.record, '$.triggerMetadata.manual.sha'), ''),
        COALESCE(json_extract(p.record, '$.triggerMetadata.kind'), ''),
        COALESCE(json_extract(p.record, '$.triggerMetadata.push.ref'),
          json_extract(p.record, '$.triggerMetadata.manual.ref')),
        p.created_at * 1000000 + (p.id % 1000000)
      FROM pipelines p WHERE json_valid(p.record);
      -- ci.pipeline startedAt (first running) and finishedAt (last terminal status), gen2 §2.7.
      ALTER TABLE workflow_runs ADD COLUMN started_at INTEGER;
      ALTER TABLE workflow_runs ADD COLUMN finished_at INTEGER;
      CREATE TRIGGER ci_run_started AFTER UPDATE OF status ON workflow_runs
        WHEN new.status = 'running' AND new.started_at IS NULL
      BEGIN
        UPDATE workflow_runs SET started_at = new.updated_at WHERE wid = new.wid;
      END;
      CREATE TRIGGER ci_run_finished AFTER UPDATE OF status ON workflow_runs
        WHEN new.status IN ('success', 'failed', 'timeout', 'cancelled')
      BEGIN
        UPDATE workflow_runs SET finished_at = new.updated_at WHERE wid = new.wid;
      END;
      CREATE TRIGGER ci_run_finished_at_insert AFTER INSERT ON workflow_runs
        WHEN new.status IN ('success', 'failed', 'timeout', 'cancelled')
      BEGIN
        UPDATE workflow_runs SET finished_at = new.updated_at WHERE wid = new.wid;
      END;
    `,
  },
  {
    version: 7,
    name: "Gen2 ci index: per-repo totals by kind (queryPipelines' first page without a count scan) and a (repo, kind, created) index",
    sql: `
      CREATE TABLE ci_repo_totals (
        repo_did TEXT NOT NULL,
        kind TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (repo_did, kind)
      ) WITHOUT ROWID;
      INSERT INTO ci_repo_totals (repo_did, kind, n)
        SELECT repo_did, kind, count(*) FROM ci_pipelines WHERE repo_did IS NOT NULL GROUP BY repo_did, kind;
      CREATE TRIGGER ci_repo_totals_insert AFTER INSERT ON ci_pipelines WHEN new.repo_did IS NOT NULL
      BEGIN
        INSERT INTO ci_repo_totals (repo_did, kind, n) VALUES (new.repo_did, new.kind, 1)
          ON CONFLICT (repo_did, kind) DO UPDATE SET n = n + 1;
      END;
      CREATE TRIGGER ci_repo_totals_delete AFTER DELETE ON ci_pipelines WHEN old.repo_did IS NOT NULL
      BEGIN
        UPDATE ci_repo_totals SET n = n - 1 WHERE repo_did = old.repo_did AND kind = old.kind;
      END;
      CREATE INDEX ci_pipelines_kind ON ci_pipelines (repo_did, kind, created_ns);
    `,
  },
  {
    version: 8,
    name: "Gen2 ci index: a name-keyed (Gen1) repo that gains its DID brings its earlier pipelines into queryPipelines",
    sql: `
      CREATE TRIGGER ci_pipelines_repo_did AFTER UPDATE OF repo_did ON repos
        WHEN new.repo_did IS NOT NULL AND new.name IS NOT NULL
      BEGIN
        UPDATE ci_pipelines SET repo_did = new.repo_did
          WHERE repo_did IS NULL AND pipeline_id IN (
            SELECT id FROM pipelines WHERE json_valid(record)
              AND json_extract(record, '$.triggerMetadata.repo.did') = new.owner
              AND json_extract(record, '$.triggerMetadata.repo.repo') = new.name);
      END;
      CREATE TRIGGER ci_repo_totals_update AFTER UPDATE OF repo_did ON ci_pipelines
        WHEN old.repo_did IS NOT new.repo_did
      BEGIN
        UPDATE ci_repo_totals SET n = n - 1 WHERE repo_did = old.repo_did AND kind = old.kind;
        INSERT INTO ci_repo_totals (repo_did, kind, n) SELECT new.repo_did, new.kind, 1
          WHERE new.repo_did IS NOT NULL
          ON CONFLICT (repo_did, kind) DO UPDATE SET n = n + 1;
      END;
    `,
  },
  {
    version: 9,
    name: "Gen2 ci index: runs_seq, a spindle-wide sequence number set on every change of a pipeline's workflow runs, so queryPipelines can reuse pipelines it built when nothing changed",
    sql: `
      -- runs_seq values are never reused (one counter for every pipeline), so an equal runs_seq
      -- means the same workflow_runs rows as when it was read. Rows indexed before this
      -- migration keep 0 until their runs next change.
      CREATE TABLE ci_runs_seq (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
      INSERT INTO ci_runs_seq (id, n) VALUES (1, 0);
      ALTER TABLE ci_pipelines ADD COLUMN runs_seq INTEGER NOT NULL DEFAULT 0;
      CREATE TRIGGER ci_runs_seq_pipeline AFTER INSERT ON ci_pipelines
      BEGIN
        UPDATE ci_runs_seq SET n = n + 1 WHERE id = 1;
        UPDATE ci_pipelines SET runs_seq = (SELECT n FROM ci_runs_seq WHERE id = 1)
          WHERE pipeline_id = new.pipeline_id;
      END;
      CREATE TRIGGER ci_runs_seq_insert AFTER INSERT ON workflow_runs
      BEGIN
        UPDATE ci_runs_seq SET n = n + 1 WHERE id = 1;
        UPDATE ci_pipelines SET runs_seq = (SELECT n FROM ci_runs_seq WHERE id = 1)
          WHERE pipeline_id = new.pipeline_id;
      END;
      CREATE TRIGGER ci_runs_seq_update AFTER UPDATE ON workflow_runs
      BEGIN
        UPDATE ci_runs_seq SET n = n + 1 WHERE id = 1;
        UPDATE ci_pipelines SET runs_seq = (SELECT n FROM ci_runs_seq WHERE id = 1)
          WHERE pipeline_id IN (old.pipeline_id, new.pipeline_id);
      END;
      CREATE TRIGGER ci_runs_seq_delete AFTER DELETE ON workflow_runs
      BEGIN
        UPDATE ci_runs_seq SET n = n + 1 WHERE id = 1;
        UPDATE ci_pipelines SET runs_seq = (SELECT n FROM ci_runs_seq WHERE id = 1)
          WHERE pipeline_id = old.pipeline_id;
      END;
    `,
  },
];

/** Applies every migration newer than the database's `user_version`, in order. */
export function migrate(db: DatabaseSync, migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new Error(
        `migration list is out of order at "${m.name}": version ${m.version}, expected ${i + 1}`,
      );
  });
  const current = schemaVersion(db);
  const latest = migrations.length;
  if (current > latest) {
    throw new Error(
      `database schema version ${current} is newer than this build knows (${latest}); refusing to open it`,
    );
  }
  for (const m of migrations.slice(current)) {
    db.exec("BEGIN IMMEDIATE");
    try {
      // Re-read under the write lock: another process may have migrated since we looked.
      if (schemaVersion(db) < m.version) {
        if (m.sql) db.exec(m.sql);
        m.up?.(db);
        // PRAGMA takes no bound parameters; version is a trusted integer from this file.
        db.exec(`PRAGMA user_version = ${m.version}`);
      }
      db.exec("COMMIT");
    } catch (err) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw new Error(`migration ${m.version} (${m.name}) failed: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** The schema version of an open database. */
export function schemaVersion(db: DatabaseSync): number {
  return Number((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version);
}
