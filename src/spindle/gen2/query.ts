/**
 * The read side of `sh.tangled.ci.*` (gen2 §2.6, §2.7): stored pipelines (Gen1 ones from knots
 * and Gen2 ones this spindle built) as `sh.tangled.ci.pipeline` objects.
 *
 * Reads the `ci_pipelines` index (migration 6, filled by a trigger on every pipeline insert)
 * joined with `pipelines` for the record and `workflow_runs` for statuses, so a page costs two
 * indexed queries plus one for its workflows, whatever the number of stored pipelines.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { WorkflowStatus } from "../../engine/engine.ts";
import {
  buildCiPipeline,
  type CiPipeline,
  type QueryPipelinesParams,
  type StoredStatus,
} from "../../gen2/index.ts";
import type { Gen2TriggerMetadata, PullAction } from "../../gen2/wire/v2026/trigger-metadata.ts";

/** Rows of one pipeline as read from the database. */
export interface CiPipelineRow {
  pipelineId: number;
  tid: string;
  knot: string;
  repoDid: string | null;
  createdNs: bigint;
  createdAtMs: number;
  record: string;
}

interface RunTimes {
  name: string;
  status: WorkflowStatus;
  startedAt: number | null;
  finishedAt: number | null;
  updatedAt: number;
  error: string | null;
}

const PIPELINE_SELECT = `SELECT c.pipeline_id, c.tid, c.repo_did, c.created_ns, p.knot, p.record, p.created_at
  FROM ci_pipelines c JOIN pipelines p ON p.id = c.pipeline_id`;

/** SQLite's bound-parameter limit is 32766; far more commits than any page needs. */
export const MAX_COMMITS = 1000;

export class CiQuery {
  readonly #db: DatabaseSync;
  readonly #byTid: StatementSync;
  readonly #runs = new Map<number, StatementSync>();
  readonly #pages = new Map<string, { rows: StatementSync; total: StatementSync }>();
  readonly #totals = new Map<number, StatementSync>();

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#byTid = db.prepare(`${PIPELINE_SELECT} WHERE c.tid = ? ORDER BY c.created_ns DESC LIMIT 1`);
    this.#byTid.setReadBigInts(true);
  }

  /**
   * Newest first; `cursor` = created nanos of the last row of the previous page (decimal);
   * `total` counts the matches after the cursor filter; a cursor is returned only for a full
   * page (all as upstream's `db/pipelines.go`, gen2 §2.6). GUESS: like upstream, several
   * pipelines of one commit may be returned even though the lexicon says at most one.
   */
  query(p: QueryPipelinesParams & { limit: number }): {
    pipelines: CiPipeline[];
    total: number;
    cursor?: string;
  } {
    const commits = p.commits ?? [];
    const kinds = p.kinds ?? [];
    const cursor = p.cursor === undefined ? null : BigInt(p.cursor);
    const shape = `${commits.length}:${kinds.length}:${cursor === null ? 0 : 1}`;
    let st = this.#pages.get(shape);
    if (!st) {
      const where = ["c.repo_did = ?"];
      if (commits.length > 0) where.push(`c.commit_sha IN (${commits.map(() => "?").join(", ")})`);
      if (kinds.length > 0) where.push(`c.kind IN (${kinds.map(() => "?").join(", ")})`);
      if (cursor !== null) where.push("c.created_ns < ?");
      const w = where.join(" AND ");
      // With a commit list, look the commits up: without ANALYZE statistics SQLite prefers the
      // (repo, created) index to skip the sort and scans every pipeline of the repo (6 ms at 10k).
      const select =
        commits.length > 0
          ? PIPELINE_SELECT.replace("ci_pipelines c", "ci_pipelines c INDEXED BY ci_pipelines_commit")
          : PIPELINE_SELECT;
      const rows = this.#db.prepare(`${select} WHERE ${w} ORDER BY c.created_ns DESC LIMIT ?`);
      rows.setReadBigInts(true);
      const total = this.#db.prepare(`SELECT count(*) AS n FROM ci_pipelines c WHERE ${w}`);
      st = { rows, total };
      this.#pages.set(shape, st);
    }
    const args: Array<string | bigint> = [p.repo, ...commits, ...kinds];
    if (cursor !== null) args.push(cursor);
    // The first page of a repo (or of some kinds) is the common call: its total comes from the
    // per-repo counters (migration 7) instead of a count over every pipeline of the repo.
    const total =
      commits.length === 0 && cursor === null
        ? this.#repoTotal(p.repo, kinds)
        : Number((st.total.get(...args) as { n: number }).n);
    const rows = st.rows.all(...args, p.limit).map(toRow);
    const pipelines = this.#build(rows);
    const last = rows.at(-1);
    return {
      pipelines,
      total,
      ...(rows.length === p.limit && last !== undefined && { cursor: last.createdNs.toString() }),
    };
  }

  #repoTotal(repoDid: string, kinds: readonly string[]): number {
    let st = this.#totals.get(kinds.length);
    if (!st) {
      const k = kinds.length === 0 ? "" : ` AND kind IN (${kinds.map(() => "?").join(", ")})`;
      st = this.#db.prepare(`SELECT COALESCE(sum(n), 0) AS n FROM ci_repo_totals WHERE repo_did = ?${k}`);
      this.#totals.set(kinds.length, st);
    }
    return Number((st.get(repoDid, ...kinds) as { n: number }).n);
  }

  /** The pipeline whose id (record key) is `tid`, newest when a Gen1 knot TID repeats one. */
  get(tid: string): CiPipeline | null {
    const row = this.#byTid.get(tid);
    if (!row) return null;
    return this.#build([toRow(row)])[0] ?? null;
  }

  /** The stored row of `tid` (for the log stream and cancel). */
  row(tid: string): CiPipelineRow | null {
    const row = this.#byTid.get(tid);
    return row ? toRow(row) : null;
  }

  #build(rows: CiPipelineRow[]): CiPipeline[] {
    if (rows.length === 0) return [];
    let st = this.#runs.get(rows.length);
    if (!st) {
      st = this.#db.prepare(
        `SELECT pipeline_id, name, status, started_at, finished_at, updated_at, error FROM workflow_runs
          WHERE pipeline_id IN (${rows.map(() => "?").join(", ")}) ORDER BY rowid`,
      );
      this.#runs.set(rows.length, st);
    }
    const runs = new Map<number, RunTimes[]>();
    for (const r of st.all(...rows.map((x) => x.pipelineId))) {
      const id = Number(r.pipeline_id);
      const list = runs.get(id) ?? [];
      list.push({
        name: String(r.name),
        status: r.status as WorkflowStatus,
        startedAt: r.started_at === null ? null : Number(r.started_at),
        finishedAt: r.finished_at === null ? null : Number(r.finished_at),
        updatedAt: Number(r.updated_at),
        error: r.error === null ? null : String(r.error),
      });
      runs.set(id, list);
    }
    const out: CiPipeline[] = [];
    for (const row of rows) {
      const trigger = gen2Trigger(row);
      if (trigger === null) continue;
      const mine = runs.get(row.pipelineId) ?? [];
      out.push(
        buildCiPipeline({
          id: row.tid,
          createdAt: new Date(row.createdAtMs),
          trigger,
          workflows: mine.map((r) => r.name),
          statuses: mine.flatMap(statusesOf),
        }),
      );
    }
    return out;
  }
}

/** The status history buildCiPipeline wants, from the run's latest status and its two times. */
function statusesOf(r: RunTimes): StoredStatus[] {
  const out: StoredStatus[] = [];
  if (r.startedAt !== null)
    out.push({ workflow: r.name, status: "running", createdAt: new Date(r.startedAt) });
  if (r.status === "pending") return out;
  if (r.status === "running") {
    if (r.startedAt === null)
      out.push({ workflow: r.name, status: "running", createdAt: new Date(r.updatedAt) });
    return out;
  }
  out.push({
    workflow: r.name,
    status: r.status,
    createdAt: new Date(r.finishedAt ?? r.updatedAt),
    ...(r.error !== null && { error: r.error }),
  });
  return out;
}

function toRow(r: Record<string, unknown>): CiPipelineRow {
  return {
    pipelineId: Number(r.pipeline_id),
    tid: String(r.tid),
    knot: String(r.knot),
    repoDid: r.repo_did === null ? null : String(r.repo_did),
    createdNs: BigInt(r.created_ns as bigint),
    createdAtMs: Number(r.created_at),
    record: String(r.record),
  };
}

const PULL_ACTIONS: ReadonlySet<string> = new Set(["opened", "reopened", "closed", "merged", "synchronize"]);

/**
 * A stored record's trigger in its Gen2 form. Gen2 records are stored that way already; Gen1
 * knot records get `repoDid` from the index, a Gen1 `""` PR action becomes absent. GUESS: a Gen1
 * manual trigger has no commit, so it is answered with `sha: ""` (knots never send one).
 * Null for a record that has no usable trigger (never stored by the processor; defensive).
 */
function gen2Trigger(row: CiPipelineRow): Gen2TriggerMetadata | null {
  let t: Record<string, unknown> | undefined;
  try {
    t = (JSON.parse(row.record) as { triggerMetadata?: Record<string, unknown> }).triggerMetadata;
  } catch {
    return null;
  }
  if (t === undefined || t === null || typeof t !== "object") return null;
  const repo = (t.repo ?? {}) as Record<string, unknown>;
  const out: Gen2TriggerMetadata = {
    kind: t.kind as Gen2TriggerMetadata["kind"],
    repo: {
      knot: String(repo.knot ?? ""),
      did: String(repo.did ?? ""),
      repoDid: row.repoDid ?? String(repo.repoDid ?? ""),
      ...(typeof repo.repo === "string" && repo.repo !== "" && { repo: repo.repo }),
      defaultBranch: String(repo.defaultBranch ?? ""),
    },
  };
  if (typeof t.sourceRepo === "string" && t.sourceRepo !== "") out.sourceRepo = t.sourceRepo;
  const push = t.push as Record<string, unknown> | undefined;
  const pr = t.pullRequest as Record<string, unknown> | undefined;
  const manual = t.manual as Record<string, unknown> | undefined;
  if (push && typeof push === "object") {
    out.push = {
      ref: String(push.ref ?? ""),
      oldSha: String(push.oldSha ?? ""),
      newSha: String(push.newSha ?? ""),
    };
  } else if (pr && typeof pr === "object") {
    const action =
      typeof pr.action === "string" && PULL_ACTIONS.has(pr.action) ? (pr.action as PullAction) : undefined;
    out.pullRequest = {
      sourceBranch: String(pr.sourceBranch ?? ""),
      targetBranch: String(pr.targetBranch ?? ""),
      sourceSha: String(pr.sourceSha ?? ""),
      ...(action !== undefined && { action }),
      ...(typeof pr.pull === "string" && { pull: pr.pull }),
    };
  } else {
    const m = manual && typeof manual === "object" ? manual : {};
    const inputs = Array.isArray(m.inputs)
      ? (m.inputs as Array<Record<string, unknown>>).map((i) => ({
          key: String(i.key),
          value: String(i.value),
        }))
      : undefined;
    out.manual = {
      sha: typeof m.sha === "string" ? m.sha : "",
      ...(typeof m.ref === "string" && { ref: m.ref }),
      ...(inputs !== undefined && { inputs }),
    };
    if (out.kind !== "manual") return null;
  }
  return out;
}
