/**
 * Every NSID Loom reads or writes, defined once (docs/protocol/ says what each carries).
 * The `sh.tangled.ci.*` methods and records are in `CI_NSID` (lexicons.ts), next to the lexicon
 * documents they name.
 */

/** The pipeline record: a knot's Gen1 event, and the `$type`-less record a spindle builds. */
export const PIPELINE_NSID = "sh.tangled.pipeline";
/** A workflow status event on the spindle's own `/events` stream. */
export const STATUS_NSID = "sh.tangled.pipeline.status";

// Knot event stream (Generation 2 additions).
export const REF_UPDATE_NSID = "sh.tangled.git.refUpdate";
export const COLLABORATOR_UPDATE_NSID = "sh.tangled.repo.collaboratorUpdate";

// Jetstream collections.
export const MEMBER_NSID = "sh.tangled.spindle.member";
export const REPO_NSID = "sh.tangled.repo";
export const COLLABORATOR_NSID = "sh.tangled.repo.collaborator";
export const PULL_NSID = "sh.tangled.repo.pull";
export const PULL_STATUS_NSID = "sh.tangled.repo.pull.status";

// XRPC methods of other services this spindle calls.
export const GET_DEFAULT_BRANCH_NSID = "sh.tangled.repo.getDefaultBranch";
export const GET_RECORD_NSID = "com.atproto.repo.getRecord";
export const LIST_RECORDS_NSID = "com.atproto.repo.listRecords";
export const GET_BLOB_NSID = "com.atproto.sync.getBlob";

// The spindle's own Generation 1 XRPC methods.
export const SPINDLE_NSID = {
  owner: "sh.tangled.owner",
  addSecret: "sh.tangled.repo.addSecret",
  removeSecret: "sh.tangled.repo.removeSecret",
  listSecrets: "sh.tangled.repo.listSecrets",
  cancelPipeline: "sh.tangled.pipeline.cancelPipeline",
} as const;
