/** The trigger `loom run` pretends a knot sent, built from a local repository. */
import type { TriggerKind, TriggerMetadata } from "../workflow/index.ts";
import type { LocalRepo } from "./git.ts";

export const LOCAL_KNOT = "localhost";
export const LOCAL_OWNER = "did:web:localhost";
const ZERO_SHA = "0".repeat(40);

export function localTrigger(
  repo: LocalRepo,
  kind: TriggerKind,
  targetBranch: string | undefined,
): TriggerMetadata {
  const base = { knot: LOCAL_KNOT, did: LOCAL_OWNER, repo: repo.name, defaultBranch: "" };
  const branch = repo.ref.replace(/^refs\/(heads|tags)\//, "");
  switch (kind) {
    case "push":
      if (repo.ref === "") throw new Error("HEAD is detached: give the ref to push with --ref");
      return { kind, repo: base, push: { ref: repo.ref, oldSha: ZERO_SHA, newSha: repo.sha } };
    case "pull_request":
      return {
        kind,
        repo: base,
        pullRequest: {
          sourceBranch: branch,
          targetBranch: targetBranch ?? "main",
          sourceSha: repo.sha,
          action: "create",
        },
      };
    case "manual":
      // The commit, as a Gen2 manual trigger names it: without one the clone step fetches every
      // branch and checks out whichever git lists first, not HEAD (or --ref).
      return {
        kind,
        repo: base,
        manual: { inputs: [], sha: repo.sha, ...(repo.ref !== "" ? { ref: repo.ref } : {}) },
      };
  }
}
