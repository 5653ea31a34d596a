/**
 * A PDS stand-in for intake tests: an HTTP server on loopback answering
 * `com.atproto.repo.getRecord` and `com.atproto.repo.listRecords` from an in-memory record set,
 * in the shapes a real PDS answers (`{uri, cid, value}`; `{records, cursor}`, newest rkey first;
 * `400 {"error":"RecordNotFound"}`).
 *
 * Identities point at it through the PLC stand-in:
 *
 *   const plc = await startPlcServer();
 *   const pds = await PdsStandIn.start();
 *   pds.registerIdentity(plc, "did:plc:…", "alice.test");   // DID doc with #atproto_pds = pds.url
 *   pds.putRecord("did:plc:…", "sh.tangled.repo", "3lrepo", { name: "core", … });
 *
 * `com.atproto.sync.getBlob?did=…&cid=…` serves blobs stored with `putBlob` (real CIDv1 raw
 * sha-256 CIDs), answering `400 {"error":"BlobNotFound"}` like a PDS for unknown ones.
 *
 * `behaviour` makes it misbehave for timeout / size-cap tests.
 */
import { createHash } from "node:crypto";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { PlcServer } from "./plc-server.ts";

export interface PdsBehaviour {
  /** Never answer (the client's timeout must fire). */
  hang?: boolean;
  /** Answer 200 with a body of this many bytes of JSON padding. */
  oversizeBytes?: number;
  /** Answer this status with an XRPC error body. */
  status?: number;
}

export class PdsStandIn {
  readonly url: string;
  /** Every request path+query, in order. */
  readonly requests: string[] = [];
  behaviour: PdsBehaviour = {};
  readonly #server: Server;
  /** did → collection → rkey → value */
  readonly #records = new Map<string, Map<string, Map<string, unknown>>>();
  /** `${did} ${cid}` → bytes and mime type */
  readonly #blobs = new Map<string, { bytes: Buffer; mimeType: string }>();

  private constructor(server: Server, url: string) {
    this.#server = server;
    this.url = url;
  }

  static async start(): Promise<PdsStandIn> {
    let answer: (path: string, res: ServerResponse) => void = (_p, res) => res.writeHead(503).end();
    const server = createServer((req, res) => answer(req.url ?? "/", res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const self = new PdsStandIn(server, `http://127.0.0.1:${port}`);
    answer = (path, res) => self.#answer(path, res);
    return self;
  }

  /** A DID document whose `#atproto_pds` service is this stand-in. */
  didDocument(did: string, handle = "someone.test"): Record<string, unknown> {
    return {
      "@context": ["https://www.w3.org/ns/did/v1"],
      id: did,
      alsoKnownAs: [`at://${handle}`],
      verificationMethod: [],
      service: [{ id: "#atproto_pds", type: "AtprotoPersonalDataServer", serviceEndpoint: this.url }],
    };
  }

  registerIdentity(plc: PlcServer, did: string, handle?: string): void {
    plc.setDocument(did, this.didDocument(did, handle));
  }

  /** Stores a record; returns its at-uri. */
  putRecord(did: string, collection: string, rkey: string, value: unknown): string {
    const byColl = this.#records.get(did) ?? new Map<string, Map<string, unknown>>();
    this.#records.set(did, byColl);
    const byKey = byColl.get(collection) ?? new Map<string, unknown>();
    byColl.set(collection, byKey);
    byKey.set(rkey, value);
    return `at://${did}/${collection}/${rkey}`;
  }

  /**
   * Stores a blob of `did`; returns its blob ref as a record holds it in JSON
   * (`{$type:"blob", ref:{$link}, mimeType, size}`).
   */
  putBlob(
    did: string,
    bytes: Uint8Array,
    mimeType = "application/gzip",
  ): { $type: "blob"; ref: { $link: string }; mimeType: string; size: number } {
    const cid = rawCid(bytes);
    this.#blobs.set(`${did} ${cid}`, { bytes: Buffer.from(bytes), mimeType });
    return { $type: "blob", ref: { $link: cid }, mimeType, size: bytes.byteLength };
  }

  deleteRecord(did: string, collection: string, rkey: string): void {
    this.#records.get(did)?.get(collection)?.delete(rkey);
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.closeAllConnections();
      this.#server.close(() => resolve());
    });
  }

  #answer(path: string, res: ServerResponse): void {
    this.requests.push(path);
    if (this.behaviour.hang) return; // the socket stays open until the client gives up or stop() runs
    if (this.behaviour.oversizeBytes !== undefined) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(`{"pad":"${"x".repeat(this.behaviour.oversizeBytes)}"}`);
      return;
    }
    if (this.behaviour.status === undefined) {
      const u = new URL(path, this.url);
      if (u.pathname === "/xrpc/com.atproto.sync.getBlob") {
        const blob = this.#blobs.get(`${u.searchParams.get("did")} ${u.searchParams.get("cid")}`);
        if (blob !== undefined) {
          res.writeHead(200, { "content-type": blob.mimeType, "content-length": blob.bytes.byteLength });
          res.end(blob.bytes);
          return;
        }
        res.writeHead(400, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: "BlobNotFound", message: "Blob not found" }));
        return;
      }
    }
    const [status, body] = this.#route(path);
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  }

  #route(path: string): [number, unknown] {
    if (this.behaviour.status !== undefined)
      return [this.behaviour.status, { error: "InternalServerError", message: "stand-in told to fail" }];
    const u = new URL(path, this.url);
    const q = u.searchParams;
    const byKey = this.#records.get(q.get("repo") ?? "")?.get(q.get("collection") ?? "");
    const uri = (rkey: string) => `at://${q.get("repo")}/${q.get("collection")}/${rkey}`;
    if (u.pathname === "/xrpc/com.atproto.repo.getRecord") {
      const rkey = q.get("rkey") ?? "";
      const value = byKey?.get(rkey);
      if (value === undefined)
        return [400, { error: "RecordNotFound", message: `Could not locate record: ${uri(rkey)}` }];
      return [200, { uri: uri(rkey), cid: "bafyreistandin", value }];
    }
    if (u.pathname === "/xrpc/com.atproto.repo.listRecords") {
      const limit = Math.min(Math.max(Number(q.get("limit") ?? 50) || 50, 1), 100);
      const after = q.get("cursor");
      const keys = [...(byKey?.keys() ?? [])]
        .sort()
        .reverse()
        .filter((k) => after === null || k < after);
      const page = keys.slice(0, limit);
      const body: Record<string, unknown> = {
        records: page.map((k) => ({ uri: uri(k), cid: "bafyreistandin", value: byKey?.get(k) })),
      };
      if (keys.length > limit) body.cursor = page[page.length - 1];
      return [200, body];
    }
    return [501, { error: "MethodNotImplemented", message: `stand-in does not implement ${u.pathname}` }];
  }
}

/** CIDv1, raw codec (0x55), sha2-256 multihash, base32 lower-case multibase ("b…"). */
function rawCid(bytes: Uint8Array): string {
  const digest = createHash("sha256").update(bytes).digest();
  const raw = Buffer.concat([Buffer.from([0x01, 0x55, 0x12, 0x20]), digest]);
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  let out = "b";
  let bits = 0;
  let value = 0;
  for (const byte of raw) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}
