/**
 * One knot event-stream frame (§1.3; Gen2 §2.3):
 *   Gen1  `{"event": {…}, "nsid": "…", "rkey": "<tid>"}` (keys sorted by Go's map encoder)
 *   Gen2  `{"rkey": "…", "nsid": "…", "event": {…}, "created": <int64 unix nanoseconds>}`
 * Key order is irrelevant. `created` (≈1.8e18) does not fit a JS number, so it is read from the
 * source text of the number (JSON.parse's reviver `context.source`) and kept as a decimal string.
 */
import { isValidRecordKey } from "@atproto/syntax";

export interface KnotEnvelope {
  nsid: string;
  rkey: string;
  /** The record, a JSON object, unvalidated. */
  event: Record<string, unknown>;
  /** The knot's own timestamp (Gen2) as a canonical decimal string, or null (Gen1). */
  created: string | null;
}

/**
 * A frame that is not a usable envelope still carries its `created` when that much is readable
 * (Gen2): the consumer then moves its cursor past the bad row instead of asking for it again.
 */
export type EnvelopeDecode =
  | { ok: true; envelope: KnotEnvelope }
  | { ok: false; reason: string; created?: string };

const DIGITS = /^[0-9]{1,20}$/;
const NSID_RE = /^[a-zA-Z]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)+$/;
const MAX_INT64 = 9223372036854775807n;

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

export function parseKnotEnvelope(text: string): EnvelopeDecode {
  // The reviver sees every value bottom-up; for `created` keys it remembers the number's exact
  // source text by holder object, and the top-level holder is picked afterwards.
  const createdSource = new Map<object, string>();
  let raw: unknown;
  try {
    raw = JSON.parse(text, function (
      this: object,
      key: string,
      value: unknown,
      context?: { source?: string },
    ) {
      if (key === "created" && typeof value === "number" && context?.source !== undefined)
        createdSource.set(this, context.source);
      return value;
    } as (this: unknown, key: string, value: unknown) => unknown);
  } catch (err) {
    return { ok: false, reason: `frame is not JSON: ${(err as Error).message}` };
  }
  if (!isObject(raw)) return { ok: false, reason: "frame is not a JSON object" };
  let created: string | null = null;
  if (raw.created !== undefined && raw.created !== null) {
    const src = typeof raw.created === "number" ? createdSource.get(raw) : raw.created;
    if (typeof src !== "string" || !DIGITS.test(src) || BigInt(src) > MAX_INT64)
      return { ok: false, reason: `created is not a non-negative int64: ${preview(src ?? raw.created)}` };
    created = BigInt(src).toString();
  }
  const bad = (reason: string): EnvelopeDecode =>
    created === null ? { ok: false, reason } : { ok: false, reason, created };
  const { nsid, rkey, event } = raw;
  if (typeof nsid !== "string" || !NSID_RE.test(nsid) || nsid.length > 317)
    return bad(`nsid is missing or not an NSID: ${preview(nsid)}`);
  if (typeof rkey !== "string" || !isValidRecordKey(rkey))
    return bad(`rkey is missing or not a record key: ${preview(rkey)}`);
  if (!isObject(event)) return bad(`event of ${nsid}/${rkey} is missing or not an object`);
  return { ok: true, envelope: { nsid, rkey, event, created } };
}

function preview(v: unknown): string {
  const s = v === undefined ? "undefined" : JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

// ---- Writing envelopes and cursors, and a strict reader (knot side) -------------------------

/**
 * The same envelope as a Generation 2 knot writes it (gen2 §2.3):
 * `{"rkey": "<tid>", "nsid": "<nsid>", "event": {…}, "created": <int64 unix nanoseconds>}`.
 *
 * `created` (≈1.8e18) is above 2^53, so `JSON.parse` would round it and two neighbouring events
 * could share a cursor. We read its digits from the source text instead: Node 24's `JSON.parse`
 * hands the reviver a `context.source` for primitive values, so no hand-written scanner is
 * needed. Keys may come in any order (older knots re-marshalled a map: sorted keys).
 */
export interface Envelope {
  rkey: string;
  nsid: string;
  /** The stored event JSON, verbatim (its own numbers are parsed normally). */
  event: Record<string, unknown>;
  /**
   * Server time in nanoseconds, exact. Undefined when the server did not send one: Gen1 knots
   * had no `created` (spec §1.3). A consumer must then not advance its cursor.
   */
  created: bigint | undefined;
}

export class EnvelopeError extends Error {
  override readonly name = "EnvelopeError";
  readonly code = "InvalidEnvelope";
}

/** Reviver context (Node ≥ 22 / V8 "JSON.parse source text access"); not yet in TS's lib. */
interface ReviverContext {
  source?: string;
}

const INTEGER = /^(0|[1-9][0-9]*)$/;

export function parseEnvelope(text: string): Envelope {
  // Nested objects may hold their own `created` key; only the root's counts. The reviver runs
  // bottom-up and meets the root last (key ""), so remember each holder's source and pick after.
  const createdSources = new Map<object, string | undefined>();
  let root: unknown;
  try {
    root = JSON.parse(text, function (this: object, key: string, value: unknown, ...rest: unknown[]) {
      if (key === "created") {
        const ctx = rest[0] as ReviverContext | undefined;
        createdSources.set(this, typeof value === "number" ? ctx?.source : undefined);
      }
      return value;
    });
  } catch (err) {
    throw new EnvelopeError(`event envelope is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (root === null || typeof root !== "object" || Array.isArray(root)) {
    throw new EnvelopeError("event envelope is not a JSON object");
  }
  const obj = root as Record<string, unknown>;
  if (typeof obj.rkey !== "string" || obj.rkey === "")
    throw new EnvelopeError("envelope rkey must be a non-empty string");
  if (typeof obj.nsid !== "string" || obj.nsid === "")
    throw new EnvelopeError("envelope nsid must be a non-empty string");
  const event = obj.event;
  if (event === null || typeof event !== "object" || Array.isArray(event)) {
    throw new EnvelopeError(`envelope event of ${obj.nsid} ${obj.rkey} is not a JSON object`);
  }
  let created: bigint | undefined;
  if (Object.hasOwn(obj, "created") && obj.created !== null) {
    const source = createdSources.get(obj);
    if (source === undefined || !INTEGER.test(source)) {
      throw new EnvelopeError(
        `envelope created must be a non-negative integer of nanoseconds, got ${JSON.stringify(source ?? obj.created)}`,
      );
    }
    created = BigInt(source);
    if (created > MAX_INT64) throw new EnvelopeError(`envelope created ${source} does not fit in int64`);
  }
  return { rkey: obj.rkey, nsid: obj.nsid, event: event as Record<string, unknown>, created };
}

/**
 * Serialises an envelope the way the Go server does (struct order rkey, nsid, event, created),
 * writing `created` as exact digits. Used by test servers and by a spindle's own `/events`.
 */
export function encodeKnotEnvelope(env: {
  rkey: string;
  nsid: string;
  event: unknown;
  created: bigint;
}): string {
  return `{"rkey":${JSON.stringify(env.rkey)},"nsid":${JSON.stringify(env.nsid)},"event":${JSON.stringify(env.event)},"created":${env.created.toString()}}`;
}

/**
 * A `?cursor=` value as the Gen2 server reads it: missing or unparsable means 0, i.e. replay from
 * the oldest retained event (gen2 §2.3).
 */
export function parseCursorParam(value: string | null | undefined): bigint {
  if (value === null || value === undefined || !INTEGER.test(value)) return 0n;
  const n = BigInt(value);
  return n > MAX_INT64 ? 0n : n;
}

/** The cursor a consumer sends back: the decimal digits of the largest `created` it processed. */
export function formatCursor(created: bigint): string {
  return created.toString();
}
