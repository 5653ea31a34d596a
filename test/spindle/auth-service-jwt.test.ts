/**
 * Service-auth verification against real parts: keys from @atproto/crypto, JWTs signed with
 * them, DID documents served by a local PLC-compatible server and by did:web over loopback
 * http, the jti cache in a real SQLite file.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { P256Keypair, Secp256k1Keypair } from "@atproto/crypto";
import { IdentityResolver } from "../../src/net/identity.ts";
import {
  bearerToken,
  JtiReplayCache,
  ServiceJwtVerifier,
  serviceAudiences,
} from "../../src/spindle/auth/index.ts";
import { openDatabase } from "../../src/spindle/db/index.ts";
import { AuthError, toXrpcErrorResponse } from "../../src/spindle/errors.ts";
import { didDocument, serviceClaims, signJwt } from "../support/atproto.ts";
import { type DidWebServer, startDidWebServer } from "../support/did-web-server.ts";
import { type PlcServer, startPlcServer } from "../support/plc-server.ts";

const HOST = "localhost:6555";
const AUD = "did:web:localhost%3A6555"; // what the appview mints
const METHOD = "sh.tangled.repo.addSecret";
const audiences = serviceAudiences(HOST);
const ALICE = "did:plc:aliceaaaaaaaaaaaaaaaaaaa"; // secp256k1 (ES256K)
const BOB = "did:plc:bobbbbbbbbbbbbbbbbbbbbbb"; // P-256 (ES256)

const dir = mkdtempSync(join(tmpdir(), "loom-auth-"));
const db = openDatabase(join(dir, "spindle.db"));
let plc: PlcServer;
let web: DidWebServer;
let web127: DidWebServer;
let aliceKey: Secp256k1Keypair;
let bobKey: P256Keypair;
let carolKey: P256Keypair;
let verifier: ServiceJwtVerifier;

const now = () => Math.floor(Date.now() / 1000);
const verify = (token: string, method = METHOD) => verifier.verify(token, { audiences, method });

async function rejectsAuth(p: Promise<unknown>, detail: RegExp, token?: string) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof AuthError, `expected AuthError, got ${String(err)}`);
    assert.match(err.message, /^signature verification failed: /);
    assert.match(err.message, detail);
    const res = toXrpcErrorResponse(err);
    assert.equal(res.status, 403);
    assert.equal(res.body.error, "Auth");
    if (token) assert.ok(!res.body.message.includes(token.split(".")[2] ?? token), "token echoed in error");
    return true;
  });
}

before(async () => {
  plc = await startPlcServer();
  web = await startDidWebServer("localhost");
  web127 = await startDidWebServer("127.0.0.1");
  aliceKey = await Secp256k1Keypair.create();
  bobKey = await P256Keypair.create();
  carolKey = await P256Keypair.create();
  plc.setDocument(ALICE, didDocument(ALICE, aliceKey));
  plc.setDocument(BOB, didDocument(BOB, bobKey));
  web.setDocument(didDocument(web.did, carolKey));
  web127.setDocument(didDocument(web127.did, carolKey));
  verifier = new ServiceJwtVerifier({
    resolver: new IdentityResolver({ plcUrl: plc.url }),
    replay: new JtiReplayCache(db),
  });
});
after(async () => {
  await Promise.all([plc.stop(), web.stop(), web127.stop()]);
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("service JWT: accepted", () => {
  it("ES256K from a did:plc, ES256 from a did:plc, ES256 from a did:web", async () => {
    assert.equal((await verify(await signJwt(aliceKey, serviceClaims(ALICE, AUD, METHOD)))).iss, ALICE);
    assert.equal((await verify(await signJwt(bobKey, serviceClaims(BOB, AUD, METHOD)))).iss, BOB);
    // A did:web on this machine resolves in dev mode only (see "did:web over http").
    const devVerifier = new ServiceJwtVerifier({
      resolver: new IdentityResolver({ plcUrl: plc.url, dev: true }),
      replay: new JtiReplayCache(db),
    });
    const carol = await devVerifier.verify(await signJwt(carolKey, serviceClaims(web.did, AUD, METHOD)), {
      audiences,
      method: METHOD,
    });
    assert.deepEqual([carol.iss, carol.aud, carol.lxm], [web.did, AUD, METHOD]);
  });

  it("every form of the spindle's DID as aud", async () => {
    for (const aud of [
      "did:web:localhost:6555",
      "did:web:localhost%3A6555",
      "did:web:localhost%3a6555",
      "did:web:localhost:6555#tangled_spindle",
      "did:web:localhost%3A6555#tangled_spindle",
    ]) {
      assert.equal((await verify(await signJwt(aliceKey, serviceClaims(ALICE, aud, METHOD)))).aud, aud);
    }
  });

  it("no lxm (upstream-compatible), no jti, no typ, and clock skew within 5 s", async () => {
    const t = now();
    const { jti: _jti, lxm: _lxm, ...bare } = serviceClaims(ALICE, AUD, METHOD, t);
    assert.equal((await verify(await signJwt(aliceKey, bare, { alg: "ES256K" }))).lxm, null);
    await verify(await signJwt(aliceKey, { ...serviceClaims(ALICE, AUD, METHOD), exp: t - 3 }));
    await verify(await signJwt(aliceKey, { ...serviceClaims(ALICE, AUD, METHOD), iat: t + 3 }));
  });

  it("iss with a service fragment authenticates the account", async () => {
    const res = await verify(await signJwt(aliceKey, serviceClaims(`${ALICE}#atproto_pds`, AUD, METHOD)));
    assert.equal(res.iss, ALICE);
  });
});

describe("service JWT: rejected", () => {
  it("wrong aud", async () => {
    for (const aud of [
      "did:web:other.example",
      "did:web:localhost%3A6556",
      "did:web:localhost",
      "did:web:localhost:6555#atproto_pds",
      "did:plc:aliceaaaaaaaaaaaaaaaaaaa",
    ]) {
      await rejectsAuth(verify(await signJwt(aliceKey, serviceClaims(ALICE, aud, METHOD))), /wrong aud/);
    }
    await rejectsAuth(
      verify(await signJwt(aliceKey, { ...serviceClaims(ALICE, AUD, METHOD), aud: [AUD] })),
      /wrong aud/,
    );
  });

  it("wrong aud names the audience a PDS will mint (port as %3A), never the unencoded form", async () => {
    // A PDS refuses getServiceAuth?aud=did:web:localhost:6555 (not a valid DID) and mints
    // did:web:localhost%3A6555, which is accepted: the error must point the client at that form.
    await rejectsAuth(
      verify(await signJwt(aliceKey, serviceClaims(ALICE, "did:web:other.example", METHOD))),
      /wrong aud \(expected did:web:localhost%3A6555\)/,
    );
  });

  it("expired, missing exp, issued in the future", async () => {
    const t = now();
    await rejectsAuth(
      verify(await signJwt(aliceKey, { ...serviceClaims(ALICE, AUD, METHOD), exp: t - 10 })),
      /expired/,
    );
    const { exp: _exp, ...noExp } = serviceClaims(ALICE, AUD, METHOD);
    await rejectsAuth(verify(await signJwt(aliceKey, noExp)), /missing exp/);
    await rejectsAuth(
      verify(await signJwt(aliceKey, { ...serviceClaims(ALICE, AUD, METHOD), iat: t + 30 })),
      /future/,
    );
  });

  it("the verifier's clock decides, not the token's", async () => {
    const token = await signJwt(aliceKey, serviceClaims(ALICE, AUD, METHOD));
    await rejectsAuth(
      verifier.verify(token, { audiences, method: METHOD, now: new Date(Date.now() + 120_000) }),
      /expired/,
    );
  });

  it("wrong lxm (stricter than upstream)", async () => {
    const token = await signJwt(aliceKey, serviceClaims(ALICE, AUD, "sh.tangled.repo.removeSecret"));
    await rejectsAuth(
      verify(token, METHOD),
      /lxm does not match the called method sh\.tangled\.repo\.addSecret/,
    );
  });

  it("replayed jti, also after a restart (persisted)", async () => {
    const token = await signJwt(aliceKey, serviceClaims(ALICE, AUD, METHOD));
    await verify(token);
    await rejectsAuth(verify(token), /replayed/);
    const db2 = openDatabase(join(dir, "spindle.db"));
    const restarted = new ServiceJwtVerifier({
      resolver: new IdentityResolver({ plcUrl: plc.url }),
      replay: new JtiReplayCache(db2),
    });
    await rejectsAuth(restarted.verify(token, { audiences, method: METHOD }), /replayed/);
    db2.close();
    // The same jti from another issuer is a different token.
    const claims = JSON.parse(Buffer.from(token.split(".")[1] as string, "base64url").toString());
    await verify(await signJwt(bobKey, { ...claims, iss: BOB }));
  });

  it("a rejected token does not burn its jti", async () => {
    const claims = serviceClaims(ALICE, AUD, METHOD);
    await rejectsAuth(verify(await signJwt(bobKey, claims)), /bad signature/);
    await verify(await signJwt(aliceKey, claims));
  });

  it("unknown DID, did:key issuer, non-DID issuer", async () => {
    await rejectsAuth(
      verify(await signJwt(aliceKey, serviceClaims("did:plc:nobodyyyyyyyyyyyyyyyyyyy", AUD, METHOD))),
      /could not resolve the issuer's signing key/,
    );
    await rejectsAuth(
      verify(await signJwt(aliceKey, serviceClaims(aliceKey.did(), AUD, METHOD))),
      /did:plc or did:web/,
    );
    await rejectsAuth(
      verify(await signJwt(aliceKey, serviceClaims("alice.test", AUD, METHOD))),
      /did:plc or did:web/,
    );
    const { iss: _iss, ...noIss } = serviceClaims(ALICE, AUD, METHOD);
    await rejectsAuth(verify(await signJwt(aliceKey, noIss)), /missing iss/);
  });

  it("malformed tokens", async () => {
    for (const token of [
      "",
      "abc",
      "a.b",
      "a.b.c.d",
      "a.b.",
      "e30.e30.sig=",
      "bm90anNvbg.e30.c2ln",
      "WzFd.e30.c2ln",
    ]) {
      await rejectsAuth(verify(token), /malformed token/);
    }
  });

  it("alg none, HS256, unexpected typ, and alg/key curve mismatch", async () => {
    const claims = serviceClaims(ALICE, AUD, METHOD);
    const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
    await rejectsAuth(verify(`${unsigned}.`), /malformed/);
    await rejectsAuth(verify(`${unsigned}.AAAA`), /unsupported alg "none"/);
    await rejectsAuth(
      verify(await signJwt(aliceKey, claims, { alg: "HS256", typ: "JWT" })),
      /unsupported alg "HS256"/,
    );
    await rejectsAuth(verify(await signJwt(aliceKey, claims, { alg: "ES256K", typ: "at+jwt" })), /typ/);
    // A secp256k1 signature presented as ES256 must not verify.
    await rejectsAuth(
      verify(await signJwt(aliceKey, serviceClaims(ALICE, AUD, METHOD), { alg: "ES256", typ: "JWT" })),
      /bad signature/,
    );
  });

  it("bad signature: refreshes the document once, then rejects", async () => {
    const mallory = await Secp256k1Keypair.create();
    const before = plc.fetches(ALICE);
    const token = await signJwt(mallory, serviceClaims(ALICE, AUD, METHOD));
    await rejectsAuth(verify(token), /bad signature/, token);
    assert.equal(plc.fetches(ALICE) - before, 1, "exactly one forced refresh");
    // Tampered payload with a genuine signature.
    const good = await signJwt(aliceKey, serviceClaims(ALICE, AUD, METHOD));
    const [h, , s] = good.split(".");
    const forged = Buffer.from(
      JSON.stringify({ ...serviceClaims(ALICE, AUD, METHOD), exp: now() + 3000 }),
    ).toString("base64url");
    await rejectsAuth(verify(`${h}.${forged}.${s}`), /bad signature/);
  });

  it("key rotation: the cached document is refreshed and the new key accepted", async () => {
    const dave = "did:plc:daveeeeeeeeeeeeeeeeeeeee";
    const oldKey = await Secp256k1Keypair.create();
    const newKey = await P256Keypair.create();
    plc.setDocument(dave, didDocument(dave, oldKey));
    await verify(await signJwt(oldKey, serviceClaims(dave, AUD, METHOD))); // caches the old doc
    plc.setDocument(dave, didDocument(dave, newKey));
    const fetched = plc.fetches(dave);
    assert.equal((await verify(await signJwt(newKey, serviceClaims(dave, AUD, METHOD)))).iss, dave);
    assert.equal(plc.fetches(dave) - fetched, 1);
    await rejectsAuth(verify(await signJwt(oldKey, serviceClaims(dave, AUD, METHOD))), /bad signature/);
  });
});

describe("did:web over http", () => {
  it("127.0.0.1 and localhost hosts resolve only in dev mode (an issuer must not reach our network)", async () => {
    const token = () => signJwt(carolKey, serviceClaims(web127.did, AUD, METHOD));
    await rejectsAuth(verify(await token()), /could not resolve/);
    // Stricter than @atproto/identity, which fetches did:web:localhost over http: a token's
    // issuer is unchecked until its document is read, so that read goes through the SSRF guard.
    const before = web.fetches();
    await rejectsAuth(
      verify(await signJwt(carolKey, serviceClaims(web.did, AUD, METHOD))),
      /could not resolve/,
    );
    assert.equal(web.fetches(), before, "no request reached the loopback did:web server");
    const dev = new ServiceJwtVerifier({
      resolver: new IdentityResolver({ plcUrl: plc.url, dev: true }),
      replay: new JtiReplayCache(db),
    });
    assert.equal((await dev.verify(await token(), { audiences, method: METHOD })).iss, web127.did);
  });
});

describe("bearerToken", () => {
  it("takes the token from the Authorization header", () => {
    assert.equal(bearerToken("Bearer a.b.c"), "a.b.c");
    assert.equal(bearerToken("bearer  a.b.c "), "a.b.c");
    for (const bad of [undefined, null, "", "Bearer", "Basic abc", "Bearer a b"]) {
      assert.throws(() => bearerToken(bad), AuthError);
    }
  });
});
