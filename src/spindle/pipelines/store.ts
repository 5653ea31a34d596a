/**
 * SQL for the durable queue (migration 5): `pipelines` (dedupe on (knot, rkey), queue order =
 * id) and `workflow_runs` (latest status per workflow, frozen plan). Synchronous; callers
 * group writes with the status events they emit in one `transaction()`.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { WorkflowStatus } from "../../engine/engine.ts";
import type { RunPlan } from "../../workflow/resolve.ts";

export type PipelineState = "queued" | "running" | "done";

export interface PipelineRow {
  id: number;
  knot: string;
  rkey: string;
  /** Secrets scope key of the repo. */
  scope: string;
  state: PipelineState;
  /** When it was admitted (ms since the epoch, the ledger's clock). */
  createdAt: number;
  /** The repo owner's DID, from the record's trigger (fair share); the scope when absent. */
  owner: string;
  /** The repo's key: its DID (Gen2), `<owner>/<name>` (Gen1), else the scope. */
  repo: string;
}

export interface RunRow {
  wid: string;
  pipelineId: number;
  knot: string;
  rkey: string;
  name: string;
  plan: RunPlan | null;
  status: WorkflowStatus;
  exitCode: number | null;
  error: string | null;
}

/** The columns of a PipelineRow; owner and repo come from the stored record's trigger. */
const PIPELINE_COLUMNS = `id, knot, rkey, scope, state, created_at,
  CASE WHEN json_valid(record) THEN json_extract(record, '$.triggerMetadata.repo.did') END AS owner,
  CASE WHEN json_valid(record) THEN coalesce(json_extract(record, '$.triggerMetadata.repo.repoDid'),
    json_extract(record, '$.triggerMetadata.repo.did') || '/' || json_extract(record, '$.triggerMetadata.repo.repo')) END AS repo`;

const RUN_SELECT = `SELECT r.wid, r.pipeline_id, r.name, r.plan, r.status, r.exit_code, r.error, p.knot, p.rkey
  FROM workflow_runs r JOIN pipelines p ON p.id = r.pipeline_id`;

export class PipelineStore {
  readonly #db: DatabaseSync;
  readonly #s: Record<string, StatementSync>;
  /** Queued pipelines, kept in memory: a count(*) per accepted pipeline grows with the queue. */
  #queued: number;

  constructor(db: DatabaseSync) {
    this.#db = db;
    const p = (sql: string) => db.prepare(sql);
    this.#s = {
      insertPipeline: p(
        "INSERT OR IGNORE INTO pipelines (knot, rkey, record, scope, state, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      ),
      insertRun: p(
        "INSERT INTO workflow_runs (wid, pipeline_id, name, plan, status, exit_code, error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      setRun: p(
        "UPDATE workflow_runs SET status = ?, exit_code = ?, error = ?, updated_at = ? WHERE wid = ?",
      ),
      setState: p("UPDATE pipelines SET state = ? WHERE id = ?"),
      claim: p(
        `UPDATE pipelines SET state = 'running' WHERE id = ? AND state = 'queued' RETURNING ${PIPELINE_COLUMNS}`,
      ),
      queuedAfter: p(
        `SELECT ${PIPELINE_COLUMNS} FROM pipelines WHERE id > ? AND state = 'queued' ORDER BY id`,
      ),
      pendingNote: p("SELECT error FROM workflow_runs WHERE pipeline_id = ? AND status = 'pending' LIMIT 1"),
      queued: p("SELECT count(*) AS n FROM pipelines WHERE state = 'queued'"),
      inState: p(`SELECT ${PIPELINE_COLUMNS} FROM pipelines WHERE state = ? ORDER BY id`),
      runsOf: p(`${RUN_SELECT} WHERE r.pipeline_id = ? ORDER BY r.rowid`),
      record: p("SELECT record FROM pipelines WHERE knot = ? AND rkey = ?"),
      exists: p("SELECT 1 FROM pipelines WHERE knot = ? AND rkey = ?"),
      runByName: p(`${RUN_SELECT} WHERE p.knot = ? AND p.rkey = ? AND r.name = ?`),
      runByWid: p(`${RUN_SELECT} WHERE r.wid = ?`),
      existsWid: p("SELECT 1 FROM workflow_runs WHERE wid = ?"),
    };
    this.#queued = Number((this.#s.queued!.get() as { n: number }).n);
  }

  get db(): DatabaseSync {
    return this.#db;
  }

  /** Inserts the pipeline; returns its id, or null when (knot, rkey) was already accepted. */
  insertPipeline(
    p: { knot: string; rkey: string; recordJson: string; scope: string; state: PipelineState },
    nowMs: number,
  ): number | null {
    const res = this.#s.insertPipeline!.run(p.knot, p.rkey, p.recordJson, p.scope, p.state, nowMs);
    if (Number(res.changes) !== 1) return null;
    if (p.state === "queued") this.#queued++;
    return Number(res.lastInsertRowid);
  }

  insertRun(
    run: Omit<RunRow, "knot" | "rkey" | "exitCode" | "error"> & {
      exitCode?: number | null;
      error?: string | null;
    },
    nowMs: number,
  ): void {
    this.#s.insertRun!.run(
      run.wid,
      run.pipelineId,
      run.name,
      run.plan === null ? null : JSON.stringify(run.plan),
      run.status,
      run.exitCode ?? null,
      run.error ?? null,
      nowMs,
    );
  }

  pipelineExists(knot: string, rkey: string): boolean {
    return this.#s.exists!.get(knot, rkey) !== undefined;
  }

  /** The repo named in a stored pipeline's trigger (owner DID and name), or null. */
  pipelineRepo(knot: string, rkey: string): { did: string; name: string } | null {
    const row = this.#s.record!.get(knot, rkey);
    if (!row) return null;
    const repo = (
      JSON.parse(String(row.record)) as { triggerMetadata?: { repo?: { did?: string; repo?: string } } }
    ).triggerMetadata?.repo;
    return { did: String(repo?.did ?? ""), name: String(repo?.repo ?? "") };
  }

  widExists(wid: string): boolean {
    return this.#s.existsWid!.get(wid) !== undefined;
  }

  setRunStatus(
    wid: string,
    status: WorkflowStatus,
    exitCode: number | null,
    error: string | null,
    nowMs: number,
  ): void {
    this.#s.setRun!.run(status, exitCode, error, nowMs, wid);
  }

  setPipelineState(id: number, state: PipelineState): void {
    this.#s.setState!.run(state, id);
  }

  /** Moves a queued pipeline to `running` and returns it; null when it is not queued. */
  claim(id: number): PipelineRow | null {
    const row = this.#s.claim!.get(id);
    if (!row) return null;
    this.#queued--;
    return toPipeline(row);
  }

  /** Queued pipelines with an id above `id`, oldest first (what the scheduler has not seen yet). */
  queuedAfter(id: number): PipelineRow[] {
    return this.#s.queuedAfter!.all(id).map(toPipeline);
  }

  /** The error text of one of the pipeline's pending runs (its queue note), or null. */
  pendingNote(pipelineId: number): string | null {
    const row = this.#s.pendingNote!.get(pipelineId);
    return row?.error == null ? null : String(row.error);
  }

  /**
   * Pipelines waiting for a worker. Counted in memory; callers that roll back a transaction in
   * which they inserted a queued pipeline call `recount()`.
   */
  queuedCount(): number {
    return this.#queued;
  }

  recount(): void {
    this.#queued = Number((this.#s.queued!.get() as { n: number }).n);
  }

  pipelinesIn(state: PipelineState): PipelineRow[] {
    return this.#s.inState!.all(state).map(toPipeline);
  }

  runsOf(pipelineId: number): RunRow[] {
    return this.#s.runsOf!.all(pipelineId).map(toRun);
  }

  runByName(knot: string, rkey: string, name: string): RunRow | null {
    const row = this.#s.runByName!.get(knot, rkey, name);
    return row ? toRun(row) : null;
  }

  runByWid(wid: string): RunRow | null {
    const row = this.#s.runByWid!.get(wid);
    return row ? toRun(row) : null;
  }
}

function toPipeline(r: Record<string, unknown>): PipelineRow {
  const scope = String(r.scope);
  const owner = r.owner == null ? scope : String(r.owner);
  return {
    id: Number(r.id),
    knot: String(r.knot),
    rkey: String(r.rkey),
    scope: String(r.scope),
    state: r.state as PipelineState,
    createdAt: Number(r.created_at),
    owner,
    repo: r.repo == null ? scope : String(r.repo),
  };
}

function toRun(r: Record<string, unknown>): RunRow {
  return {
    wid: String(r.wid),
    pipelineId: Number(r.pipeline_id),
    knot: String(r.knot),
    rkey: String(r.rkey),
    name: String(r.name),
    plan: r.plan === null ? null : (JSON.parse(String(r.plan)) as RunPlan),
    status: r.status as WorkflowStatus,
    exitCode: r.exit_code === null ? null : Number(r.exit_code),
    error: r.error === null ? null : String(r.error),
  };
}
