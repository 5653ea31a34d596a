/**
 * The read side of `sh.tangled.ci.*` (gen2 §2.6, §2.7): stored pipelines (Gen1
 * ones from knots and Gen2 ones this spindle built) as `sh.tangled.ci.pipeline` objects; and
 * the two lookups intake's dedupe makes on the same index (a push or a pull already built).
 *
 * Reads the `ci_pipelines` index (migration 6, filled by a trigger on every pipeline insert)
 * joined with `pipelines`, so a page costs one indexed query (plus a total) whatever the number
 * of stored pipelines.
 *
 * Built pipelines are remembered per pipeline id (deep-frozen, so `ValidatedPipelines` keeps
 * their validated JSON by identity) with what they were built from: the index row (tid, repo
 * DID, created times) and its `runs_seq` (migration 9: a number from one spindle-wide sequence,
 * set by triggers on every insert, update or delete of the pipeline's workflow_runs rows, so an
 * equal number means unchanged runs). A page reuses a remembered pipeline only when all of these
 * are equal, so a new status, a new run or a repo that gains its DID builds it again; the
 * stored record is not compared, as records are written once (Ledger.admit) and never updated.
 * Only the pipelines that changed are read further (their record and runs, in one query).
 * A pipeline built inside an open transaction is not remembered (a rollback would reuse its
 * runs_seq). runs_seq is read before the runs it stands for, so a write by another connection
 * in between can only make the remembered pipeline newer than its number: rebuilt next time.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { WorkflowStatus } from "../../engine/engine.ts";
import {
  buildCiPipeline,
  type CiPipeline,
  type QueryPipelinesParams,
  type StoredStatus,
} from "../../protocol/index.ts";
import type { Gen2TriggerMetadata, PullAction } from "../../protocol/trigger-metadata.ts";

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

/**
 * A page row, as an array (cheaper than objects for 250 rows): the index row and its runs'
 * state number, without the record. created_ns as decimal text (it exceeds 2^53).
 */
type PageRow = [
  pipelineId: number,
  tid: string,
  repoDid: string | null,
  createdNs: string,
  runsSeq: number,
  knot: string,
  createdAtMs: number,
];

/** A built pipeline and what it was built from (null: the record has no usable trigger). */
interface Built {
  tid: string;
  repoDid: string | null;
  createdNs: string;
  createdAtMs: number;
  runsSeq: number;
  pipeline: CiPipeline | null;
}

interface RunTimes {
  name: string;
  status: WorkflowStatus;
  startedAt: number | null;
  finishedAt: number | null;
  updatedAt: number;
  error: string | null;
}

const PAGE_COLUMNS =
  "c.pipeline_id, c.tid, c.repo_did, CAST(c.created_ns AS TEXT), c.runs_seq, p.knot, p.created_at";
const JOIN = "JOIN pipelines p ON p.id = c.pipeline_id";

/** SQLite's bound-parameter limit is 32766; far more commits than any page needs. */
export const MAX_COMMITS = 1000;

/** Pipelines remembered (~1 KB each); beyond this the least recently built are dropped. */
const DEFAULT_MAX_BUILT = 20_000;

export class CiPipelines {
  readonly #db: DatabaseSync;
  readonly #byTid: StatementSync;
  readonly #record: StatementSync;
  readonly #recentPush: StatementSync;
  readonly #recentPushOn: StatementSync;
  readonly #pull: StatementSync;
  readonly #runs = new Map<number, StatementSync>();
  readonly #pages = new Map<string, { rows: StatementSync; total: StatementSync }>();
  readonly #totals = new Map<number, StatementSync>();
  /** pipeline id → the pipeline last built for it; Map order = build order (oldest first). */
  readonly #built = new Map<number, Built>();
  readonly #maxBuilt: number;
  #builds = 0;

  constructor(db: DatabaseSync, opts: { maxBuilt?: number } = {}) {
    this.#db = db;
    this.#maxBuilt = opts.maxBuilt ?? DEFAULT_MAX_BUILT;
    this.#byTid = db.prepare(
      `SELECT ${PAGE_COLUMNS}, p.record FROM ci_pipelines c ${JOIN} WHERE c.tid = ? ORDER BY c.created_ns DESC LIMIT 1`,
    );
    this.#byTid.setReturnArrays(true);
    this.#record = db.prepare("SELECT record FROM pipelines WHERE id = ?");
    const recent = `SELECT 1 FROM ci_pipelines c JOIN pipelines p ON p.id = c.pipeline_id
      WHERE c.repo_did = ? AND c.commit_sha = ? AND c.kind = 'push' AND c.ref = ? AND c.created_ns > ?`;
    this.#recentPush = db.prepare(`${recent} LIMIT 1`);
    this.#recentPushOn = db.prepare(`${recent} AND p.knot = ? LIMIT 1`);
    this.#pull = db.prepare(
      `SELECT p.rkey AS tid FROM ci_pipelines c JOIN pipelines p ON p.id = c.pipeline_id
        WHERE c.repo_did = ? AND c.commit_sha = ? AND c.kind = 'pull_request' AND c.created_ns >= ?
          AND p.knot = ?
          AND json_extract(p.record, '$.triggerMetadata.pullRequest.pull') = ?
          AND json_extract(p.record, '$.triggerMetadata.pullRequest.action') IN (?, ?)
        LIMIT 1`,
    );
  }

  /**
   * Whether a push pipeline for (repo DID, commit, ref) was stored after `sinceNs`; with `knot`,
   * only one stored under that knot column (the spindle's own hostname: one it built itself).
   */
  hasRecentPush(p: { repoDid: string; sha: string; ref: string; sinceNs: bigint; knot?: string }): boolean {
    const row =
      p.knot === undefined
        ? this.#recentPush.get(p.repoDid, p.sha, p.ref, p.sinceNs)
        : this.#recentPushOn.get(p.repoDid, p.sha, p.ref, p.sinceNs, p.knot);
    return row !== undefined;
  }

  /**
   * The TID of a pull_request pipeline of `pull` at `sha`, stored under `knot` since `sinceNs`
   * with one of the two actions, or null (pull redelivery, intake/pulls.ts).
   */
  pullPipeline(p: {
    repoDid: string;
    sha: string;
    sinceNs: bigint;
    knot: string;
    pull: string;
    actions: readonly [string, string];
  }): string | null {
    const row = this.#pull.get(p.repoDid, p.sha, p.sinceNs, p.knot, p.pull, p.actions[0], p.actions[1]) as
      | { tid: string }
      | undefined;
    return row?.tid ?? null;
  }

  /** Pipelines built (not reused from an earlier answer) so far. */
  get builds(): number {
    return this.#builds;
  }

  /**
   * Newest first; `cursor` = created nanos of the last row of the previous page (decimal);
   * `total` counts the matches after the cursor filter; a cursor is returned only for a full
   * page (all as upstream's `db/pipelines.go`, gen2 §2.6). GUESS: like upstream, several
   * pipelines of one commit may be returned even though the lexicon says at most one.
   * The pipelines returned are deep-frozen and may be shared with later answers.
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
      const from = commits.length > 0 ? "ci_pipelines c INDEXED BY ci_pipelines_commit" : "ci_pipelines c";
      const rows = this.#db.prepare(
        `SELECT ${PAGE_COLUMNS} FROM ${from} ${JOIN} WHERE ${w} ORDER BY c.created_ns DESC LIMIT ?`,
      );
      rows.setReturnArrays(true);
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
    const rows = st.rows.all(...args, p.limit) as unknown as PageRow[];
    const pipelines = this.#pipelines(rows);
    const last = rows.at(-1);
    return {
      pipelines,
      total,
      ...(rows.length === p.limit && last !== undefined && { cursor: last[3] }),
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
    const row = this.#byTid.get(tid) as unknown as PageRow | undefined;
    if (!row) return null;
    return this.#pipelines([row])[0] ?? null;
  }

  /** The stored row of `tid` (for the log stream and cancel). */
  row(tid: string): CiPipelineRow | null {
    const row = this.#byTid.get(tid) as unknown as [...PageRow, record: string] | undefined;
    if (!row) return null;
    const [pipelineId, t, repoDid, createdNs, , knot, createdAtMs, record] = row;
    return { pipelineId, tid: t, knot, repoDid, createdNs: BigInt(createdNs), createdAtMs, record };
  }

  /** The pipelines of `rows` (in order, leaving out unusable records): remembered or built. */
  #pipelines(rows: readonly PageRow[]): CiPipeline[] {
    const found: Array<CiPipeline | null | undefined> = new Array(rows.length);
    const stale: PageRow[] = [];
    for (const [i, row] of rows.entries()) {
      const seen = this.#built.get(row[0]);
      if (
        seen !== undefined &&
        seen.runsSeq === row[4] &&
        seen.tid === row[1] &&
        seen.repoDid === row[2] &&
        seen.createdNs === row[3] &&
        seen.createdAtMs === row[6]
      ) {
        found[i] = seen.pipeline;
      } else {
        stale.push(row);
      }
    }
    if (stale.length > 0) {
      // Some changed (or were never built): build those.
      const runs = this.#runsOf(stale.map((row) => row[0]));
      const remember = !this.#db.isTransaction;
      for (const [i, row] of rows.entries()) {
        if (found[i] !== undefined) continue;
        const record = this.#record.get(row[0]) as { record: string } | undefined;
        const pipeline = build(row, record?.record ?? "", runs.get(row[0]) ?? []);
        this.#builds++;
        found[i] = pipeline;
        if (remember) this.#remember(row, pipeline);
      }
    }
    const out: CiPipeline[] = [];
    for (const p of found) if (p !== null && p !== undefined) out.push(p);
    return out;
  }

  #remember(row: PageRow, pipeline: CiPipeline | null): void {
    const [id, tid, repoDid, createdNs, runsSeq, , createdAtMs] = row;
    this.#built.delete(id);
    this.#built.set(id, { tid, repoDid, createdNs, createdAtMs, runsSeq, pipeline });
    if (this.#built.size > this.#maxBuilt) {
      // Drop the least recently built eighth (a Map iterates in insertion order).
      let drop = Math.max(1, this.#maxBuilt >> 3);
      for (const key of this.#built.keys()) {
        if (drop-- <= 0) break;
        this.#built.delete(key);
      }
    }
  }

  /** The workflow runs of some pipelines, each pipeline's in insertion order. */
  #runsOf(ids: number[]): Map<number, RunTimes[]> {
    let st = this.#runs.get(ids.length);
    if (!st) {
      st = this.#db.prepare(
        `SELECT pipeline_id, name, status, started_at, finished_at, updated_at, error FROM workflow_runs
          WHERE pipeline_id IN (${ids.map(() => "?").join(", ")}) ORDER BY rowid`,
      );
      this.#runs.set(ids.length, st);
    }
    const runs = new Map<number, RunTimes[]>();
    for (const r of st.all(...ids)) {
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
    return runs;
  }
}

/** The ci.pipeline of one stored pipeline, deep-frozen; null when its record has no usable trigger. */
function build(row: PageRow, record: string, runs: readonly RunTimes[]): CiPipeline | null {
  const [, tid, repoDid, , , , createdAtMs] = row;
  const trigger = gen2Trigger(repoDid, record);
  if (trigger === null) return null;
  return deepFreeze(
    buildCiPipeline({
      id: tid,
      createdAt: new Date(createdAtMs),
      trigger,
      workflows: runs.map((r) => r.name),
      statuses: runs.flatMap(statusesOf),
    }),
  );
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
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

const PULL_ACTIONS: ReadonlySet<string> = new Set(["opened", "reopened", "closed", "merged", "synchronize"]);

/**
 * A stored record's trigger in its Gen2 form. Gen2 records are stored that way already; Gen1
 * knot records get `repoDid` from the index, a Gen1 `""` PR action becomes absent. GUESS: a Gen1
 * manual trigger has no commit, so it is answered with `sha: ""` (knots never send one).
 * Null for a record that has no usable trigger (never stored by the processor; defensive).
 */
function gen2Trigger(repoDid: string | null, record: string): Gen2TriggerMetadata | null {
  let t: Record<string, unknown> | undefined;
  try {
    t = (JSON.parse(record) as { triggerMetadata?: Record<string, unknown> }).triggerMetadata;
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
      repoDid: repoDid ?? String(repo.repoDid ?? ""),
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
