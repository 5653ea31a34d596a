/**
 * `sh.tangled.repo.pull` and `sh.tangled.repo.pull.status` records as they arrive from Jetstream
 * or a PDS (gen2 §2.5). The spec carries no pull lexicon; the shapes below follow the public
 * lexicon (upstream `sh.tangled.repo.pull`, newest version as mirrored by atcute):
 *
 *   pull   (key tid) { target: {repo: did, branch}, title, body?, rounds: [{patchBlob: blob
 *          (application/gzip), createdAt}] (newer rounds appended), source?: {branch, repo?: did},
 *          createdAt, mentions?, references?, dependentOn? }
 *   status { pull: at-uri, status: "sh.tangled.repo.pull.status.open" | ".closed" | ".merged" }
 *
 * Older pull records had `target.repo` as an at-uri plus `target.repoDid`, `source.sha`,
 * `source.repo` as an at-uri and a single `patchBlob` (or an inline `patch`). Only the fields CI
 * needs are validated; everything else is kept loose so a display-only field changing shape
 * never blocks CI.
 *
 * `classifyPull` then says what a spindle does with a pull: run CI for a same-repo branch pull,
 * or ignore it (legacy without `target`, patch-based without `source`, fork-based) — gen2 §2.5.
 */
import { isValidDid } from "@atproto/syntax";
import { z } from "zod";
import { PULL_NSID, PULL_STATUS_NSID } from "./nsid.ts";
import type { PullAction } from "./trigger-metadata.ts";
import { parseWire, sha40 } from "./zod-util.ts";

/**
 * GUESS: an upper bound on rounds. Each round is one push to the pull; a Jetstream record is at
 * most 1 MiB anyway, so this only stops a hostile record from making us walk a huge array.
 */
export const MAX_ROUNDS = 1000;

// CIDv1 base32 (blob refs) or base58btc CIDv0 ("Qm…", old blobs); getBlob re-checks the form.
const cid = z
  .string()
  .min(8)
  .max(200)
  .regex(/^[A-Za-z0-9]+$/, "must be a CID");

/** The blob ref of a patch: `{cid, mimeType}` whichever form it came in. */
export interface BlobRef {
  cid: string;
  mimeType: string;
}

/**
 * `{"$type":"blob","ref":{"$link":"bafkrei…"},"mimeType":"application/gzip","size":123}` (typed
 * blob ref, as JSON) or the legacy `{"cid":"…","mimeType":"…"}`. The mime type is kept but not
 * enforced: GUESS — the lexicon accepts only application/gzip, but `sourceRevFromPatch` tells
 * gzip from plain text by its magic bytes, so a mislabelled blob still yields its commit.
 */
export const blobRefSchema: z.ZodType<BlobRef> = z.union([
  z
    .looseObject({
      $type: z.literal("blob"),
      ref: z.looseObject({ $link: cid }),
      mimeType: z.string().max(256),
      size: z.number().int().nonnegative().optional(),
    })
    .transform((b) => ({ cid: b.ref.$link, mimeType: b.mimeType })),
  z
    .looseObject({ cid, mimeType: z.string().max(256) })
    .refine((b) => !("$type" in b), "a typed blob needs ref.$link")
    .transform((b) => ({ cid: b.cid, mimeType: b.mimeType })),
]);

const branch = z.string().min(1, "must not be empty").max(2560);

const roundSchema = z.looseObject({
  patchBlob: blobRefSchema,
  createdAt: z.string().max(64).optional(),
});

export const pullRecordSchema = z.looseObject({
  /** Absent on legacy records (then ignored, gen2 §2.5). */
  target: z
    .looseObject({
      /** A repo DID (current) or a `sh.tangled.repo` at-uri (legacy). */
      repo: z.string().max(8192),
      /** Legacy: the repo DID next to an at-uri `repo`. */
      repoDid: z.string().max(2048).optional(),
      branch,
    })
    .optional(),
  /** Absent on patch-based pulls (ignored). */
  source: z
    .looseObject({
      branch,
      /** Set on fork-based pulls: the fork's DID (current) or at-uri (legacy). */
      repo: z.string().max(8192).optional(),
      /** Legacy: the source commit. */
      sha: sha40.optional(),
    })
    .optional(),
  rounds: z.array(roundSchema).max(MAX_ROUNDS, `at most ${MAX_ROUNDS} rounds`).optional(),
  /** Legacy: the one patch of a pre-rounds record. */
  patchBlob: blobRefSchema.optional(),
});

export type PullRecord = z.output<typeof pullRecordSchema>;

/** Validates a pull record; throws WireError naming every bad field. */
export function parsePullRecord(record: unknown): PullRecord {
  return parseWire(PULL_NSID, pullRecordSchema, record);
}

/** Where a pull's source commit comes from: a patch blob to download, or (legacy) a SHA. */
export type PullSource = { blob: BlobRef } | { sha: string };

export type PullClass =
  | { ci: false; reason: string }
  | {
      ci: true;
      /** The target repo's DID. */
      repoDid: string;
      targetBranch: string;
      sourceBranch: string;
      /** The latest round's patch (or the legacy source). */
      source: PullSource;
      /** 1-based number of that round (0 for legacy records without rounds). */
      round: number;
    };

/** What CI does with a parsed pull (gen2 §2.5). */
export function classifyPull(p: PullRecord): PullClass {
  if (p.target === undefined) return { ci: false, reason: "legacy pull without target" };
  let repoDid: string | null = null;
  if (isValidDid(p.target.repo)) repoDid = p.target.repo;
  // GUESS: a legacy record names the repo by at-uri in `repo` and by DID in `repoDid`.
  else if (p.target.repoDid !== undefined && isValidDid(p.target.repoDid)) repoDid = p.target.repoDid;
  if (repoDid === null) return { ci: false, reason: "target names no repo DID" };
  if (p.source === undefined) return { ci: false, reason: "patch-based pull (no source branch)" };
  const fromRepo = p.source.repo;
  // GUESS: a `source.repo` naming the target repo itself (by DID or by the same at-uri) is a
  // same-repo pull; the spec says "source.repo set" means fork, which every fork also satisfies.
  if (fromRepo !== undefined && fromRepo !== "" && fromRepo !== repoDid && fromRepo !== p.target.repo) {
    return { ci: false, reason: `fork-based pull from ${fromRepo} (runs via triggerPipeline)` };
  }
  const base = { ci: true as const, repoDid, targetBranch: p.target.branch, sourceBranch: p.source.branch };
  const rounds = p.rounds ?? [];
  const last = rounds.at(-1);
  if (last !== undefined) return { ...base, source: { blob: last.patchBlob }, round: rounds.length };
  // GUESS: pre-rounds records — the single `patchBlob`, else the recorded `source.sha`.
  if (p.patchBlob !== undefined) return { ...base, source: { blob: p.patchBlob }, round: 0 };
  if (p.source.sha !== undefined) return { ...base, source: { sha: p.source.sha }, round: 0 };
  return { ci: false, reason: "pull has no rounds (no patch to take the source commit from)" };
}

/** Status value → the action a status record triggers (a Map: values are untrusted keys). */
export const PULL_STATUS_ACTIONS: ReadonlyMap<string, PullAction> = new Map<string, PullAction>([
  ["sh.tangled.repo.pull.status.open", "reopened"],
  ["sh.tangled.repo.pull.status.closed", "closed"],
  ["sh.tangled.repo.pull.status.merged", "merged"],
]);

const PULL_AT_URI =
  /^at:\/\/(did:[a-z]+:[A-Za-z0-9._:%-]+)\/sh\.tangled\.repo\.pull\/([A-Za-z0-9._~:-]{1,512})$/;

export const pullStatusSchema = z.looseObject({
  pull: z
    .string()
    .max(8192)
    .regex(PULL_AT_URI, "must be the at-uri of a sh.tangled.repo.pull record")
    .refine((u) => isValidDid(PULL_AT_URI.exec(u)?.[1] ?? ""), "must name a valid DID"),
  // Lexicon: known values above, default open.
  status: z.string().max(256).default("sh.tangled.repo.pull.status.open"),
});

export interface PullStatus {
  /** The pull's at-uri, and its parts. */
  pull: string;
  author: string;
  rkey: string;
  /** The raw status value. */
  status: string;
  /** Null for a status value that is not one of the known three. */
  action: PullAction | null;
}

/** Validates a pull.status record; throws WireError naming every bad field. */
export function parsePullStatus(record: unknown): PullStatus {
  const s = parseWire(PULL_STATUS_NSID, pullStatusSchema, record);
  const m = PULL_AT_URI.exec(s.pull) as RegExpExecArray;
  return {
    pull: s.pull,
    author: m[1] as string,
    rkey: m[2] as string,
    status: s.status,
    action: PULL_STATUS_ACTIONS.get(s.status) ?? null,
  };
}

/** `at://<author>/sh.tangled.repo.pull/<rkey>`. */
export function pullAtUri(author: string, rkey: string): string {
  return `at://${author}/${PULL_NSID}/${rkey}`;
}
