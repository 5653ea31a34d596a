/**
 * The queue as the status page shows it: each waiting pipeline with its place (1 = next) and
 * how long it has waited. One small function, so the page can switch to the scheduler's own
 * view (a fair-share `queueSnapshot()`, when the scheduler offers one) without touching the rest.
 */
import type { DatabaseSync } from "node:sqlite";

export interface QueueItem {
  place: number;
  knot: string;
  rkey: string;
  owner: string;
  repo: string;
  workflows: string[];
  /** Admission time, ms since the epoch (the ledger's clock). */
  createdAt: number;
}

/** What a scheduler may offer: its pipelines in the order it will claim them (ids). */
export interface QueueOrderSource {
  queueSnapshot?: () => readonly { id: number }[];
}

export function queueItems(db: DatabaseSync, scheduler: QueueOrderSource): QueueItem[] {
  const rows = db
    .prepare(
      `SELECT p.id, p.knot, p.rkey, p.created_at, ${OWNER_REPO},
         (SELECT json_group_array(r.name) FROM workflow_runs r WHERE r.pipeline_id = p.id) AS workflows
       FROM pipelines p ${REPO_JOIN}
       WHERE p.state = 'queued' ORDER BY p.id`,
    )
    .all();
  // Claim order: the scheduler's when it says (fair share), else queue order (id).
  const order = scheduler.queueSnapshot?.().map((q) => q.id);
  if (order) {
    const rank = new Map(order.map((id, i) => [id, i]));
    rows.sort((a, b) => (rank.get(Number(a.id)) ?? 1e9) - (rank.get(Number(b.id)) ?? 1e9));
  }
  return rows.map((r, i) => ({
    place: i + 1,
    knot: String(r.knot),
    rkey: String(r.rkey),
    owner: String(r.owner),
    repo: String(r.repo),
    workflows: JSON.parse(String(r.workflows)) as string[],
    createdAt: Number(r.created_at),
  }));
}

/**
 * The repo of a pipeline `p`: the owner DID and name from a Gen1 trigger, else from the repos
 * row of the Gen2 repo DID (the ci index has it), else the DID itself.
 */
export const REPO_JOIN =
  "LEFT JOIN ci_pipelines ci ON ci.pipeline_id = p.id LEFT JOIN repos rp ON rp.repo_did = ci.repo_did";
export const OWNER_REPO = `COALESCE(json_extract(p.record, '$.triggerMetadata.repo.did'), rp.owner, '') AS owner,
  COALESCE(rp.name, json_extract(p.record, '$.triggerMetadata.repo.repo'), ci.repo_did, '') AS repo`;
