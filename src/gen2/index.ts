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

export { BlobError, getBlob, MAX_PATCH_BYTES, sourceRevFromPatch } from "../net/blob.ts";
export {
  type DefaultBranch,
  getDefaultBranch,
  type KnotClientOptions,
} from "../net/knot/default-branch.ts";
export { KnotError, type KnotErrorCode } from "../net/knot/errors.ts";
export {
  cacheKey,
  type FetchedWorkflows,
  type FetchRequest,
  WorkflowFetcher,
  type WorkflowFetcherOptions,
} from "../net/knot/workflow-fetcher.ts";
export {
  buildCiPipeline,
  type StoredPipeline,
  type StoredStatus,
} from "../protocol/ci-pipeline.ts";
export { type DidWebDocument, SPINDLE_SERVICE_TYPE, spindleDidDocument } from "../protocol/did-web.ts";
export {
  type Envelope,
  EnvelopeError,
  encodeKnotEnvelope,
  formatCursor,
  parseCursorParam,
  parseEnvelope,
} from "../protocol/envelope.ts";
export * from "../protocol/lexicons.ts";
export { encodeErrorFrame, encodeLogFrame, logFrameBody } from "../protocol/log-frames.ts";
export { COLLABORATOR_UPDATE_NSID, REF_UPDATE_NSID } from "../protocol/nsid.ts";
export {
  type CollaboratorUpdate,
  hasSkipCiPushOption,
  parseCollaboratorUpdate,
  parseRefUpdate,
  type RefUpdate,
  ZERO_SHA,
} from "../protocol/ref-update.ts";
export { decodeTid, encodeTid, TidGenerator, type TidGeneratorOptions } from "../protocol/tid.ts";
export { rfc3339Seconds } from "../protocol/time.ts";
export type * from "../protocol/trigger-metadata.ts";
export { triggerCommit } from "../protocol/trigger-metadata.ts";
export { WireError } from "../protocol/zod-util.ts";
export {
  compileGen2,
  type Gen2CompileOptions,
  type Gen2CompileResult,
  type Gen2PipelineRecord,
} from "./compile.ts";
export { DispatchError, pipelineAtUri, selectWorkflows, triggerFromCiInput } from "./dispatch.ts";
export { type DefinitionFile, describeWorkflowDefinition, workflowDefinitionHash } from "./fingerprint.ts";
export { decidePush, type KnownRepo, type PushDecision } from "./push.ts";
