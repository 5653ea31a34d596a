/**
 * The `sh.tangled.ci.pipeline` object (gen2 §2.7) built from what the spindle stores: the
 * pipeline's trigger metadata and its workflows' status events. Pure; the result passes
 * `validate.pipeline` (tested).
 */
import type { CiPipeline, CiTrigger, CiWorkflow, CiWorkflowStatus } from "./lexicons.ts";
import { rfc3339Seconds } from "./time.ts";
import { type Gen2TriggerMetadata, triggerCommit } from "./trigger-metadata.ts";

export interface StoredStatus {
  workflow: string;
  status: CiWorkflowStatus;
  /** RFC 3339 text or a Date. */
  createdAt: string | Date;
  error?: string;
}

export interface StoredPipeline {
  /** The pipeline TID (rkey of the stored `sh.tangled.pipeline` event). */
  id: string;
  createdAt: string | Date;
  trigger: Gen2TriggerMetadata;
  /** Workflow names in pipeline order (file names, e.g. `ci.yml`). */
  workflows: readonly string[];
  /** Status events of this pipeline in the order they were stored (oldest first). */
  statuses: readonly StoredStatus[];
}

const TERMINAL: ReadonlySet<CiWorkflowStatus> = new Set(["failed", "timeout", "cancelled", "success"]);

export function buildCiPipeline(row: StoredPipeline): CiPipeline {
  const t = row.trigger;
  const out: CiPipeline = {
    commit: triggerCommit(t),
    createdAt: rfc3339Seconds(row.createdAt),
    id: row.id,
    repo: t.repo.repoDid,
    trigger: ciTrigger(t),
    workflows: row.workflows.map((name) => ciWorkflow(name, row.statuses)),
  };
  if (t.sourceRepo !== undefined && t.sourceRepo !== t.repo.repoDid) out.sourceRepo = t.sourceRepo;
  return out;
}

/**
 * status = the latest status event, `pending` if none; startedAt = the first `running`;
 * finishedAt = the last terminal one (gen2 §2.7). GUESS: `error` is the latest event's error.
 */
function ciWorkflow(name: string, statuses: readonly StoredStatus[]): CiWorkflow {
  const mine = statuses.filter((s) => s.workflow === name);
  const latest = mine.at(-1);
  const wf: CiWorkflow = { id: name, name, status: latest?.status ?? "pending" };
  const started = mine.find((s) => s.status === "running");
  if (started !== undefined) wf.startedAt = rfc3339Seconds(started.createdAt);
  const finished = mine.findLast((s) => TERMINAL.has(s.status));
  if (finished !== undefined) wf.finishedAt = rfc3339Seconds(finished.createdAt);
  if (latest?.error !== undefined && latest.error !== "") wf.error = latest.error;
  return wf;
}

/**
 * Union members carry `$type`. GUESS: the top-level `sourceRepo` of the stored trigger is
 * repeated inside pullRequest/manual triggers (both lexicon defs have the field; the appview's
 * fork-PR trigger sends it there).
 */
function ciTrigger(t: Gen2TriggerMetadata): CiTrigger {
  const fork = t.sourceRepo !== undefined && t.sourceRepo !== t.repo.repoDid ? t.sourceRepo : undefined;
  if (t.push !== undefined) {
    return {
      $type: "sh.tangled.ci.trigger#push",
      newSha: t.push.newSha,
      oldSha: t.push.oldSha,
      ref: t.push.ref,
    };
  }
  if (t.pullRequest !== undefined) {
    const pr = t.pullRequest;
    return {
      $type: "sh.tangled.ci.trigger#pullRequest",
      // Always sent: the appview's generated types require it; absent means opened (spindle §9).
      action: pr.action ?? "opened",
      ...(pr.pull !== undefined && { pull: pr.pull }),
      ...(pr.sourceBranch !== "" && { sourceBranch: pr.sourceBranch }),
      ...(fork !== undefined && { sourceRepo: fork }),
      sourceSha: pr.sourceSha,
      targetBranch: pr.targetBranch,
    };
  }
  if (t.manual !== undefined) {
    const m = t.manual;
    return {
      $type: "sh.tangled.ci.trigger#manual",
      ...(m.inputs !== undefined &&
        m.inputs.length > 0 && { inputs: m.inputs.map(({ key, value }) => ({ key, value })) }),
      ...(m.ref !== undefined && m.ref !== "" && { ref: m.ref }),
      sha: m.sha,
      ...(fork !== undefined && { sourceRepo: fork }),
    };
  }
  throw new Error(`pipeline trigger of kind ${t.kind} carries no ${t.kind} data`);
}
