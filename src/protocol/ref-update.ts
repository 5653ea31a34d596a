/**
 * Knot stream events a Gen2 spindle consumes (gen2 §2.2, §2.3, §2.4):
 * `sh.tangled.git.refUpdate` (lexicon `lexicons/v2-2026-ci/sh.tangled.git.refUpdate.json`, as
 * the knot actually emits it) and `sh.tangled.repo.collaboratorUpdate` (no lexicon file; shape
 * from gen2 §2.2).
 */
import { z } from "zod";
import { COLLABORATOR_UPDATE_NSID, REF_UPDATE_NSID } from "./nsid.ts";
import { did, parseWire, sha40 } from "./zod-util.ts";

export const ZERO_SHA = "0".repeat(40);

const meta = z.looseObject({
  isDefaultRef: z.boolean().default(false),
  // Only used for display upstream; kept loose so a knot's additions do not break intake.
  commitCount: z.looseObject({}).optional(),
  langBreakdown: z.looseObject({}).optional(),
});

/**
 * Unknown keys are kept (knots add fields). Deviations from the lexicon, each because of what
 * the knot emits (gen2 §2.4): `$type` is "" (Go tag quirk) or absent; `meta` is `null` on
 * deletions although the lexicon requires it; `changedFiles`/`pushOptions` are omitted (or,
 * guessed, `null`) when empty.
 */
export const refUpdateSchema = z.looseObject({
  $type: z.union([z.literal(""), z.literal(REF_UPDATE_NSID)]).optional(),
  ref: z.string().min(1, "must not be empty").max(2560),
  committerDid: did,
  ownerDid: did.optional(),
  repo: did,
  oldSha: sha40,
  newSha: sha40,
  changedFiles: z.array(z.string()).nullish(),
  pushOptions: z.array(z.string().max(1024)).max(50).nullish(),
  meta: meta.nullable(),
});

export type RefUpdate = z.output<typeof refUpdateSchema>;

/** Validates the `event` of a refUpdate envelope; throws WireError with every bad field. */
export function parseRefUpdate(event: unknown): RefUpdate {
  return parseWire(REF_UPDATE_NSID, refUpdateSchema, event);
}

export const collaboratorUpdateSchema = z.looseObject({
  op: z.enum(["add", "remove"]),
  subject: did,
  repo: did,
});

export type CollaboratorUpdate = z.output<typeof collaboratorUpdateSchema>;

/**
 * Validates a `sh.tangled.repo.collaboratorUpdate` event. The caller must also check that the
 * stream it came from is the repo's own knot (gen2 §2.2): the event carries no proof.
 */
export function parseCollaboratorUpdate(event: unknown): CollaboratorUpdate {
  return parseWire(COLLABORATOR_UPDATE_NSID, collaboratorUpdateSchema, event);
}

/** `git push -o skip-ci` / `-o ci-skip` (gen2 §2.4, `kgit.HasSkipCIPushOption`): exact values. */
export function hasSkipCiPushOption(options: readonly string[] | null | undefined): boolean {
  return (options ?? []).some((o) => o === "skip-ci" || o === "ci-skip");
}
