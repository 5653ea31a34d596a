/**
 * Gen2 `sh.tangled.pipeline#triggerMetadata` (lexicon `v2-2026-ci/sh.tangled.pipeline.json`):
 * what a Gen2 spindle stores with each pipeline it builds itself. Differences from Gen1
 * (`src/workflow/types.ts`): `repo.repoDid`, `repo.repo` optional, top-level `sourceRepo`,
 * `pullRequest.action` optional and `pull`, `manual.sha` required and `ref`.
 */
/** The three kinds of trigger, in both generations. */
export type TriggerKind = "push" | "pull_request" | "manual";

export interface Gen2TriggerRepo {
  knot: string;
  /** Owner DID. */
  did: string;
  /** The repo's DID (gen2 §2.2); the key everything Gen2 uses. */
  repoDid: string;
  /** The `sh.tangled.repo` record key (gen2 §2.4 `repo: rkey`); optional in the lexicon. */
  repo?: string;
  /** From the knot's `sh.tangled.repo.getDefaultBranch`; "" when it could not be learnt. */
  defaultBranch: string;
}

export interface Gen2PushData {
  ref: string;
  oldSha: string;
  newSha: string;
}

export type PullAction = "opened" | "reopened" | "closed" | "merged" | "synchronize";

export interface Gen2PullRequestData {
  /** Absent means "opened" for `when[].types` matching (spec §9). */
  action?: PullAction;
  sourceBranch: string;
  targetBranch: string;
  sourceSha: string;
  /** AT-URI of the `sh.tangled.repo.pull` record. */
  pull?: string;
}

export interface Gen2ManualData {
  sha: string;
  ref?: string;
  inputs?: Array<{ key: string; value: string }>;
}

export interface Gen2TriggerMetadata {
  kind: TriggerKind;
  repo: Gen2TriggerRepo;
  push?: Gen2PushData;
  pullRequest?: Gen2PullRequestData;
  manual?: Gen2ManualData;
  /** Fork DID the code and workflows come from, when not `repo.repoDid` (untrusted run). */
  sourceRepo?: string;
}

/** The commit a trigger runs on (gen2 §2.6 queryPipelines `commits` filter, §2.7 `commit`). */
export function triggerCommit(t: Gen2TriggerMetadata): string {
  if (t.push !== undefined) return t.push.newSha;
  if (t.pullRequest !== undefined) return t.pullRequest.sourceSha;
  if (t.manual !== undefined) return t.manual.sha;
  throw new Error(`trigger of kind ${t.kind} carries no commit`);
}
