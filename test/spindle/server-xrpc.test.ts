/**
 * The XRPC methods of §3.1 against a real server: real signed service JWTs (keys from
 * @atproto/crypto, DID documents on a loopback PLC), a loopback PDS for repo records, RBAC
 * grants in SQLite. Every error answer is checked against the §3.2 table, byte for byte.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Keypair, P256Keypair, Secp256k1Keypair } from "@atproto/crypto";
import { Repos } from "../../src/spindle/db/index.ts";
import { Rbac } from "../../src/spindle/rbac/index.ts";
import { workflowId } from "../../src/workflow/resolve.ts";
import { didDocument, serviceClaims, signJwt } from "../support/atproto.ts";
import { type PlcServer, startPlcServer } from "../support/plc-server.ts";
import {
  ALICE,
  addRepo,
  type Booted,
  bootServer,
  Collector,
  HOSTNAME,
  KNOT,
  OWNER,
  pipelineRecord,
  statuses,
  workflow,
} from "./server-kit.ts";

const BOB = "did:plc:bobbobbobbobbob";
const CAROL = "did:plc:carolcarolcarol";
const AUD = `did:web:${HOSTNAME}`;
const REPO_RKEY = "3repo0000000a";
const REPO_URI = `at://${ALICE}/sh.tangled.repo/${REPO_RKEY}`;
const PDS_ONLY_RKEY = "3repo0000000b";
const PDS_ONLY_URI = `at://${ALICE}/sh.tangled.repo/${PDS_ONLY_RKEY}`;
const SECRET_VALUE = "hunter2-very-secret-value";

interface Pds {
  url: string;
  putRecord(did: string, collection: string, rkey: string, value: Record<string, unknown>): void;
  stop(): Promise<void>;
}

/** A PDS that serves `com.atproto.repo.getRecord` for sh.tangled.repo records. */
async function startPds(records: Map<string, Record<string, unknown>>): Promise<Pds> {
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://pds");
    const key = `${u.searchParams.get("repo")}/${u.searchParams.get("collection")}/${u.searchParams.get("rkey")}`;
    const value = u.pathname === "/xrpc/com.atproto.repo.getRecord" ? records.get(key) : undefined;
    if (!value) {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "RecordNotFound", message: "Could not locate record" }));
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ uri: `at://${key}`, cid: "bafyfake", value }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    putRecord: (did, collection, rkey, value) => records.set(`${did}/${collection}/${rkey}`, value),
    stop: () => new Promise((r) => server.close(() => r())),
  };
}

describe("spindle server: XRPC", () => {
  let b: Booted;
  let plc: PlcServer;
  let pds: Pds;
  const keys = new Map<string, Keypair>();

  before(async () => {
    plc = await startPlcServer();
    pds = await startPds(
      new Map([
        [
          `${ALICE}/sh.tangled.repo/${PDS_ONLY_RKEY}`,
          { $type: "sh.tangled.repo", name: "other", knot: KNOT },
        ],
      ]),
    );
    for (const [did, key] of [
      [ALICE, await Secp256k1Keypair.create()],
      [BOB, await P256Keypair.create()],
      [CAROL, await P256Keypair.create()],
    ] as const) {
      keys.set(did, key);
      const doc = didDocument(did, key);
      doc.service = [{ id: "#atproto_pds", type: "AtprotoPersonalDataServer", serviceEndpoint: pds.url }];
      plc.setDocument(did, doc);
    }
    b = await bootServer({ env: { SPINDLE_SERVER_PLC_URL: plc.url } });
    addRepo(b.server, ALICE, "loom", REPO_RKEY);
    const rbac = new Rbac(b.server.db);
    rbac.grantCollaborator(BOB, { ownerDid: ALICE, name: "loom" });
    rbac.grantRepoOwner(ALICE, { ownerDid: ALICE, name: "other" });
  });
  after(async () => {
    await b.stop();
    await plc.stop();
    await pds.stop();
  });

  const token = async (did: string, lxm: string, claims: Record<string, unknown> = {}) =>
    signJwt(keys.get(did) as Keypair, { ...serviceClaims(did, AUD, lxm), ...claims });

  async function call(
    method: string,
    opts: {
      as?: string;
      body?: unknown;
      query?: string;
      rawBody?: string;
      auth?: string;
      httpMethod?: string;
    } = {},
  ): Promise<{ status: number; text: string; type: string | null }> {
    const headers: Record<string, string> = {};
    if (opts.auth !== undefined) headers.authorization = opts.auth;
    else if (opts.as) headers.authorization = `Bearer ${await token(opts.as, method)}`;
    const isGet = opts.body === undefined && opts.rawBody === undefined;
    const init: RequestInit = { method: opts.httpMethod ?? (isGet ? "GET" : "POST"), headers };
    if (!isGet) {
      headers["content-type"] = "application/json";
      init.body = opts.rawBody ?? JSON.stringify(opts.body);
    }
    const res = await fetch(`${b.url}/xrpc/${method}${opts.query ? `?${opts.query}` : ""}`, init);
    return { status: res.status, text: await res.text(), type: res.headers.get("content-type") };
  }

  const err = (status: number, error: string, message: string) => ({
    status,
    text: JSON.stringify({ error, message }),
    type: "application/json",
  });
  const ok = { status: 200, text: "", type: null };
  const denied = (did: string, status: number) =>
    err(status, "AccessControl", `DID does not have sufficent access permissions for this operation: ${did}`);

  it("sh.tangled.owner answers the owner without auth", async () => {
    assert.deepEqual(await call("sh.tangled.owner"), {
      status: 200,
      text: `{"owner":"${OWNER}"}`,
      type: "application/json",
    });
  });

  it("sh.tangled.owner without an owner on record is 500 OwnerNotFound", async () => {
    b.server.db.exec("DELETE FROM rbac_server_roles WHERE role = 'server:owner'");
    try {
      assert.deepEqual(
        await call("sh.tangled.owner"),
        err(500, "OwnerNotFound", "owner not set for this service"),
      );
    } finally {
      new Rbac(b.server.db).setOwner(OWNER);
    }
  });

  it("secrets: add, list, duplicate, remove, remove again, empty list (owner)", async () => {
    const add = "sh.tangled.repo.addSecret";
    assert.deepEqual(
      await call(add, { as: ALICE, body: { repo: REPO_URI, key: "DEPLOY_TOKEN", value: SECRET_VALUE } }),
      ok,
    );
    const list = await call("sh.tangled.repo.listSecrets", {
      as: ALICE,
      query: `repo=${encodeURIComponent(REPO_URI)}`,
    });
    assert.equal(list.status, 200);
    const body = JSON.parse(list.text);
    assert.equal(body.secrets.length, 1);
    assert.deepEqual(Object.keys(body.secrets[0]), ["createdAt", "createdBy", "key", "repo"]);
    assert.equal(body.secrets[0].key, "DEPLOY_TOKEN");
    assert.equal(body.secrets[0].repo, REPO_URI);
    assert.equal(body.secrets[0].createdBy, ALICE);
    assert.match(body.secrets[0].createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok(!list.text.includes(SECRET_VALUE));
    assert.deepEqual(
      await call(add, { as: ALICE, body: { repo: REPO_URI, key: "DEPLOY_TOKEN", value: "other" } }),
      err(500, "Generic", "key already present"),
    );
    assert.deepEqual(
      await call(add, { as: ALICE, body: { repo: REPO_URI, key: "1-bad key", value: "v" } }),
      err(400, "Generic", "key is not a valid identifier"),
    );
    const rm = "sh.tangled.repo.removeSecret";
    assert.deepEqual(await call(rm, { as: ALICE, body: { repo: REPO_URI, key: "DEPLOY_TOKEN" } }), ok);
    assert.deepEqual(
      await call(rm, { as: ALICE, body: { repo: REPO_URI, key: "DEPLOY_TOKEN" } }),
      err(500, "Generic", "key not found"),
    );
    assert.deepEqual(
      await call("sh.tangled.repo.listSecrets", { as: ALICE, query: `repo=${encodeURIComponent(REPO_URI)}` }),
      { status: 200, text: '{"secrets":null}', type: "application/json" },
    );
  });

  it("addSecret refuses a value with a NUL byte, under 4 characters or only whitespace, without echoing it", async () => {
    const add = "sh.tangled.repo.addSecret";
    const short =
      "value must be at least 4 characters long, not counting trailing line breaks (shorter values cannot be masked safely in logs)";
    const blank =
      "value must not be only whitespace (it would be masked wherever such whitespace is printed)";
    for (const [value, message] of [
      ["hunter\u0000two", "value must not contain a NUL byte"],
      ["\u0000\u0000\u0000\u0000", "value must not contain a NUL byte"],
      ["x", short],
      ["Q~z", short],
      ["Q~z\n\n", short],
      ["é😀", short],
      ["    ", blank],
      [" \t\n \n", blank],
    ] as const) {
      const res = await call(add, { as: ALICE, body: { repo: REPO_URI, key: "REFUSED", value } });
      assert.deepEqual(res, err(400, "Generic", message), JSON.stringify(value));
    }
    // The key is checked first, as before; four characters (code points) are enough.
    assert.deepEqual(
      await call(add, { as: ALICE, body: { repo: REPO_URI, key: "1-bad key", value: "x" } }),
      err(400, "Generic", "key is not a valid identifier"),
    );
    assert.deepEqual(
      await call(add, { as: ALICE, body: { repo: REPO_URI, key: "FOUR", value: "é😀ab" } }),
      ok,
    );
    const list = await call("sh.tangled.repo.listSecrets", {
      as: ALICE,
      query: `repo=${encodeURIComponent(REPO_URI)}`,
    });
    assert.deepEqual(
      JSON.parse(list.text).secrets.map((s: { key: string }) => s.key),
      ["FOUR"],
    );
    assert.deepEqual(
      await call("sh.tangled.repo.removeSecret", { as: ALICE, body: { repo: REPO_URI, key: "FOUR" } }),
      ok,
    );
  });

  it("RBAC: a collaborator manages secrets; a stranger gets 401 AccessControl", async () => {
    const add = "sh.tangled.repo.addSecret";
    assert.deepEqual(
      await call(add, { as: BOB, body: { repo: REPO_URI, key: "BOB_KEY", value: "b-value" } }),
      ok,
    );
    assert.deepEqual(
      await call(add, { as: CAROL, body: { repo: REPO_URI, key: "C", value: "c" } }),
      denied(CAROL, 401),
    );
    assert.deepEqual(
      await call("sh.tangled.repo.listSecrets", { as: CAROL, query: `repo=${encodeURIComponent(REPO_URI)}` }),
      denied(CAROL, 401),
    );
    assert.deepEqual(
      await call("sh.tangled.repo.removeSecret", { as: CAROL, body: { repo: REPO_URI, key: "BOB_KEY" } }),
      denied(CAROL, 401),
    );
  });

  it("a repo not in the repos table is named by its record on the owner's PDS", async () => {
    const add = "sh.tangled.repo.addSecret";
    assert.deepEqual(
      await call(add, { as: ALICE, body: { repo: PDS_ONLY_URI, key: "K", value: "v-value" } }),
      ok,
    );
    const missing = `at://${ALICE}/sh.tangled.repo/3repo0000000z`;
    const res = await call(add, { as: ALICE, body: { repo: missing, key: "K", value: "v" } });
    assert.equal(res.status, 400);
    assert.equal(JSON.parse(res.text).error, "Generic");
  });

  it("auth failures are 403 Auth and never echo the token", async () => {
    const add = "sh.tangled.repo.addSecret";
    const body = { repo: REPO_URI, key: "K", value: "v" };
    const cases: [string, string | undefined][] = [
      ["no header", undefined],
      ["garbage", "Bearer not.a.jwt"],
      ["wrong aud", `Bearer ${await token(ALICE, add, { aud: "did:web:elsewhere.test" })}`],
      ["expired", `Bearer ${await token(ALICE, add, { exp: Math.floor(Date.now() / 1000) - 120 })}`],
      ["wrong lxm", `Bearer ${await token(ALICE, "sh.tangled.repo.removeSecret")}`],
      [
        "unknown issuer",
        `Bearer ${await signJwt(await P256Keypair.create(), serviceClaims("did:plc:nobodynobody", AUD, add))}`,
      ],
    ];
    for (const [what, auth] of cases) {
      const res = await fetch(`${b.url}/xrpc/${add}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(auth ? { authorization: auth } : {}) },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      assert.equal(res.status, 403, what);
      assert.equal(res.headers.get("content-type"), "application/json");
      const parsed = JSON.parse(text);
      assert.deepEqual(Object.keys(parsed), ["error", "message"]);
      assert.equal(parsed.error, "Auth", what);
      assert.match(parsed.message, /^signature verification failed: /);
      if (auth) assert.ok(!text.includes(auth.slice(7).split(".")[2] ?? "§"), `${what}: token echoed`);
    }
    // A replayed token (same jti) is refused the second time.
    const t = `Bearer ${await token(ALICE, "sh.tangled.repo.listSecrets")}`;
    const q = `repo=${encodeURIComponent(REPO_URI)}`;
    assert.equal((await call("sh.tangled.repo.listSecrets", { auth: t, query: q })).status, 200);
    assert.equal((await call("sh.tangled.repo.listSecrets", { auth: t, query: q })).status, 403);
  });

  it("input errors: body not JSON, empty repo, repo not an at-uri", async () => {
    const add = "sh.tangled.repo.addSecret";
    const notJson = await call(add, { as: ALICE, rawBody: "{nope" });
    assert.equal(notJson.status, 400);
    assert.equal(JSON.parse(notJson.text).error, "Generic");
    const empty = await call(add, { as: ALICE, body: { key: "K", value: "v" } });
    assert.equal(empty.status, 400);
    assert.equal(JSON.parse(empty.text).error, "Generic");
    assert.deepEqual(
      await call(add, { as: ALICE, body: { repo: "https://example.com", key: "K", value: "v" } }),
      err(400, "InvalidRepo", "supplied at-uri is not a repo: https://example.com"),
    );
    assert.deepEqual(
      await call("sh.tangled.repo.listSecrets", {
        as: ALICE,
        query: "repo=at://did:plc:x/app.bsky.feed.post/1",
      }),
      err(400, "InvalidRepo", "supplied at-uri is not a repo: at://did:plc:x/app.bsky.feed.post/1"),
    );
  });

  it("a secret added through a PDS-resolved repo reaches runs of a repo known by DID", async () => {
    const rkey = "3repo0000000d";
    new Repos(b.server.db).upsert({
      knot: KNOT,
      owner: ALICE,
      name: "withdid",
      repoDid: "did:plc:repodidrepodid",
    });
    new Rbac(b.server.db).grantRepoOwner(ALICE, {
      ownerDid: ALICE,
      name: "withdid",
      repoDid: "did:plc:repodidrepodid",
    });
    pds.putRecord(ALICE, "sh.tangled.repo", rkey, { name: "withdid", knot: KNOT });
    const uri = `at://${ALICE}/sh.tangled.repo/${rkey}`;
    assert.deepEqual(
      await call("sh.tangled.repo.addSecret", {
        as: ALICE,
        body: { repo: uri, key: "DID_SCOPED", value: "scoped-value-123" },
      }),
      ok,
    );
    const events = new Collector(`${b.wsUrl}/events`);
    await events.opened;
    const prkey = "3lxyz2didscp2";
    await b.server.pipelines.acceptPipeline(
      KNOT,
      prkey,
      pipelineRecord([workflow("d.yml", [{ name: "s", command: 'test "$DID_SCOPED" = scoped-value-123' }])], {
        did: ALICE,
        repo: "withdid",
      }),
    );
    await events.until((f) =>
      statuses(f, "d.yml").some((e) => ["success", "failed"].includes(String(e.status))),
    );
    assert.equal(statuses(events.frames, "d.yml").at(-1)?.status, "success");
    events.close();
  });

  it("a body over 64 KiB is 400 Generic", async () => {
    const res = await call("sh.tangled.repo.addSecret", {
      as: ALICE,
      body: { repo: REPO_URI, key: "BIG", value: "v".repeat(100 * 1024) },
    });
    assert.equal(res.status, 400);
    assert.equal(JSON.parse(res.text).error, "Generic");
    assert.ok(!res.text.includes("vvvv"));
  });

  it("wrong HTTP method → 405, unknown method → 404", async () => {
    assert.equal((await call("sh.tangled.owner", { httpMethod: "POST", body: {} })).status, 405);
    assert.equal((await call("sh.tangled.repo.addSecret", { httpMethod: "GET" })).status, 405);
    assert.equal((await call("com.example.nothing")).status, 404);
  });

  it("cancelPipeline: owner cancels a running workflow; collaborator and other repos are refused", async () => {
    const events = new Collector(`${b.wsUrl}/events`);
    await events.opened;
    const rkey = "3lxyz2cancel2";
    await b.server.pipelines.acceptPipeline(
      KNOT,
      rkey,
      pipelineRecord([workflow("slow.yml", [{ name: "sleep", command: "echo started; sleep 60" }])]),
    );
    await events.until((f) => statuses(f, "slow.yml").some((e) => e.status === "running"));
    const cancel = "sh.tangled.pipeline.cancelPipeline";
    const pipeline = `at://did:web:${KNOT}/sh.tangled.pipeline/${rkey}`;
    assert.deepEqual(
      await call(cancel, { as: BOB, body: { repo: REPO_URI, pipeline, workflow: "slow.yml" } }),
      denied(BOB, 400),
    );
    // ALICE owns "other" but the pipeline belongs to "loom".
    assert.deepEqual(
      await call(cancel, { as: ALICE, body: { repo: PDS_ONLY_URI, pipeline, workflow: "slow.yml" } }),
      denied(ALICE, 400),
    );
    const unknown = await call(cancel, {
      as: ALICE,
      body: { repo: REPO_URI, pipeline, workflow: "nope.yml" },
    });
    assert.equal(unknown.status, 400);
    assert.equal(JSON.parse(unknown.text).error, "Generic");
    assert.deepEqual(
      await call(cancel, { as: ALICE, body: { repo: REPO_URI, pipeline, workflow: "slow.yml" } }),
      ok,
    );
    await events.until((f) => statuses(f, "slow.yml").some((e) => e.status === "cancelled"), 20_000);
    const last = events.frames.filter((f) => JSON.parse(f).event.workflow === "slow.yml").at(-1) as string;
    assert.ok(
      last.includes(
        `"error":"User canceled the workflow","exitCode":-1,"pipeline":"${pipeline}","status":"cancelled"`,
      ),
    );
    events.close();
  });

  it("secret values reach the steps masked and appear nowhere else", async () => {
    const add = "sh.tangled.repo.addSecret";
    assert.deepEqual(
      await call(add, { as: ALICE, body: { repo: REPO_URI, key: "API_TOKEN", value: SECRET_VALUE } }),
      ok,
    );
    const events = new Collector(`${b.wsUrl}/events`);
    await events.opened;
    const rkey = "3lxyz2secret2";
    await b.server.pipelines.acceptPipeline(
      KNOT,
      rkey,
      pipelineRecord([
        workflow("s.yml", [{ name: "show", command: 'test -n "$API_TOKEN" && echo "token=$API_TOKEN"' }]),
      ]),
    );
    await events.until((f) => statuses(f, "s.yml").some((e) => e.status === "success"));
    const log = readFileSync(join(b.dir, "logs", `${workflowId(KNOT, rkey, "s.yml")}.log`), "utf8");
    assert.match(log, /token=\*\*\*/);
    assert.ok(!log.includes(SECRET_VALUE));
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    assert.ok(!metrics.includes(SECRET_VALUE));
    assert.ok(!events.frames.join("").includes(SECRET_VALUE));
    events.close();
  });
});
