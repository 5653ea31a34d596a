/**
 * Gen2 compile (gen2 §2.4, §2.11; spindle-protocol §9): the spindle compiles
 * `.tangled/workflows/*` itself. Reuses `src/workflow` with its Gen2 options on:
 * `when[].types` (PR actions; default opened, reopened, synchronize; a missing action = opened),
 * `when[].paths` (globbed against the push's changed files), and Gen2 clone defaults
 * (`clone.tags` and `clone.submodules` true when omitted).
 */

import type { Gen2TriggerMetadata } from "../protocol/trigger-metadata.ts";
import { compileWorkflows, type WorkflowFile } from "../workflow/compile.ts";
import type { SourceLimits } from "../workflow/source.ts";
import type { CloneOptions, Diagnostic, TriggerMetadata } from "../workflow/types.ts";

/** `sh.tangled.pipeline` as the v2026 lexicon has it (clone.tags required). */
export interface Gen2PipelineRecord {
  /**
   * GUESS: "" as Go's encoding/json writes an unset `$type` (the knot's Gen1 records do the
   * same, gen2 §2.4); nothing is known to read it.
   */
  $type: "";
  triggerMetadata: Gen2TriggerMetadata;
  workflows: Array<{ clone: Required<CloneOptions>; engine: string; name: string; raw: string }>;
}

export interface Gen2CompileOptions {
  /** From the refUpdate; undefined when unknown (then `when[].paths` does not filter). */
  changedFiles?: readonly string[];
  limits?: SourceLimits;
}

export interface Gen2CompileResult {
  /** Undefined when no workflow matches: then no pipeline is created (gen2 §2.4). */
  record: Gen2PipelineRecord | undefined;
  diagnostics: Diagnostic[];
}

export function compileGen2(
  files: readonly WorkflowFile[],
  trigger: Gen2TriggerMetadata,
  opts: Gen2CompileOptions = {},
): Gen2CompileResult {
  const result = compileWorkflows(files, matchTrigger(trigger), {
    gen2: true,
    ...(opts.changedFiles !== undefined && { changedFiles: opts.changedFiles }),
    ...(opts.limits !== undefined && { limits: opts.limits }),
  });
  if (result.record === undefined) return { record: undefined, diagnostics: result.diagnostics };
  const workflows = result.record.workflows.map((w) => ({
    clone: {
      depth: w.clone.depth,
      skip: w.clone.skip,
      submodules: w.clone.submodules,
      tags: w.clone.tags ?? true,
    },
    engine: w.engine,
    name: w.name,
    raw: w.raw,
  }));
  return { record: { $type: "", triggerMetadata: trigger, workflows }, diagnostics: result.diagnostics };
}

/**
 * The Gen1-shaped trigger `src/workflow` matches on and resolves with, carrying the Gen2 fields
 * it knows (repoDid, manual sha/ref). A missing PR action is "" (= opened there).
 */
export function matchTrigger(t: Gen2TriggerMetadata): TriggerMetadata {
  const out: TriggerMetadata = {
    kind: t.kind,
    repo: {
      knot: t.repo.knot,
      did: t.repo.did,
      repo: t.repo.repo ?? "",
      defaultBranch: t.repo.defaultBranch,
      repoDid: t.repo.repoDid,
    },
  };
  if (t.push !== undefined) out.push = { ...t.push };
  if (t.pullRequest !== undefined) {
    const pr = t.pullRequest;
    out.pullRequest = {
      sourceBranch: pr.sourceBranch,
      targetBranch: pr.targetBranch,
      sourceSha: pr.sourceSha,
      action: pr.action ?? "",
    };
  }
  if (t.manual !== undefined) {
    out.manual = {
      sha: t.manual.sha,
      ...(t.manual.ref !== undefined && { ref: t.manual.ref }),
      ...(t.manual.inputs !== undefined && { inputs: t.manual.inputs }),
    };
  }
  return out;
}
