/**
 * Serves one did:web document over plain http on loopback (`/.well-known/did.json`).
 * `host` picks the name in the DID. Either needs the spindle's dev mode: outside it, did:web
 * documents are fetched through the SSRF guard, which refuses loopback hosts.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface DidWebServer {
  /** `did:web:<host>%3A<port>` */
  did: string;
  setDocument(doc: unknown): void;
  /** Requests for the document so far. */
  fetches(): number;
  stop(): Promise<void>;
}

export async function startDidWebServer(
  host: "localhost" | "127.0.0.1" = "localhost",
): Promise<DidWebServer> {
  let doc: unknown;
  let fetches = 0;
  const server: Server = createServer((req, res) => {
    fetches++;
    if (req.method === "GET" && req.url === "/.well-known/did.json" && doc !== undefined) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(doc));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    did: `did:web:${host}%3A${port}`,
    setDocument: (d) => {
      doc = d;
    },
    fetches: () => fetches,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
