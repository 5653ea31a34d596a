/**
 * Trigger matching, spec §2.4 exactly (Gen1 `workflowMatches` / `constraintMatches`).
 */
import { anyGlob } from "./glob.ts";
import type { Constraint, TriggerMetadata } from "./types.ts";

const HEADS = "refs/heads/";
const TAGS = "refs/tags/";

/**
 * Gen2 additions (gen2 §2.11), off unless asked for: `when[].types` narrows pull requests by
 * action (default opened, reopened, synchronize; a missing action counts as opened) and
 * `when[].paths` narrows by changed files when they are known.
 */
export interface MatchOptions {
  gen2?: boolean;
  /** Files changed by the push (Gen2 `refUpdate.changedFiles`); undefined when unknown. */
  changedFiles?: readonly string[];
}

export const DEFAULT_PR_TYPES: readonly string[] = ["opened", "reopened", "synchronize"];

/** A manual trigger always matches; no `when` matches everything; else any constraint must match. */
export function workflowMatches(
  when: readonly Constraint[],
  trigger: TriggerMetadata,
  opts: MatchOptions = {},
): boolean {
  if (trigger.manual !== undefined) return true;
  if (when.length === 0) return true;
  return when.some((c) => constraintMatches(c, trigger, opts));
}

/**
 * Follows the spec's pseudo-code literally: the kind must be listed in `event`; pull-request
 * data narrows by target branch; push data narrows by branch or tag; any other ref never matches.
 */
export function constraintMatches(c: Constraint, trigger: TriggerMetadata, opts: MatchOptions = {}): boolean {
  if (trigger.manual !== undefined) return true;
  let ok = c.event.includes(trigger.kind);
  if (trigger.pullRequest !== undefined) {
    ok &&= anyGlob(c.branch, trigger.pullRequest.targetBranch);
  }
  if (trigger.push !== undefined) {
    const ref = trigger.push.ref;
    if (ref.startsWith(HEADS)) ok &&= anyGlob(c.branch, ref.slice(HEADS.length));
    else if (ref.startsWith(TAGS)) ok &&= anyGlob(c.tag, ref.slice(TAGS.length));
    else ok = false;
  }
  if (opts.gen2 === true) ok &&= gen2Matches(c, trigger, opts.changedFiles);
  return ok;
}

function gen2Matches(
  c: Constraint,
  trigger: TriggerMetadata,
  changedFiles: readonly string[] | undefined,
): boolean {
  if (trigger.pullRequest !== undefined) {
    const action = trigger.pullRequest.action === "" ? "opened" : trigger.pullRequest.action;
    if (!(c.types ?? DEFAULT_PR_TYPES).includes(action)) return false;
  }
  if (c.paths !== undefined && changedFiles !== undefined) {
    return changedFiles.some((file) => anyGlob(c.paths ?? [], file));
  }
  return true;
}

/** The short name of a ref: `refs/heads/x` and `refs/tags/x` lose their prefix, others stay whole. */
export function shortRefName(ref: string): string {
  if (ref.startsWith(HEADS)) return ref.slice(HEADS.length);
  if (ref.startsWith(TAGS)) return ref.slice(TAGS.length);
  return ref;
}
