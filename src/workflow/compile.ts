/**
 * Compiling `.tangled/workflows/*` for one trigger into the `sh.tangled.pipeline` record.
 * Generation 1: the knot compiles and the spindle receives the record (spec §1.4, §1.5, §2.2):
 * `compileWorkflows`. Generation 2: the spindle compiles itself (gen2 §2.4, §2.11):
 * `compileGen2`, the same compiler with its `gen2` options on — `when[].types` (PR actions;
 * default opened, reopened, synchronize; a missing action = opened), `when[].paths` (globbed
 * against the push's changed files) and Gen2 clone defaults (`clone.tags` and
 * `clone.submodules` true when omitted) — and the record reshaped as the v2026 lexicon has it.
 */
import { lstat, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Gen2TriggerMetadata } from "../protocol/trigger-metadata.ts";
import { noStepsWarning } from "./decode.ts";
import { type MatchOptions, workflowMatches } from "./match.ts";
import { parseWorkflow } from "./parse.ts";
import { DEFAULT_LIMITS, parseError, type SourceLimits } from "./source.ts";
import type {
  CloneOptions,
  Diagnostic,
  PipelineRecord,
  PipelineWorkflow,
  TriggerMetadata,
  Workflow,
} from "./types.ts";

export interface WorkflowFile {
  /** The file name only, e.g. `build.yml`. */
  name: string;
  content: string | Uint8Array;
}

export interface CompileResult {
  /** Undefined when no workflow survives: then no pipeline event is emitted (spec §2.2). */
  record: PipelineRecord | undefined;
  diagnostics: Diagnostic[];
}

export const WORKFLOWS_DIR = ".tangled/workflows";

export interface CompileOptions extends MatchOptions {
  limits?: SourceLimits;
  /**
   * The engine of a workflow that names none, where Loom compiles the pipeline itself (Gen2
   * intake, `triggerPipeline`, `loom run`). Default: "kubernetes" with `gen2`, else none (a Gen1
   * knot drops such a workflow: "missing engine").
   */
  defaultEngine?: string;
}

/**
 * Per file, in name order: a parse error drops it; a trigger mismatch skips it (warning); an
 * empty engine drops it (error) unless a default engine is given; `clone.skip` with submodules or
 * depth > 0 only warns. Unknown keys (with the key they likely misspell) and a workflow without
 * steps are reported as warnings; keys of other engines are left to lint.
 */
export function compileWorkflows(
  files: readonly WorkflowFile[],
  trigger: TriggerMetadata,
  opts: CompileOptions = {},
): CompileResult {
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const diagnostics: Diagnostic[] = [];
  const workflows: PipelineWorkflow[] = [];
  for (const file of [...files].sort((a, b) => byName(a.name, b.name))) {
    const parsed = parseWorkflow(file.name, file.content, limits);
    if (parsed.workflow === undefined) {
      diagnostics.push(...parsed.errors);
      continue;
    }
    const wf = parsed.workflow;
    const at = wf.positions.when ?? { line: 1, column: 1 };
    if (!workflowMatches(wf.when, trigger, opts)) {
      diagnostics.push(
        diag("warning", "workflow skipped", `did not match trigger ${trigger.kind}`, file.name, at),
      );
      continue;
    }
    const engine = wf.engine || (opts.defaultEngine ?? (opts.gen2 === true ? "kubernetes" : ""));
    if (engine === "") {
      const pos = wf.positions.engine ?? { line: 1, column: 1 };
      diagnostics.push(diag("error", "missing engine", "missing engine", file.name, pos));
      continue;
    }
    diagnostics.push(
      ...parsed.warnings.filter((d) => d.kind === "unknown key"),
      // Steps that failed to decode are the engine's error to report, not "no steps".
      ...(parsed.engineErrors.length === 0 ? noStepsWarning(wf, file.name) : []),
    );
    diagnostics.push(...cloneWarnings(wf, file.name));
    const clone = opts.gen2 === true ? gen2RecordClone(wf) : recordClone(wf);
    workflows.push({ clone, engine, name: file.name, raw: parsed.text });
  }
  if (workflows.length === 0) return { record: undefined, diagnostics };
  return { record: { $type: "", triggerMetadata: wireTrigger(trigger), workflows }, diagnostics };
}

/** The record's clone options: Gen1 defaults (all false / 0) for absent keys. */
export function recordClone(wf: Workflow): CloneOptions {
  return {
    depth: wf.clone.depth ?? 0,
    skip: wf.clone.skip ?? false,
    submodules: wf.clone.submodules ?? false,
  };
}

/** Gen2 defaults (spec §9): `submodules` and `tags` are true when omitted. */
export function gen2RecordClone(wf: Workflow): CloneOptions {
  return {
    depth: wf.clone.depth ?? 0,
    skip: wf.clone.skip ?? false,
    submodules: wf.clone.submodules ?? true,
    tags: wf.clone.tags ?? true,
  };
}

/** `clone.skip` makes `submodules` and `depth` meaningless: warn, still compile (spec §2.2). */
export function cloneWarnings(wf: Workflow, file: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  if (wf.clone.skip !== true) return out;
  const at = wf.positions["clone.skip"] ?? { line: 1, column: 1 };
  if (wf.clone.submodules === true) {
    out.push(
      diag(
        "warning",
        "invalid configuration",
        "clone.submodules has no effect when clone.skip is true",
        file,
        at,
      ),
    );
  }
  if ((wf.clone.depth ?? 0) > 0) {
    out.push(
      diag("warning", "invalid configuration", "clone.depth has no effect when clone.skip is true", file, at),
    );
  }
  return out;
}

/**
 * Reads `<repo>/.tangled/workflows/`: regular files directly in it, every name (no extension
 * filter, spec §1.4). Symlinks are not followed: a link to a host file must not be read.
 * A file over the size limit is reported without being read.
 */
export async function readWorkflowFiles(
  repoDir: string,
  limits: SourceLimits = DEFAULT_LIMITS,
): Promise<{ files: WorkflowFile[]; diagnostics: Diagnostic[] }> {
  const dir = join(repoDir, WORKFLOWS_DIR);
  const files: WorkflowFile[] = [];
  const diagnostics: Diagnostic[] = [];
  let entries: string[];
  try {
    entries = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
  } catch (err) {
    if (
      (err as NodeJS.ErrnoException).code === "ENOENT" ||
      (err as NodeJS.ErrnoException).code === "ENOTDIR"
    ) {
      return { files, diagnostics };
    }
    throw err;
  }
  for (const name of entries.sort(byName)) {
    const path = join(dir, name);
    const { size } = await lstat(path);
    if (size > limits.maxBytes) {
      diagnostics.push(parseError(name, `file is ${size} bytes; the limit is ${limits.maxBytes} bytes`));
      continue;
    }
    files.push({ name, content: await readFile(path) });
  }
  return { files, diagnostics };
}

export async function compileDirectory(
  repoDir: string,
  trigger: TriggerMetadata,
  opts: CompileOptions = {},
): Promise<CompileResult> {
  const { files, diagnostics } = await readWorkflowFiles(repoDir, opts.limits ?? DEFAULT_LIMITS);
  const result = compileWorkflows(files, trigger, opts);
  // Files refused unread and files compiled report in one file-name order (sort is stable).
  const all = [...diagnostics, ...result.diagnostics].sort((a, b) => byName(a.file, b.file));
  return { record: result.record, diagnostics: all };
}

/** Git orders tree entries by bytes; so do we (not by locale). */
export function byName(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Trigger metadata with keys in wire order (the knot re-encodes from a map: sorted keys). */
export function wireTrigger(t: TriggerMetadata): TriggerMetadata {
  return sortKeys(t) as TriggerMetadata;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== "object") return value;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(entries.map(([k, v]) => [k, sortKeys(v)]));
}

function diag(
  severity: Diagnostic["severity"],
  kind: Diagnostic["kind"],
  message: string,
  file: string,
  pos: { line: number; column: number },
): Diagnostic {
  return { severity, kind, message, file, line: pos.line, column: pos.column };
}

/** `error: build.yml:3:1: missing engine` — one line per diagnostic, for terminals and git remotes. */
export function formatDiagnostic(d: Diagnostic): string {
  const text = d.kind === d.message ? d.message : `${d.kind}: ${d.message}`;
  return `${d.severity}: ${d.file}:${d.line}:${d.column}: ${text}`;
}

// ---- Generation 2 ------------------------------------------------------------------------

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
