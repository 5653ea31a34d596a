/** The workflow model: parse · lint · match · compile · resolve (spec §1.4, §1.5, §2, §7). */
export { CLONE_STEP_NAME, cloneStep } from "./clone.ts";
export {
  byName,
  type CompileOptions,
  type CompileResult,
  compileDirectory,
  compileWorkflows,
  formatDiagnostic,
  readWorkflowFiles,
  WORKFLOWS_DIR,
  type WorkflowFile,
} from "./compile.ts";
export { frameworkEnv, pipelineUri, repoUrl } from "./env.ts";
export { anyGlob, globMatch, isValidGlob } from "./glob.ts";
export { lintWorkflow } from "./lint.ts";
export {
  constraintMatches,
  DEFAULT_PR_TYPES,
  type MatchOptions,
  shortRefName,
  workflowMatches,
} from "./match.ts";
export { type Architecture, DEFAULT_NIXERY_HOST, nixeryImage } from "./nixery.ts";
export { type ParsedWorkflow, parseWorkflow } from "./parse.ts";
export { type PlanView, planView } from "./print.ts";
export {
  DEFAULT_HOME,
  DEFAULT_TIMEOUT_SECONDS,
  type Engine,
  normalizeIdPart,
  type ResolveOptions,
  type ResolveResult,
  type RunPlan,
  resolveWorkflow,
  workflowId,
} from "./resolve.ts";
export { DEFAULT_LIMITS, type SourceLimits } from "./source.ts";
export {
  parsePipelineRecord,
  parseTriggerJson,
  parseTriggerMetadata,
  pipelineRecordSchema,
  triggerMetadataSchema,
} from "./trigger.ts";
export type * from "./types.ts";
