/**
 * Pull-request source SHAs (gen2 §2.5): the latest round's patch is a gzip blob on the pull
 * author's PDS, fetched with `com.atproto.sync.getBlob` through the SSRF-guarded client.
 */
import { gunzipSync } from "node:zlib";
import { isValidDid } from "@atproto/syntax";
import { GET_BLOB_NSID } from "../protocol/nsid.ts";
import { type GuardedFetchOptions, guardedFetch } from "./guarded-fetch.ts";

export class BlobError extends Error {
  override readonly name = "BlobError";
  readonly code: "InvalidInput" | "BlobNotFound" | "BadResponse" | "NotAPatch";
  constructor(code: BlobError["code"], message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

// CIDv1 in base32 (what atproto blob refs use): "b" + lowercase base32.
const CID = /^b[a-z2-7]{20,}$/;

/**
 * GET `<pds>/xrpc/com.atproto.sync.getBlob?did=…&cid=…`. `pds` is the service endpoint from the
 * author's DID document (`https://…`). Errors say which blob and why, never echo the body.
 */
export async function getBlob(
  pds: string,
  did: string,
  cid: string,
  opts: GuardedFetchOptions = {},
): Promise<Buffer> {
  if (!isValidDid(did)) throw new BlobError("InvalidInput", `not a DID: ${JSON.stringify(did)}`);
  if (!CID.test(cid)) throw new BlobError("InvalidInput", `not a base32 CID: ${JSON.stringify(cid)}`);
  const url = new URL(`/xrpc/${GET_BLOB_NSID}`, pds);
  url.searchParams.set("did", did);
  url.searchParams.set("cid", cid);
  const res = await guardedFetch(url, opts);
  if (
    res.status === 404 ||
    (res.status === 400 && /BlobNotFound|RepoNotFound/.test(res.body.toString("utf8", 0, 512)))
  ) {
    throw new BlobError("BlobNotFound", `blob ${cid} of ${did} not found on ${url.origin}`);
  }
  if (res.status !== 200)
    throw new BlobError("BadResponse", `getBlob ${cid} of ${did} on ${url.origin}: HTTP ${res.status}`);
  return res.body;
}

/** Patches are text; a decompressed patch larger than this is refused (zip bombs). */
export const MAX_PATCH_BYTES = 32 * 1024 * 1024;

// `git format-patch` starts every commit with this mbox line; the date is a fixed magic value.
const FROM_LINE = /^From ([0-9a-f]{40}) Mon Sep 17 00:00:00 2001$/gm;

/**
 * The source SHA of a round from its patch blob.
 *
 * GUESS (not verified against upstream): the blob is gzip-compressed `git format-patch` output
 * of the round's commits, oldest first, so the **last** `From <sha> Mon Sep 17 00:00:00 2001`
 * line names the tip commit = the round's `sourceRev`. A plain diff (no From lines) has no
 * commit id: that is a `NotAPatch` error, the caller then cannot run CI for the round.
 * Uncompressed input is accepted too (recognised by the missing gzip magic).
 */
export function sourceRevFromPatch(blob: Uint8Array, maxBytes = MAX_PATCH_BYTES): string {
  let text: string;
  const gz = blob.byteLength >= 2 && blob[0] === 0x1f && blob[1] === 0x8b;
  try {
    text = (gz ? gunzipSync(blob, { maxOutputLength: maxBytes }) : Buffer.from(blob)).toString("utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ERR_BUFFER_TOO_LARGE")
      throw new BlobError("NotAPatch", `patch is larger than ${maxBytes} bytes`, { cause: err });
    throw new BlobError("NotAPatch", `patch blob is not valid gzip: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!gz && text.length > maxBytes)
    throw new BlobError("NotAPatch", `patch is larger than ${maxBytes} bytes`);
  let last: string | undefined;
  for (const m of text.matchAll(FROM_LINE)) last = m[1];
  if (last === undefined)
    throw new BlobError("NotAPatch", "patch has no `From <sha>` line (not git format-patch output)");
  return last;
}
