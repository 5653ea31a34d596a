/**
 * `sh.tangled.ci.triggerPipeline` (gen2 §2.6, §2.7): a validated input → the Gen2 trigger
 * metadata to compile with, the workflow files to run, and the AT-URI to answer with. Pure.
 */
import type { TriggerPipelineInput } from "../protocol/lexicons.ts";
import type { Gen2TriggerMetadata } from "../protocol/trigger-metadata.ts";
import type { WorkflowFile } from "./compile.ts";
import { type KnownRepo, triggerRepo } from "./push.ts";

export class DispatchError extends Error {
  override readonly name = "DispatchError";
  readonly code = "InvalidRequest";
}

/**
 * Manual → kind `manual` at `sha`; pullRequest → kind `pull_request`. A `sourceRepo` different
 * from the repo is kept: the run is then untrusted (no secrets, gen2 §2.5) — the caller decides
 * that from `trigger.sourceRepo`.
 */
export function triggerFromCiInput(input: TriggerPipelineInput, repo: KnownRepo): Gen2TriggerMetadata {
  if (input.repo !== repo.repoDid)
    throw new DispatchError(`trigger for ${input.repo} given repo ${repo.repoDid}`);
  const base = { repo: triggerRepo(repo) };
  const t = input.trigger;
  const fork =
    t.sourceRepo !== undefined && t.sourceRepo !== repo.repoDid ? { sourceRepo: t.sourceRepo } : {};
  if (t.$type === "sh.tangled.ci.trigger#manual") {
    return {
      kind: "manual",
      ...base,
      manual: {
        sha: t.sha,
        ...(t.ref !== undefined && t.ref !== "" && { ref: t.ref }),
        ...(t.inputs !== undefined && { inputs: t.inputs.map(({ key, value }) => ({ key, value })) }),
      },
      ...fork,
    };
  }
  return {
    kind: "pull_request",
    ...base,
    pullRequest: {
      ...(t.action !== undefined && { action: t.action }),
      // GUESS: the lexicon makes sourceBranch optional for fork PRs; "" stands for unknown.
      sourceBranch: t.sourceBranch ?? "",
      targetBranch: t.targetBranch,
      sourceSha: t.sourceSha,
      ...(t.pull !== undefined && { pull: t.pull }),
    },
    ...fork,
  };
}

/**
 * The files to compile for a dispatch: all of them when `names` is absent or empty, else those
 * named. GUESS: naming a workflow that does not exist is a 400 (upstream behaviour unknown);
 * a retry of a deleted workflow should say so rather than silently run nothing.
 */
export function selectWorkflows(files: readonly WorkflowFile[], names?: readonly string[]): WorkflowFile[] {
  if (names === undefined || names.length === 0) return [...files];
  const have = new Set(files.map((f) => f.name));
  const unknown = names.filter((n) => !have.has(n));
  if (unknown.length > 0) throw new DispatchError(`no such workflow at this commit: ${unknown.join(", ")}`);
  const wanted = new Set(names);
  return files.filter((f) => wanted.has(f.name));
}
