/**
 * Decoding one Jetstream frame (plain JSON, §1.2; the shape of [J]'s `models.Event`):
 * `{"did", "time_us", "kind": "commit"|"account"|"identity", "commit": {"rev", "operation",
 * "collection", "rkey", "record", "cid"}}`. Anything else becomes a specific reason, never a throw.
 */

export type CommitOperation = "create" | "update" | "delete";

export interface JetstreamCommit {
  operation: CommitOperation;
  collection: string;
  rkey: string;
  /** The record for create/update (an object); null for delete. */
  record: Record<string, unknown> | null;
  cid: string | null;
  rev: string | null;
}

export interface JetstreamEvent {
  did: string;
  timeUs: number;
  kind: string;
  /** Present when kind is `commit`. */
  commit: JetstreamCommit | null;
}

export type JetstreamDecode =
  | { ok: true; event: JetstreamEvent }
  /** `timeUs` is set when the frame got far enough to have one (the cursor may still move). */
  | { ok: false; reason: string; timeUs: number | null };

const OPERATIONS = new Set<string>(["create", "update", "delete"]);

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

export function decodeJetstreamFrame(text: string): JetstreamDecode {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `frame is not JSON: ${(err as Error).message}`, timeUs: null };
  }
  if (!isObject(raw)) return { ok: false, reason: "frame is not a JSON object", timeUs: null };
  const timeUs = raw.time_us;
  if (typeof timeUs !== "number" || !Number.isSafeInteger(timeUs) || timeUs <= 0)
    return { ok: false, reason: "time_us is missing or not a positive integer", timeUs: null };
  if (typeof raw.did !== "string" || !raw.did.startsWith("did:"))
    return { ok: false, reason: "did is missing or not a DID", timeUs };
  if (typeof raw.kind !== "string") return { ok: false, reason: "kind is missing or not a string", timeUs };
  const event: JetstreamEvent = { did: raw.did, timeUs, kind: raw.kind, commit: null };
  if (raw.kind !== "commit") return { ok: true, event };

  const c = raw.commit;
  if (!isObject(c)) return { ok: false, reason: "commit event without a commit object", timeUs };
  if (typeof c.operation !== "string" || !OPERATIONS.has(c.operation))
    return { ok: false, reason: `unknown commit operation ${JSON.stringify(c.operation)}`, timeUs };
  if (typeof c.collection !== "string" || c.collection === "")
    return { ok: false, reason: "commit.collection is missing", timeUs };
  if (typeof c.rkey !== "string" || c.rkey === "")
    return { ok: false, reason: "commit.rkey is missing", timeUs };
  const operation = c.operation as CommitOperation;
  let record: Record<string, unknown> | null = null;
  if (operation !== "delete") {
    if (!isObject(c.record))
      return { ok: false, reason: `commit ${operation} without a record object`, timeUs };
    record = c.record;
  }
  event.commit = {
    operation,
    collection: c.collection,
    rkey: c.rkey,
    record,
    cid: typeof c.cid === "string" ? c.cid : null,
    rev: typeof c.rev === "string" ? c.rev : null,
  };
  return { ok: true, event };
}
