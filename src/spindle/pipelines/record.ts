/**
 * Validation of a `sh.tangled.pipeline` record as received from a knot (spec §1.5). Every
 * problem becomes one specific reason naming the field; nothing here throws.
 */
import { z } from "zod";
import { parseTriggerMetadata } from "../../workflow/index.ts";
import type { PipelineRecord, PipelineWorkflow, TriggerMetadata } from "../../workflow/types.ts";

/** A record larger than this (as JSON) is refused: workflows are capped at 512 KiB each. */
export const MAX_RECORD_BYTES = 4 * 1024 * 1024;
export const MAX_WORKFLOWS = 64;

const workflowSchema = z.object({
  name: z.string().min(1, "must not be empty").max(256, "must be at most 256 characters"),
  engine: z.string().max(256, "must be at most 256 characters"),
  raw: z.string(),
  // §1.5: `clone` is always present; tolerate its absence as the defaults.
  clone: z
    .object({
      skip: z.boolean().default(false),
      depth: z.number().int().min(0).max(1_000_000).default(0),
      submodules: z.boolean().default(false),
    })
    .default({ skip: false, depth: 0, submodules: false }),
});

const workflowsSchema = z.array(workflowSchema).max(MAX_WORKFLOWS, `at most ${MAX_WORKFLOWS} workflows`);

export type RecordCheck =
  | { ok: true; record: PipelineRecord }
  | { ok: false; reason: string; detail: string };

function issues(prefix: string, err: z.ZodError): string {
  return err.issues
    .map((i) => `${[prefix, ...i.path].join(".")}: ${i.message}`)
    .slice(0, 5)
    .join("; ");
}

/** `reason` is a short constant (a metric label); `detail` says exactly what was wrong. */
export function checkPipelineRecord(value: unknown): RecordCheck {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, reason: "not_an_object", detail: "the pipeline record is not a JSON object" };
  }
  const rec = value as Record<string, unknown>;
  if (rec.triggerMetadata === undefined || rec.triggerMetadata === null) {
    return { ok: false, reason: "missing_trigger", detail: "triggerMetadata is missing" };
  }
  const trigger = parseTriggerMetadata(rec.triggerMetadata);
  if (!trigger.ok)
    return { ok: false, reason: "invalid_trigger", detail: trigger.error.replace(/\n\s*/g, " ") };
  const wfs = workflowsSchema.safeParse(rec.workflows ?? []);
  if (!wfs.success) return { ok: false, reason: "invalid_workflows", detail: issues("workflows", wfs.error) };
  return {
    ok: true,
    record: {
      $type: "",
      triggerMetadata: trigger.trigger as TriggerMetadata,
      workflows: wfs.data as PipelineWorkflow[],
    },
  };
}
