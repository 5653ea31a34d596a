/**
 * Trigger matching, spec §2.4 exactly (Gen1 `workflowMatches` / `constraintMatches`).
 */
import { anyGlob } from "./glob.ts";
import type { Constraint, TriggerMetadata } from "./types.ts";

const HEADS = "refs/heads/";
const TAGS = "refs/tags/";

/** A manual trigger always matches; no `when` matches everything; else any constraint must match. */
export function workflowMatches(when: readonly Constraint[], trigger: TriggerMetadata): boolean {
  if (trigger.manual !== undefined) return true;
  if (when.length === 0) return true;
  return when.some((c) => constraintMatches(c, trigger));
}

/**
 * Follows the spec's pseudo-code literally: the kind must be listed in `event`; pull-request
 * data narrows by target branch; push data narrows by branch or tag; any other ref never matches.
 */
export function constraintMatches(c: Constraint, trigger: TriggerMetadata): boolean {
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
  return ok;
}

/** The short name of a ref: `refs/heads/x` and `refs/tags/x` lose their prefix, others stay whole. */
export function shortRefName(ref: string): string {
  if (ref.startsWith(HEADS)) return ref.slice(HEADS.length);
  if (ref.startsWith(TAGS)) return ref.slice(TAGS.length);
  return ref;
}
