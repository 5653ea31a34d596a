/** Trigger builders shared by the workflow tests and the bench. */
import type { TriggerMetadata } from "./types.ts";

export const SHA_A = "a".repeat(40);
export const SHA_F = "f".repeat(40);
export const SHA_0 = "0".repeat(40);

export const REPO = {
  knot: "knot1.tangled.sh",
  did: "did:plc:abcdefghijklmnopqrstuvwx",
  repo: "core",
  defaultBranch: "",
} as const;

export function pushTrigger(ref: string, repo: TriggerMetadata["repo"] = REPO): TriggerMetadata {
  return { kind: "push", repo: { ...repo }, push: { ref, oldSha: SHA_0, newSha: SHA_F } };
}

export function prTrigger(targetBranch: string, sourceBranch = "feature-x"): TriggerMetadata {
  return {
    kind: "pull_request",
    repo: { ...REPO },
    pullRequest: { sourceBranch, targetBranch, sourceSha: SHA_A, action: "create" },
  };
}

export function manualTrigger(inputs?: { key: string; value: string }[]): TriggerMetadata {
  return { kind: "manual", repo: { ...REPO }, manual: inputs === undefined ? {} : { inputs } };
}
