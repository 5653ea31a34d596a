/**
 * A knot `sh.tangled.git.refUpdate` → what the spindle should build (gen2 §2.4).
 *
 * The caller has already looked the repo up by `event.repo` (a repo DID) and checked the stream
 * came from that repo's knot; it passes what it knows about the repo. Pure: no I/O.
 */
import { hasSkipCiPushOption, type RefUpdate, ZERO_SHA } from "../protocol/ref-update.ts";
import type { Gen2TriggerMetadata } from "../protocol/trigger-metadata.ts";

export interface KnownRepo {
  knot: string;
  ownerDid: string;
  repoDid: string;
  /** The `sh.tangled.repo` record key. */
  rkey: string;
  /** From getDefaultBranch; "" when unknown. */
  defaultBranch: string;
}

export type PushDecision =
  | { build: false; reason: "skip-ci" | "deletion" | "repo mismatch" }
  | {
      build: true;
      trigger: Gen2TriggerMetadata;
      /** The commit whose `.tangled/workflows` to read and run. */
      sha: string;
      /**
       * For `when[].paths`. Undefined when the knot sent none: GUESS — the knot omits the key
       * when the list is empty (gen2 §2.4), which cannot be told apart from "not computed"
       * (e.g. a new branch); we then do not filter by paths rather than silently skip a run.
       */
      changedFiles: string[] | undefined;
    };

export function decidePush(ev: RefUpdate, repo: KnownRepo): PushDecision {
  if (ev.repo !== repo.repoDid) return { build: false, reason: "repo mismatch" };
  if (hasSkipCiPushOption(ev.pushOptions)) return { build: false, reason: "skip-ci" };
  // Upstream does not special-case deletions (its sync at the zero SHA fails and is logged);
  // the OCaml spindle drops them explicitly, and so do we (gen2 §2.4).
  if (ev.newSha === ZERO_SHA) return { build: false, reason: "deletion" };
  const trigger: Gen2TriggerMetadata = {
    kind: "push",
    push: { ref: ev.ref, oldSha: ev.oldSha, newSha: ev.newSha },
    repo: triggerRepo(repo),
  };
  const files = ev.changedFiles ?? undefined;
  return { build: true, trigger, sha: ev.newSha, changedFiles: files === undefined ? undefined : [...files] };
}

/** The `repo` of a Gen2 trigger, from the repo as the spindle knows it. */
export function triggerRepo(repo: KnownRepo): Gen2TriggerMetadata["repo"] {
  return {
    knot: repo.knot,
    did: repo.ownerDid,
    repo: repo.rkey,
    repoDid: repo.repoDid,
    defaultBranch: repo.defaultBranch,
  };
}
