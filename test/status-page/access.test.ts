/**
 * Where the status page is served: on the operations listener (`server.metricsAddr`) always;
 * on the public port only with `SPINDLE_SERVER_STATUS_PAGE_PUBLIC=true`, and there only to the
 * spindle owner's service auth (a JWT as the owner-only XRPC methods take, verified against the
 * owner's DID document from a real PLC stand-in on loopback).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Keypair, P256Keypair } from "@atproto/crypto";
import { STATUS_PAGE_LXM } from "../../src/spindle/server.ts";
import { ALICE, type Booted, bootServer, HOSTNAME, OWNER } from "../spindle/server-kit.ts";
import { didDocument, serviceClaims, signJwt } from "../support/atproto.ts";
import { type PlcServer, startPlcServer } from "../support/plc-server.ts";

const AUD = `did:web:${HOSTNAME}`;

describe("status page access", () => {
  let plc: PlcServer;
  const keys = new Map<string, Keypair>();
  before(async () => {
    plc = await startPlcServer();
    for (const did of [OWNER, ALICE]) {
      const key = await P256Keypair.create();
      keys.set(did, key);
      plc.setDocument(did, didDocument(did, key));
    }
  });
  after(() => plc.stop());
  const token = async (did: string, lxm?: string) =>
    `Bearer ${await signJwt(keys.get(did) as Keypair, serviceClaims(did, AUD, lxm))}`;
  const get = async (url: string, authorization?: string) => {
    const res = await fetch(url, authorization ? { headers: { authorization } } : {});
    return { status: res.status, type: res.headers.get("content-type"), body: await res.text() };
  };

  it("is on the operations listener, and not on the public port by default", async (t) => {
    const b: Booted = await bootServer({
      env: { SPINDLE_SERVER_METRICS_ADDR: "127.0.0.1:0", SPINDLE_SERVER_PLC_URL: plc.url },
    });
    t.after(() => b.stop());
    const page = await get(`${b.server.metricsUrl}/status`);
    assert.equal(page.status, 200);
    assert.equal(page.type, "text/html; charset=utf-8");
    assert.match(page.body, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
    assert.equal((await get(`${b.url}/status`)).status, 404);
    assert.equal((await get(`${b.url}/status`, await token(OWNER))).status, 404, "not even for the owner");
    assert.equal((await get(`${b.server.metricsUrl}/status/log/nope`)).status, 404, "an unknown run");
  });

  it("on the public port when enabled, for the owner's service auth only", async (t) => {
    const b = await bootServer({
      env: { SPINDLE_SERVER_STATUS_PAGE_PUBLIC: "true", SPINDLE_SERVER_PLC_URL: plc.url },
    });
    t.after(() => b.stop());
    const none = await get(`${b.url}/status`);
    assert.equal(none.status, 401);
    assert.doesNotMatch(none.body, /<html/);
    assert.equal((await get(`${b.url}/status`, "Bearer not.a.jwt")).status, 401);
    assert.equal(
      (await get(`${b.url}/status`, await token(ALICE, STATUS_PAGE_LXM))).status,
      403,
      "not the owner",
    );
    assert.equal((await get(`${b.url}/status/stream`, await token(ALICE))).status, 403);
    assert.equal(
      (await get(`${b.url}/status`, await token(OWNER, "sh.tangled.repo.addSecret"))).status,
      401,
      "a token for another method",
    );
    const page = await get(`${b.url}/status`, await token(OWNER, STATUS_PAGE_LXM));
    assert.equal(page.status, 200);
    assert.match(page.body, /Loom spindle status/);
    const plain = await get(`${b.url}/status`, await token(OWNER));
    assert.equal(plain.status, 200, "a token without lxm");
  });
});
