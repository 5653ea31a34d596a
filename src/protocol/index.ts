/**
 * Tangled's wire, with no server knowledge (docs/protocol/README.md): NSIDs, lexicon types and
 * validation, the knot and spindle event envelopes, status events, log frames, TIDs, RFC 3339
 * times and did:web. Generation 2 (`sh.tangled.ci.*`, refUpdate, pulls) sits beside Generation 1
 * here; nothing in this folder imports src/spindle.
 */
export { buildCiPipeline, type StoredPipeline, type StoredStatus } from "./ci-pipeline.ts";
export {
  type DidWebDocument,
  didWebEncoded,
  SPINDLE_SERVICE_ID,
  SPINDLE_SERVICE_TYPE,
  serviceAudiences,
  spindleDidDocument,
  spindlePipelineAtUri,
} from "./did-web.ts";
export {
  type Envelope,
  type EnvelopeDecode,
  EnvelopeError,
  encodeKnotEnvelope,
  formatCursor,
  type KnotEnvelope,
  parseCursorParam,
  parseEnvelope,
  parseKnotEnvelope,
} from "./envelope.ts";
export * from "./lexicons.ts";
export { encodeErrorFrame, encodeLogFrame, logFrameBody } from "./log-frames.ts";
export * from "./nsid.ts";
export * from "./pull.ts";
export {
  type CollaboratorUpdate,
  hasSkipCiPushOption,
  parseCollaboratorUpdate,
  parseRefUpdate,
  type RefUpdate,
  ZERO_SHA,
} from "./ref-update.ts";
export { encodeEnvelope, encodeStatus, FINISHED, type PipelineStatus, pipelineAtUri } from "./status.ts";
export { decodeTid, encodeTid, TidGenerator, type TidGeneratorOptions, wallClockMicros } from "./tid.ts";
export { rfc3339Seconds } from "./time.ts";
export type * from "./trigger-metadata.ts";
export { triggerCommit } from "./trigger-metadata.ts";
export { WireError } from "./zod-util.ts";
