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

export type EnvelopeDecode = { ok: true; envelope: KnotEnvelope } | { ok: false; reason: string };

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
  const { nsid, rkey, event } = raw;
  if (typeof nsid !== "string" || !NSID_RE.test(nsid) || nsid.length > 317)
    return { ok: false, reason: `nsid is missing or not an NSID: ${preview(nsid)}` };
  if (typeof rkey !== "string" || !isValidRecordKey(rkey))
    return { ok: false, reason: `rkey is missing or not a record key: ${preview(rkey)}` };
  if (!isObject(event)) return { ok: false, reason: `event of ${nsid}/${rkey} is missing or not an object` };

  let created: string | null = null;
  if (raw.created !== undefined && raw.created !== null) {
    const src = typeof raw.created === "number" ? createdSource.get(raw) : raw.created;
    if (typeof src !== "string" || !DIGITS.test(src) || BigInt(src) > MAX_INT64)
      return { ok: false, reason: `created is not a non-negative int64: ${preview(src ?? raw.created)}` };
    created = BigInt(src).toString();
  }
  return { ok: true, envelope: { nsid, rkey, event, created } };
}

function preview(v: unknown): string {
  const s = v === undefined ? "undefined" : JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
