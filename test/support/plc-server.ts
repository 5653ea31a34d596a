/**
 * A PLC-directory-compatible HTTP server on loopback for tests: `GET /<did>` (the DID may be
 * percent-encoded, as `@atproto/identity` sends it) answers the DID document registered with
 * `setDocument`, or 404 like plc.directory. It counts requests so tests can see cache refreshes.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface PlcServer {
  url: string;
  setDocument(did: string, doc: unknown): void;
  removeDocument(did: string): void;
  /** How many times `did` was fetched. */
  fetches(did: string): number;
  stop(): Promise<void>;
}

export async function startPlcServer(): Promise<PlcServer> {
  const docs = new Map<string, unknown>();
  const counts = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const did = decodeURIComponent((req.url ?? "/").split("?")[0]?.slice(1) ?? "");
    counts.set(did, (counts.get(did) ?? 0) + 1);
    const doc = req.method === "GET" ? docs.get(did) : undefined;
    if (doc === undefined) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ message: `DID not registered: ${did}` }));
      return;
    }
    res.writeHead(200, { "content-type": "application/did+ld+json" });
    res.end(JSON.stringify(doc));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    setDocument: (did, doc) => docs.set(did, doc),
    removeDocument: (did) => docs.delete(did),
    fetches: (did) => counts.get(did) ?? 0,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
