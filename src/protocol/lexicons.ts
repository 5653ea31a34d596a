/**
 * The Gen2 lexicons (copies of `spec/lexicons/v2-2026-ci/`, plus `getDefaultBranch` from the
 * Gen1 set, reformatted by biome; a test checks they still equal the spec's files) loaded into
 * one `@atproto/lexicon` instance, and validators for the `sh.tangled.ci.*` XRPC surface
 * (gen2 §2.6). The XRPC layer calls these at its boundary: params/input on the way in (→ 400
 * InvalidRequest), output on the way out (a failure there is our bug, → 500).
 */
import { type LexiconDoc, Lexicons } from "@atproto/lexicon";
import cancelPipeline from "./lexicons/sh.tangled.ci.cancelPipeline.json" with { type: "json" };
import describeWorkflowDefinition from "./lexicons/sh.tangled.ci.describeWorkflowDefinition.json" with {
  type: "json",
};
import getPipeline from "./lexicons/sh.tangled.ci.getPipeline.json" with { type: "json" };
import ciPipeline from "./lexicons/sh.tangled.ci.pipeline.json" with { type: "json" };
import queryPipelines from "./lexicons/sh.tangled.ci.queryPipelines.json" with { type: "json" };
import subscribePipelineLogs from "./lexicons/sh.tangled.ci.subscribePipelineLogs.json" with { type: "json" };
import ciTrigger from "./lexicons/sh.tangled.ci.trigger.json" with { type: "json" };
import triggerPipeline from "./lexicons/sh.tangled.ci.triggerPipeline.json" with { type: "json" };
import refUpdate from "./lexicons/sh.tangled.git.refUpdate.json" with { type: "json" };
import pipeline from "./lexicons/sh.tangled.pipeline.json" with { type: "json" };
import pipelineStatus from "./lexicons/sh.tangled.pipeline.status.json" with { type: "json" };
import getDefaultBranch from "./lexicons/sh.tangled.repo.getDefaultBranch.json" with { type: "json" };

export const LEXICON_DOCS: readonly LexiconDoc[] = [
  cancelPipeline,
  describeWorkflowDefinition,
  getPipeline,
  ciPipeline,
  queryPipelines,
  subscribePipelineLogs,
  ciTrigger,
  triggerPipeline,
  refUpdate,
  pipeline,
  pipelineStatus,
  getDefaultBranch,
] as unknown as LexiconDoc[];

export const CI_NSID = {
  queryPipelines: "sh.tangled.ci.queryPipelines",
  getPipeline: "sh.tangled.ci.getPipeline",
  describeWorkflowDefinition: "sh.tangled.ci.describeWorkflowDefinition",
  subscribePipelineLogs: "sh.tangled.ci.subscribePipelineLogs",
  triggerPipeline: "sh.tangled.ci.triggerPipeline",
  cancelPipeline: "sh.tangled.ci.cancelPipeline",
  pipeline: "sh.tangled.ci.pipeline",
  trigger: "sh.tangled.ci.trigger",
} as const;

// Lexicons resolves refs in the docs it is given in place (`#x` → `lex:nsid#x`): hand it copies.
export const lexicons: Lexicons = new Lexicons(structuredClone(LEXICON_DOCS) as LexiconDoc[]);

/** Thrown for a value that does not match its lexicon; `code` is the XRPC error name to answer. */
export class LexiconValidationError extends Error {
  override readonly name = "LexiconValidationError";
  readonly code = "InvalidRequest";
}

function wrap<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new LexiconValidationError(`${what}: ${(err as Error).message}`, { cause: err });
  }
}

// ---- plain types of the shapes validated below (hand-written from the lexicons) ----

export type CiWorkflowStatus = "pending" | "running" | "failed" | "timeout" | "cancelled" | "success";

export interface CiPushTrigger {
  $type: "sh.tangled.ci.trigger#push";
  ref: string;
  newSha: string;
  oldSha: string;
}
export interface CiPullRequestTrigger {
  $type: "sh.tangled.ci.trigger#pullRequest";
  action?: "opened" | "reopened" | "closed" | "merged" | "synchronize";
  sourceRepo?: string;
  sourceBranch?: string;
  targetBranch: string;
  sourceSha: string;
  pull?: string;
}
export interface CiManualTrigger {
  $type: "sh.tangled.ci.trigger#manual";
  sha: string;
  ref?: string;
  sourceRepo?: string;
  inputs?: Array<{ key: string; value: string }>;
}
export type CiTrigger = CiPushTrigger | CiPullRequestTrigger | CiManualTrigger;

export interface CiWorkflow {
  id: string;
  name: string;
  status: CiWorkflowStatus;
  startedAt?: string;
  finishedAt?: string;
  error?: string;
}

export interface CiPipeline {
  id: string;
  repo?: string;
  trigger: CiTrigger;
  commit: string;
  sourceRepo?: string;
  createdAt?: string;
  workflows: CiWorkflow[];
}

export interface QueryPipelinesParams {
  repo: string;
  commits?: string[];
  kinds?: Array<"push" | "pull_request" | "manual">;
  limit?: number;
  cursor?: string;
}
export interface QueryPipelinesOutput {
  pipelines: CiPipeline[];
  total: number;
  cursor?: string;
}
export interface GetPipelineParams {
  pipeline: string;
}
export interface DescribeWorkflowDefinitionParams {
  repo: string;
  sha: string;
  sourceRepo?: string;
}
export interface DescribeWorkflowDefinitionOutput {
  derived: boolean;
  hash?: string;
  workflows?: string[];
}
export interface SubscribePipelineLogsParams {
  pipeline: string;
  workflows?: string[];
}
export interface TriggerPipelineInput {
  repo: string;
  trigger: CiManualTrigger | CiPullRequestTrigger;
  workflows?: string[];
}
export interface TriggerPipelineOutput {
  pipeline: string;
}
export interface CancelPipelineInput {
  repo: string;
  pipeline: string;
  workflows?: string[];
}

/**
 * Query parameters arrive as strings; the lexicon wants integers for `limit` and arrays for
 * repeatable keys. Converts from URLSearchParams the way XRPC servers do, then validates.
 * Unknown parameters are ignored (an XRPC server must not reject them).
 */
export function paramsFromSearch(nsid: string, search: URLSearchParams): Record<string, unknown> {
  const def = lexicons.getDefOrThrow(nsid);
  if (!("parameters" in def) || def.parameters === undefined) return {};
  const out: Record<string, unknown> = {};
  for (const [name, prop] of Object.entries(def.parameters.properties)) {
    const values = search.getAll(name);
    if (values.length === 0) continue;
    if (prop.type === "array") {
      out[name] = values.map((v) => (prop.items.type === "integer" ? toInt(v) : v));
    } else if (prop.type === "integer") {
      out[name] = toInt(values[0] ?? "");
    } else if (prop.type === "boolean") {
      out[name] = values[0] === "true" ? true : values[0] === "false" ? false : values[0];
    } else {
      out[name] = values[0];
    }
  }
  return out;
}

// A non-integer stays a string so validation reports it rather than us guessing a number.
const toInt = (v: string): number | string => (/^-?[0-9]+$/.test(v) ? Number(v) : v);

const params =
  <T>(nsid: string) =>
  (search: URLSearchParams | Record<string, unknown>): T =>
    wrap(`${nsid} parameters`, () => {
      const value = search instanceof URLSearchParams ? paramsFromSearch(nsid, search) : search;
      return (lexicons.assertValidXrpcParams(nsid, value) ?? {}) as T;
    });
const input =
  <T>(nsid: string) =>
  (value: unknown): T =>
    wrap(`${nsid} input`, () => lexicons.assertValidXrpcInput(nsid, value) as T);
const output =
  <T>(nsid: string) =>
  (value: T): T =>
    wrap(`${nsid} output`, () => lexicons.assertValidXrpcOutput(nsid, value) as T);

export const validate = {
  queryPipelinesParams: params<QueryPipelinesParams>(CI_NSID.queryPipelines),
  queryPipelinesOutput: output<QueryPipelinesOutput>(CI_NSID.queryPipelines),
  getPipelineParams: params<GetPipelineParams>(CI_NSID.getPipeline),
  getPipelineOutput: output<CiPipeline>(CI_NSID.getPipeline),
  describeWorkflowDefinitionParams: params<DescribeWorkflowDefinitionParams>(
    CI_NSID.describeWorkflowDefinition,
  ),
  describeWorkflowDefinitionOutput: output<DescribeWorkflowDefinitionOutput>(
    CI_NSID.describeWorkflowDefinition,
  ),
  subscribePipelineLogsParams: params<SubscribePipelineLogsParams>(CI_NSID.subscribePipelineLogs),
  /**
   * The lexicon's trigger union is open, so a value of any other `$type` passes the lexicon;
   * a spindle can only run manual and pullRequest triggers, so anything else is refused here.
   */
  triggerPipelineInput: (value: unknown): TriggerPipelineInput => {
    const v = input<TriggerPipelineInput>(CI_NSID.triggerPipeline)(value);
    const type: unknown = v.trigger.$type;
    if (type !== "sh.tangled.ci.trigger#manual" && type !== "sh.tangled.ci.trigger#pullRequest") {
      throw new LexiconValidationError(
        `${CI_NSID.triggerPipeline} input: trigger must be sh.tangled.ci.trigger#manual or #pullRequest, got ${JSON.stringify(type)}`,
      );
    }
    return v;
  },
  triggerPipelineOutput: output<TriggerPipelineOutput>(CI_NSID.triggerPipeline),
  cancelPipelineInput: input<CancelPipelineInput>(CI_NSID.cancelPipeline),
  /** One `#control`/`#data` body with its `$type` (`sh.tangled.ci.subscribePipelineLogs#data`). */
  logMessage: (value: unknown): unknown =>
    wrap(`${CI_NSID.subscribePipelineLogs} message`, () =>
      lexicons.assertValidXrpcMessage(CI_NSID.subscribePipelineLogs, value),
    ),
  /** A `sh.tangled.ci.pipeline` object on its own. */
  pipeline: (value: unknown): CiPipeline =>
    wrap(CI_NSID.pipeline, () => {
      const res = lexicons.validate(CI_NSID.pipeline, value);
      if (!res.success) throw res.error;
      return res.value as CiPipeline;
    }),
};
