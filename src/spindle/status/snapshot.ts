/**
 * What the status page shows, read from the stores that already exist: the SQLite `pipelines`
 * and `workflow_runs` tables (running, finished, usage), the queue (queue.ts), the intake's
 * consumers (connection state and cursors), the scheduler's slots and each running workflow's
 * current step (the scheduler knows it from the control lines its log sinks write).
 */

import type { DatabaseSync } from "node:sqlite";
import { OWNER_REPO, type QueueItem, type QueueOrderSource, queueItems, REPO_JOIN } from "./queue.ts";

export interface RunningItem {
  wid: string;
  owner: string;
  repo: string;
  workflow: string;
  /** The step running now (its name), or null between steps / before the first. */
  step: string | null;
  arch: string;
  startedAt: number | null;
}

export interface FinishedItem {
  wid: string;
  owner: string;
  repo: string;
  workflow: string;
  status: string;
  error: string | null;
  startedAt: number | null;
  finishedAt: number;
}

export interface UsageRow {
  owner: string;
  repo: string;
  runs: number;
  failed: number;
  /** Engine time inside the window (ms). */
  ms: number;
}

export interface StatusSnapshot {
  now: number;
  running: RunningItem[];
  queue: QueueItem[];
  finished: FinishedItem[];
  usage: { byRepo: UsageRow[]; byOwner: Omit<UsageRow, "repo">[] };
  intake: {
    jetstream: { connected: boolean; cursorUs: number | null } | null;
    knots: { knot: string; connected: boolean; cursor: string | null }[];
  };
  capacity: { used: number; total: number; byArch: { arch: string; running: number }[] };
}

export interface StatusSources {
  db: DatabaseSync;
  scheduler: QueueOrderSource & {
    readonly activePipelines: number;
    /** The step a running workflow is in (null between steps, or when this process does not run it). */
    currentStep(wid: string): string | null;
  };
  maxJobCount: number;
  /** Null without intake (tests that feed pipelines directly). */
  intake: {
    jetstream: { readonly connected: boolean; readonly cursorUs: number | null };
    knots: { states(): { knot: string; connected: boolean; cursor: string | null }[] };
  } | null;
  now?: () => number;
}

const DAY_MS = 24 * 3600 * 1000;
const RECENT = 25;

const RUN_FROM = `FROM workflow_runs r JOIN pipelines p ON p.id = r.pipeline_id ${REPO_JOIN}`;

export function statusSnapshot(s: StatusSources): StatusSnapshot {
  const now = (s.now ?? Date.now)();
  const running = s.db
    .prepare(
      `SELECT r.wid, r.name, r.started_at, COALESCE(json_extract(r.plan, '$.architecture'), '') AS arch, ${OWNER_REPO}
       ${RUN_FROM} WHERE r.status = 'running' ORDER BY r.started_at, r.wid`,
    )
    .all();
  const finished = s.db
    .prepare(
      `SELECT r.wid, r.name, r.status, r.error, r.started_at, r.finished_at, ${OWNER_REPO}
       ${RUN_FROM} WHERE r.finished_at IS NOT NULL ORDER BY r.finished_at DESC, r.rowid DESC LIMIT ${RECENT}`,
    )
    .all();
  // Engine time inside the last 24 h: the overlap of [started, finished or now] with the window.
  const usage = s.db
    .prepare(
      `SELECT owner, repo, count(*) AS runs,
         sum(CASE WHEN status IN ('failed', 'timeout') THEN 1 ELSE 0 END) AS failed,
         sum(max(0, COALESCE(finished_at, :now) - max(started_at, :since))) AS ms
       FROM (SELECT r.status, r.started_at, r.finished_at, ${OWNER_REPO} ${RUN_FROM}
             WHERE r.started_at IS NOT NULL AND COALESCE(r.finished_at, :now) >= :since)
       GROUP BY owner, repo ORDER BY ms DESC, owner, repo`,
    )
    .all({ now, since: now - DAY_MS });
  const byRepo: UsageRow[] = usage.map((u) => ({
    owner: String(u.owner),
    repo: String(u.repo),
    runs: Number(u.runs),
    failed: Number(u.failed),
    ms: Number(u.ms),
  }));
  const owners = new Map<string, Omit<UsageRow, "repo">>();
  for (const u of byRepo) {
    const o = owners.get(u.owner) ?? { owner: u.owner, runs: 0, failed: 0, ms: 0 };
    o.runs += u.runs;
    o.failed += u.failed;
    o.ms += u.ms;
    owners.set(u.owner, o);
  }
  const runningItems: RunningItem[] = running.map((r) => ({
    wid: String(r.wid),
    owner: String(r.owner),
    repo: String(r.repo),
    workflow: String(r.name),
    step: s.scheduler.currentStep(String(r.wid)),
    arch: String(r.arch),
    startedAt: r.started_at === null ? null : Number(r.started_at),
  }));
  const archCounts = new Map<string, number>();
  for (const r of runningItems) archCounts.set(r.arch, (archCounts.get(r.arch) ?? 0) + 1);
  return {
    now,
    running: runningItems,
    queue: queueItems(s.db, s.scheduler),
    finished: finished.map((r) => ({
      wid: String(r.wid),
      owner: String(r.owner),
      repo: String(r.repo),
      workflow: String(r.name),
      status: String(r.status),
      error: r.error === null ? null : String(r.error),
      startedAt: r.started_at === null ? null : Number(r.started_at),
      finishedAt: Number(r.finished_at),
    })),
    usage: { byRepo, byOwner: [...owners.values()].sort((a, b) => b.ms - a.ms) },
    intake: {
      jetstream: s.intake
        ? { connected: s.intake.jetstream.connected, cursorUs: s.intake.jetstream.cursorUs }
        : null,
      knots: s.intake?.knots.states() ?? [],
    },
    capacity: {
      used: s.scheduler.activePipelines,
      total: s.maxJobCount,
      byArch: [...archCounts]
        .map(([arch, n]) => ({ arch, running: n }))
        .sort((a, b) => (a.arch < b.arch ? -1 : 1)),
    },
  };
}
