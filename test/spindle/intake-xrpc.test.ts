/**
 * The intake's XRPC client and DID-document lookup against the PDS and PLC stand-ins: answers,
 * XRPC errors, the deadline, the response-size cap, and unreachable servers.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { IdentityError, IdentityResolver } from "../../src/net/identity.ts";
import { XrpcClient, XrpcClientError } from "../../src/net/xrpc-client.ts";
import { PdsStandIn } from "../support/pds-standin.ts";
import { type PlcServer, startPlcServer } from "../support/plc-server.ts";
import { freePort } from "../support/ports.ts";

const ALICE = "did:plc:alicealicealicealicealic";

let pds: PdsStandIn;
let plc: PlcServer;
before(async () => {
  pds = await PdsStandIn.start();
  plc = await startPlcServer();
});
after(async () => {
  await pds.stop();
  await plc.stop();
});

async function rejectsWith(p: Promise<unknown>, reason: string, message: RegExp): Promise<XrpcClientError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof XrpcClientError, String(err));
    assert.equal(err.reason, reason);
    assert.match(err.message, message);
    return err;
  }
  assert.fail("expected a rejection");
}

describe("XrpcClient", () => {
  // A deadline no answer on a loaded machine comes near; the hang test has its own short one.
  const xrpc = new XrpcClient({ timeoutMs: 10_000, maxResponseBytes: 64 * 1024 });

  it("reads a record and pages through listRecords", async () => {
    pds.putRecord(ALICE, "sh.tangled.repo", "3lrepo", { name: "core" });
    for (let i = 0; i < 7; i++) pds.putRecord(ALICE, "sh.tangled.repo.collaborator", `3lc${i}`, { i });
    const got = (await xrpc.query(pds.url, "com.atproto.repo.getRecord", {
      repo: ALICE,
      collection: "sh.tangled.repo",
      rkey: "3lrepo",
    })) as { uri: string; value: unknown };
    assert.equal(got.uri, `at://${ALICE}/sh.tangled.repo/3lrepo`);
    assert.deepEqual(got.value, { name: "core" });

    const seen: unknown[] = [];
    let cursor: string | undefined;
    do {
      const page = (await xrpc.query(pds.url, "com.atproto.repo.listRecords", {
        repo: ALICE,
        collection: "sh.tangled.repo.collaborator",
        limit: 3,
        ...(cursor ? { cursor } : {}),
      })) as { records: { value: { i: number } }[]; cursor?: string };
      seen.push(...page.records.map((r) => r.value.i));
      cursor = page.cursor;
    } while (cursor);
    assert.deepEqual(seen, [6, 5, 4, 3, 2, 1, 0]);
  });

  it("turns an XRPC error body into a named failure", async () => {
    const err = await rejectsWith(
      xrpc.query(pds.url, "com.atproto.repo.getRecord", { repo: ALICE, collection: "x.y.z", rkey: "nope" }),
      "http-status",
      /answered 400 RecordNotFound/,
    );
    assert.equal(err.status, 400);
    assert.equal(err.xrpcError, "RecordNotFound");
  });

  it("gives up after the deadline when the PDS hangs", async () => {
    pds.behaviour = { hang: true };
    try {
      const impatient = new XrpcClient({ timeoutMs: 300, maxResponseBytes: 64 * 1024 });
      const t0 = Date.now();
      await rejectsWith(
        impatient.query(pds.url, "com.atproto.repo.getRecord", {}),
        "timeout",
        /longer than 300 ms/,
      );
      assert.ok(Date.now() - t0 < 5000, "it gave up instead of waiting for the hung PDS");
    } finally {
      pds.behaviour = {};
    }
  });

  it("refuses a response over the size cap", async () => {
    pds.behaviour = { oversizeBytes: 200 * 1024 };
    try {
      await rejectsWith(xrpc.query(pds.url, "com.atproto.repo.getRecord", {}), "too-large", /65536-byte cap/);
    } finally {
      pds.behaviour = {};
    }
  });

  it("reports an unreachable PDS and a non-http endpoint", async () => {
    const port = await freePort();
    await rejectsWith(
      xrpc.query(`http://127.0.0.1:${port}`, "com.atproto.repo.getRecord", {}),
      "network",
      /failed/,
    );
    await rejectsWith(
      xrpc.query("ftp://example.com", "com.atproto.repo.getRecord", {}),
      "bad-url",
      /not http/,
    );
  });

  it("reports a 500 without a JSON body", async () => {
    pds.behaviour = { status: 502 };
    try {
      await rejectsWith(xrpc.query(pds.url, "com.atproto.repo.getRecord", {}), "http-status", /answered 502/);
    } finally {
      pds.behaviour = {};
    }
  });
});

describe("IdentityResolver.lookup", () => {
  it("finds the PDS endpoint and handle in a PLC document; unknown DIDs and PDS-less documents fail", async () => {
    pds.registerIdentity(plc, ALICE, "alice.test");
    const lookup = new IdentityResolver({ plcUrl: plc.url, timeoutMs: 10_000 });
    assert.deepEqual(await lookup.lookup(ALICE), { did: ALICE, handle: "alice.test", pds: pds.url });
    await assert.rejects(
      lookup.lookup("did:plc:nobodynobodynobodynobody"),
      (e) => e instanceof IdentityError && /not found/.test(e.message),
    );
    const bare = "did:plc:barebarebarebarebarebare";
    plc.setDocument(bare, {
      "@context": ["https://www.w3.org/ns/did/v1"],
      id: bare,
      alsoKnownAs: [],
      service: [],
    });
    await assert.rejects(lookup.lookup(bare), /names no #atproto_pds endpoint/);
  });
});
