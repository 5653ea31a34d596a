/**
 * Validation of trigger metadata read from JSON (`loom plan --trigger FILE`, or a knot's
 * `sh.tangled.pipeline` record), following lexicon `sh.tangled.pipeline#triggerMetadata`.
 * SHAs are also required to be hex: they end up on a `git fetch` command line.
 */
import { z } from "zod";
import { wireTrigger } from "./compile.ts";
import type { PipelineRecord, TriggerMetadata } from "./types.ts";

const sha = z.string().regex(/^[0-9a-fA-F]{40}$/, "must be a 40-character hex SHA");

const triggerRepo = z.object({
  knot: z.string().min(1, "must not be empty"),
  did: z.string().regex(/^did:[a-z]+:[a-zA-Z0-9._:%-]+$/, "must be a DID"),
  repo: z.string().min(1, "must not be empty"),
  // Gen1 knots always send "" (spec §1.4); tolerate its absence.
  defaultBranch: z.string().default(""),
  repoDid: z.string().optional(),
});

export const triggerMetadataSchema = z.object({
  kind: z.enum(["push", "pull_request", "manual"]),
  repo: triggerRepo,
  push: z.object({ ref: z.string().min(1, "must not be empty"), oldSha: sha, newSha: sha }).optional(),
  pullRequest: z
    .object({ sourceBranch: z.string(), targetBranch: z.string(), sourceSha: sha, action: z.string() })
    .optional(),
  manual: z
    .object({
      // Inputs become TANGLED_INPUT_<KEY>=<value> in a process environment.
      inputs: z
        .array(
          z.object({
            key: z.string().regex(/^[^=\0]+$/, "must be non-empty without = or NUL"),
            value: z.string().regex(/^[^\0]*$/, "must not contain NUL"),
          }),
        )
        .optional(),
      sha: sha.optional(),
      ref: z.string().min(1, "must not be empty").optional(),
    })
    .optional(),
});

const pipelineWorkflow = z.object({
  clone: z.object({
    depth: z.int(),
    skip: z.boolean(),
    submodules: z.boolean(),
    tags: z.boolean().optional(),
  }),
  engine: z.string(),
  // A file name: it becomes part of the workflow id, log file names and URLs.
  name: z
    .string()
    .regex(/^[^/\0]+$/, "must be a file name")
    .refine((n) => n !== "." && n !== "..", "must be a file name"),
  raw: z.string(),
});

/** Lexicon `sh.tangled.pipeline` (Gen1), as a knot sends it in its `/events` stream. */
export const pipelineRecordSchema = z.object({
  $type: z.string().optional(),
  triggerMetadata: triggerMetadataSchema,
  workflows: z.array(pipelineWorkflow),
});

export type TriggerParseResult = { ok: true; trigger: TriggerMetadata } | { ok: false; error: string };

/** Validates an already-decoded JSON value; the error names every offending field by its path. */
export function parseTriggerMetadata(value: unknown): TriggerParseResult {
  const result = triggerMetadataSchema.safeParse(value);
  if (result.success) return { ok: true, trigger: result.data };
  return {
    ok: false,
    error: describeIssues("invalid trigger metadata", "triggerMetadata", result.error.issues),
  };
}

export type RecordParseResult = { ok: true; record: PipelineRecord } | { ok: false; error: string };

/** Validates a decoded `sh.tangled.pipeline` record; `$type` is "" and keys are in wire order. */
export function parsePipelineRecord(value: unknown): RecordParseResult {
  const result = pipelineRecordSchema.safeParse(value);
  if (!result.success) {
    return { ok: false, error: describeIssues("invalid pipeline record", "pipeline", result.error.issues) };
  }
  const { triggerMetadata, workflows } = result.data;
  return { ok: true, record: { $type: "", triggerMetadata: wireTrigger(triggerMetadata), workflows } };
}

function describeIssues(title: string, root: string, issues: readonly z.core.$ZodIssue[]): string {
  const lines = issues.map((issue) => {
    const where = issue.path.length === 0 ? root : `${root}.${issue.path.map(String).join(".")}`;
    return `${where}: ${issue.message}`;
  });
  return `${title}:\n  ${lines.join("\n  ")}`;
}

/** Parses JSON text then validates it; bad JSON is reported, not thrown. */
export function parseTriggerJson(text: string): TriggerParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `invalid trigger metadata: not JSON: ${(err as Error).message}` };
  }
  return parseTriggerMetadata(value);
}
