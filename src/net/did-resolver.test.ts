import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { createDidResolver } from "./did-resolver.ts";
import { GuardedFetchError } from "./guarded-fetch.ts";
import { IdentityResolver } from "./identity.ts";

describe("did:web through the SSRF guard", () => {
  let server: Server;
  let did = "";
  const requests: string[] = [];
  let body = "";

  before(async () => {
    server = createServer((req, res) => {
      requests.push(req.url ?? "");
      if (req.url !== "/.well-known/did.json") {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    did = `did:web:127.0.0.1%3A${(server.address() as AddressInfo).port}`;
    body = JSON.stringify({
      "@context": ["https://www.w3.org/ns/did/v1"],
      id: did,
      verificationMethod: [
        {
          id: `${did}#atproto`,
          type: "Multikey",
          controller: did,
          publicKeyMultibase: "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF",
        },
      ],
      service: [
        { id: "#atproto_pds", type: "AtprotoPersonalDataServer", serviceEndpoint: "http://127.0.0.1:1" },
      ],
    });
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it("refuses a did:web on a private address outside dev mode, without a request", async () => {
    const before = requests.length;
    const resolver = createDidResolver({ plcUrl: "http://127.0.0.1:1", dev: false, timeoutMs: 2000 });
    await assert.rejects(
      resolver.resolve(did),
      (err: unknown) => err instanceof GuardedFetchError && err.code === "ForbiddenAddress",
    );
    // The same for a service token's issuer (checked before any signature) and a record's author.
    await assert.rejects(
      new IdentityResolver({ plcUrl: "http://127.0.0.1:1", dev: false }).resolveSigningKey(did, false),
    );
    await assert.rejects(new IdentityResolver({ plcUrl: "http://127.0.0.1:1", dev: false }).lookup(did));
    assert.equal(requests.length, before, "no request reached the private host");
  });

  it("resolves it in dev mode (local stacks), over http", async () => {
    const resolver = createDidResolver({ plcUrl: "http://127.0.0.1:1", dev: true, timeoutMs: 2000 });
    const doc = await resolver.resolve(did);
    assert.equal((doc as { id: string }).id, did);
    const key = await new IdentityResolver({ plcUrl: "http://127.0.0.1:1", dev: true }).resolveSigningKey(
      did,
      false,
    );
    assert.match(key, /^did:key:z/);
    assert.equal(
      (await new IdentityResolver({ plcUrl: "http://127.0.0.1:1", dev: true }).lookup(did)).pds,
      "http://127.0.0.1:1",
    );
  });

  it("caps the document's size", async () => {
    const saved = body;
    body = JSON.stringify({ id: did, padding: "x".repeat(300 << 10) });
    try {
      const resolver = createDidResolver({ plcUrl: "http://127.0.0.1:1", dev: true, timeoutMs: 2000 });
      await assert.rejects(
        resolver.resolve(did),
        (err: unknown) => err instanceof GuardedFetchError && err.code === "TooLarge",
      );
    } finally {
      body = saved;
    }
  });
});
