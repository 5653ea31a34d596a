/**
 * Generation 2 building blocks (spec `spindle-protocol-gen2.md`), self-contained; the server glue
 * that uses them lives in src/spindle/gen2/. How each is wired:
 *
 * Knot intake (gen2 §2.3, §2.4) — per knot `/events` message:
 *   env = parseEnvelope(text)                      // exact `created` → cursor (formatCursor)
 *   refUpdate: ev = parseRefUpdate(env.event); repo = look up ev.repo (must be this knot's);
 *     repo.defaultBranch = (await getDefaultBranch(knot, repoDid, {dev})).name
 *     d = decidePush(ev, repo); if (!d.build) log d.reason and advance the cursor
 *     files = (await fetcher.fetchWorkflows({knot, repoDid, sha: d.sha, dev})).files
 *     { record } = compileGen2(files, d.trigger, { changedFiles: d.changedFiles })
 *     record === undefined → nothing to run; else id = tids.next(), store (id, record), enqueue
 *   collaboratorUpdate: parseCollaboratorUpdate(env.event) → grant/revoke push on repoDid
 *
 * XRPC (gen2 §2.6–§2.8) — validate at the boundary with `validate.*` (LexiconValidationError →
 *   400 InvalidRequest); answer getPipeline/queryPipelines with buildCiPipeline(row);
 *   describeWorkflowDefinition with describeWorkflowDefinition(fetched.files); triggerPipeline:
 *   triggerFromCiInput → selectWorkflows → compileGen2 → {pipeline: pipelineAtUri(host, tid)};
 *   subscribePipelineLogs: encodeLogFrame(line, workflow) per stored LogLine (binary message).
 *
 * `/.well-known/did.json`: spindleDidDocument(hostname, {dev}).
 * Pull requests (gen2 §2.5): sourceRevFromPatch(await getBlob(pds, did, cid)).
 */
export {
  compileGen2,
  type Gen2CompileOptions,
  type Gen2CompileResult,
  type Gen2PipelineRecord,
} from "./compile.ts";
export { type DidWebDocument, SPINDLE_SERVICE_TYPE, spindleDidDocument } from "./did-doc.ts";
export { DispatchError, pipelineAtUri, selectWorkflows, triggerFromCiInput } from "./dispatch.ts";
export { type DefinitionFile, describeWorkflowDefinition, workflowDefinitionHash } from "./fingerprint.ts";
export {
  type DefaultBranch,
  GET_DEFAULT_BRANCH_NSID,
  getDefaultBranch,
  type KnotClientOptions,
} from "./knot/default-branch.ts";
export { KnotError, type KnotErrorCode } from "./knot/errors.ts";
export {
  cacheKey,
  type FetchedWorkflows,
  type FetchRequest,
  WorkflowFetcher,
  type WorkflowFetcherOptions,
} from "./knot/workflow-fetcher.ts";
export { BlobError, getBlob, MAX_PATCH_BYTES, sourceRevFromPatch } from "./net/blob.ts";
export { decidePush, type KnownRepo, type PushDecision } from "./push.ts";
export { decodeTid, encodeTid, TidGenerator, type TidGeneratorOptions } from "./tid.ts";
export {
  buildCiPipeline,
  rfc3339Seconds,
  type StoredPipeline,
  type StoredStatus,
} from "./wire/v2026/ci-pipeline.ts";
export {
  type Envelope,
  EnvelopeError,
  encodeEnvelope,
  formatCursor,
  parseCursorParam,
  parseEnvelope,
} from "./wire/v2026/envelope.ts";
export * from "./wire/v2026/lexicons.ts";
export { encodeErrorFrame, encodeLogFrame, logFrameBody } from "./wire/v2026/log-frames.ts";
export {
  COLLABORATOR_UPDATE_NSID,
  type CollaboratorUpdate,
  hasSkipCiPushOption,
  parseCollaboratorUpdate,
  parseRefUpdate,
  REF_UPDATE_NSID,
  type RefUpdate,
  ZERO_SHA,
} from "./wire/v2026/ref-update.ts";
export type * from "./wire/v2026/trigger-metadata.ts";
export { triggerCommit } from "./wire/v2026/trigger-metadata.ts";
export { WireError } from "./wire/v2026/zod-util.ts";
