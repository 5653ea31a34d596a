/**
 * Serves one did:web document over plain http on loopback (`/.well-known/did.json`).
 * `host` picks the name in the DID: `localhost` works with `@atproto/identity` as is (it uses
 * http for localhost); `127.0.0.1` needs the spindle's dev mode.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface DidWebServer {
  /** `did:web:<host>%3A<port>` */
  did: string;
  setDocument(doc: unknown): void;
  stop(): Promise<void>;
}

export async function startDidWebServer(
  host: "localhost" | "127.0.0.1" = "localhost",
): Promise<DidWebServer> {
  let doc: unknown;
  const server: Server = createServer((req, res) => {
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
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
