/**
 * Loom against real AT Protocol peers (issue 11): the reference PDS and PLC directory
 * (@atproto/dev-env, on Node 22) and a real Jetstream reading the PDS's firehose, started by
 * test/harness/atproto-peers.ts. Accounts write sh.tangled.spindle.member, sh.tangled.repo and
 * sh.tangled.repo.collaborator records through the PDS; a real `loom serve` server (in-process)
 * takes them through Jetstream; tokens minted by the PDS (getServiceAuth with aud and lxm) drive
 * the XRPC methods, refusals included. Only the knot is a stand-in (test/support/knot-git-server:
 * real git over smart HTTP; the real knot cannot run here).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { decodeFirst } from "cborg";
import { WebSocket } from "ws";
import { Rbac } from "../../src/spindle/rbac/index.ts";
import { type AtprotoPeers, getAtprotoPeers } from "../harness/atproto-peers.ts";
import { type Booted, bootServer, waitFor } from "../spindle/server-kit.ts";
import { KnotGitServer } from "../support/knot-git-server.ts";
import { createAccount, type PdsAccount } from "../support/pds-client.ts";

const got = await getAtprotoPeers();
const skip = "skip" in got ? got.skip : false;
const peers = got as AtprotoPeers;

// A hostname with a port: the audience a PDS mints for it is did:web:localhost%3A26555.
const HOSTNAME = "localhost:26555";
const AUD = "did:web:localhost%3A26555";
const REPO_DID = "did:plc:loomrealpeersrepo000000";
const NOW = () => new Date().toISOString();

const MANUAL = `when:
  - event: ["manual"]
engine: kubernetes
image: alpine:3
clone:
  skip: true
steps:
  - name: wait
    command: echo started; sleep 30
`;

describe("Loom with a real PDS, PLC and Jetstream", { skip }, () => {
  let owner: PdsAccount;
  let alice: PdsAccount;
  let bob: PdsAccount;
  let mallory: PdsAccount;
  let knot: KnotGitServer;
  let dir: string;
  let b: Booted;
  let repoUri: string;
  let sha: string;

  const boot = async () =>
    bootServer({
      dir,
      env: {
        SPINDLE_SERVER_HOSTNAME: HOSTNAME,
        SPINDLE_SERVER_OWNER: owner.did,
        SPINDLE_SERVER_PLC_URL: peers.plcUrl,
        SPINDLE_SERVER_JETSTREAM_ENDPOINT: peers.jetstreamUrl,
      },
      server: {
        intake: {
          jetstream: { backoff: { baseMs: 50, capMs: 500, minMs: 20 } },
          knots: { backoff: { baseMs: 50, capMs: 500, minMs: 20 } },
        },
      },
    });
  const rbac = () => new Rbac(b.server.db);
  const ref = () => ({ ownerDid: alice.did, name: "core", repoDid: REPO_DID });
  const why = () => `\n${peers.logs(20)}`;

  const call = async (
    method: string,
    opts: { token?: string; body?: unknown; query?: string } = {},
  ): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${b.url}/xrpc/${method}${opts.query ? `?${opts.query}` : ""}`, {
      method: opts.body === undefined ? "GET" : "POST",
      headers: {
        ...(opts.token && { authorization: `Bearer ${opts.token}` }),
        ...(opts.body !== undefined && { "content-type": "application/json" }),
      },
      ...(opts.body !== undefined && { body: JSON.stringify(opts.body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>) };
  };
  /** A fresh token from the caller's PDS for `lxm`. */
  const token = (who: PdsAccount, lxm: string, aud = AUD) => who.serviceAuth({ aud, lxm });

  before(async () => {
    process.stderr.write(
      `[peers] dev-env ready in ${peers.timings.devEnv} ms, jetstream in ${peers.timings.jetstream} ms\n`,
    );
    owner = await createAccount(peers.pdsUrl, "owner");
    alice = await createAccount(peers.pdsUrl, "alice");
    bob = await createAccount(peers.pdsUrl, "bob");
    mallory = await createAccount(peers.pdsUrl, "mallory");
    knot = await KnotGitServer.start();
    [sha = ""] = await knot.createRepo(REPO_DID, { ".tangled/workflows/manual.yml": MANUAL });
    dir = mkdtempSync(join(tmpdir(), "loom-peers-e2e-"));
    b = await boot();
  });
  after(async () => {
    await b?.stop();
    await knot?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("takes member, repo and collaborator records written through the PDS", async () => {
    // Loom chose its Jetstream cursor ("now") at start; Jetstream replays from it, so a record
    // written before the connection opens still arrives.
    await owner.createRecord("sh.tangled.spindle.member", {
      subject: alice.did,
      instance: HOSTNAME,
      createdAt: NOW(),
    });
    await waitFor(() => rbac().isMember(alice.did), 30_000, `alice a member${why()}`);
    repoUri = (
      await alice.createRecord("sh.tangled.repo", {
        name: "core",
        knot: knot.host,
        spindle: HOSTNAME,
        repoDid: REPO_DID,
        createdAt: NOW(),
      })
    ).uri;
    await waitFor(() => rbac().canPush(alice.did, ref()), 30_000, `alice's repo registered${why()}`);
    await alice.createRecord("sh.tangled.repo.collaborator", {
      subject: bob.did,
      repo: repoUri,
      createdAt: NOW(),
    });
    await waitFor(() => rbac().canPush(bob.did, ref()), 30_000, `bob a collaborator${why()}`);
    assert.equal(rbac().canPush(mallory.did, ref()), false);
  });

  it("PDS-minted tokens drive the secrets methods; refusals for wrong aud, wrong lxm, expired, replayed", async () => {
    const add = "sh.tangled.repo.addSecret";
    const ok = await call(add, {
      token: await token(alice, add),
      body: { repo: repoUri, key: "DEPLOY_KEY", value: "s3cr3t-value" },
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const list = await call("sh.tangled.repo.listSecrets", {
      token: await token(alice, "sh.tangled.repo.listSecrets"),
      query: `repo=${encodeURIComponent(repoUri)}`,
    });
    assert.equal(list.status, 200, JSON.stringify(list.body));
    const secrets = list.body.secrets as Array<Record<string, unknown>>;
    assert.deepEqual(
      secrets.map((s) => [s.key, s.createdBy]),
      [["DEPLOY_KEY", alice.did]],
    );
    assert.ok(!JSON.stringify(list.body).includes("s3cr3t-value"), "values never leave");

    // Wrong aud: another spindle's audience. The error names the form a PDS mints.
    const wrongAud = await call(add, {
      token: await token(alice, add, "did:web:other.example"),
      body: { repo: repoUri, key: "K", value: "v" },
    });
    assert.equal(wrongAud.status, 403);
    assert.match(String(wrongAud.body.message), /wrong aud \(expected did:web:localhost%3A26555\)/);
    // ...and that form is exactly what the PDS gives for it (the unencoded one it refuses).
    await assert.rejects(
      alice.serviceAuth({ aud: "did:web:localhost:26555", lxm: add }),
      /aud must be a valid/,
    );

    // Wrong lxm: a token for listSecrets used on addSecret.
    const wrongLxm = await call(add, {
      token: await token(alice, "sh.tangled.repo.listSecrets"),
      body: { repo: repoUri, key: "K", value: "v" },
    });
    assert.equal(wrongLxm.status, 403, JSON.stringify(wrongLxm.body));
    assert.match(String(wrongLxm.body.message), /lxm/);

    // Replayed: the same token twice.
    const once = await token(alice, "sh.tangled.repo.removeSecret");
    const first = await call("sh.tangled.repo.removeSecret", {
      token: once,
      body: { repo: repoUri, key: "DEPLOY_KEY" },
    });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const replay = await call("sh.tangled.repo.removeSecret", {
      token: once,
      body: { repo: repoUri, key: "DEPLOY_KEY" },
    });
    assert.equal(replay.status, 403, JSON.stringify(replay.body));
    assert.match(String(replay.body.message), /replay|already used|jti/i);

    // Expired: the PDS mints a token that ends in 1 s; past Loom's 5 s leeway it is refused.
    const short = await alice.serviceAuth({ aud: AUD, lxm: add, exp: Math.floor(Date.now() / 1000) + 1 });
    await sleep(7_000);
    const expired = await call(add, { token: short, body: { repo: repoUri, key: "K", value: "v" } });
    assert.equal(expired.status, 403, JSON.stringify(expired.body));
    assert.match(String(expired.body.message), /expired|exp/);

    // A member who is not a collaborator may not manage this repo's secrets.
    const denied = await call(add, {
      token: await token(mallory, add),
      body: { repo: repoUri, key: "K", value: "v" },
    });
    assert.notEqual(denied.status, 200);
  });

  it("ci.* methods: trigger, read, stream and cancel with PDS-minted tokens", async () => {
    const trig = "sh.tangled.ci.triggerPipeline";
    const denied = await call(trig, {
      token: await token(mallory, trig),
      body: { repo: REPO_DID, trigger: { $type: "sh.tangled.ci.trigger#manual", sha } },
    });
    assert.equal(denied.status, 400);
    assert.equal(denied.body.error, "AccessControl");
    // bob, a collaborator through a record on alice's PDS, may push-trigger.
    const r = await call(trig, {
      token: await token(bob, trig),
      body: {
        repo: REPO_DID,
        trigger: { $type: "sh.tangled.ci.trigger#manual", sha },
        workflows: ["manual.yml"],
      },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const id = String(r.body.pipeline).split("/").at(-1) as string;
    let p: Record<string, unknown> = {};
    await waitFor(
      () => (p.workflows as Array<{ status: string }> | undefined)?.[0]?.status === "running",
      30_000,
      "running",
      async () => {
        p = (await call("sh.tangled.ci.getPipeline", { query: `pipeline=${id}` })).body;
      },
    );
    const q = await call("sh.tangled.ci.queryPipelines", { query: `repo=${REPO_DID}` });
    assert.equal(q.status, 200);
    assert.deepEqual(
      (q.body.pipelines as Array<{ id: string }>).map((x) => x.id),
      [id],
    );
    const d = await call("sh.tangled.ci.describeWorkflowDefinition", {
      query: `repo=${REPO_DID}&sha=${sha}`,
    });
    assert.equal(d.status, 200, JSON.stringify(d.body));
    const owner1 = await call("sh.tangled.owner");
    assert.deepEqual(owner1.body, { owner: owner.did });

    // A live log stream: the step's output as CBOR frames; it ends (1000) when the run is cancelled.
    const ws = new WebSocket(
      `${b.wsUrl}/xrpc/sh.tangled.ci.subscribePipelineLogs?pipeline=${id}&workflows=manual.yml`,
    );
    const bodies: Array<Record<string, unknown>> = [];
    ws.on("message", (data) => {
      const [, rest] = decodeFirst(new Uint8Array(data as Buffer));
      bodies.push(decodeFirst(rest)[0] as Record<string, unknown>);
    });
    const closed = new Promise<number>((res, rej) => {
      ws.once("close", res);
      ws.once("error", rej);
    });
    await waitFor(
      () => bodies.some((x) => x.stream === "stdout" && x.content === "started\n"),
      30_000,
      'the log frame "started"',
    );
    const cancel = "sh.tangled.ci.cancelPipeline";
    const wrongLxm = await call(cancel, {
      token: await token(alice, trig),
      body: { repo: REPO_DID, pipeline: id },
    });
    assert.equal(wrongLxm.status, 403);
    const c = await call(cancel, {
      token: await token(alice, cancel),
      body: { repo: REPO_DID, pipeline: id },
    });
    assert.equal(c.status, 200, JSON.stringify(c.body));
    await waitFor(
      () => (p.workflows as Array<{ status: string }> | undefined)?.[0]?.status === "cancelled",
      30_000,
      "cancelled",
      async () => {
        p = (await call("sh.tangled.ci.getPipeline", { query: `pipeline=${id}` })).body;
      },
    );
    assert.equal(await closed, 1000);
    // The Gen1 cancel method: authenticated by the PDS token, then refused for an unknown pipeline.
    const gen1 = "sh.tangled.pipeline.cancelPipeline";
    const g = await call(gen1, {
      token: await token(alice, gen1),
      body: {
        repo: repoUri,
        pipeline: `at://did:web:${knot.host}/sh.tangled.pipeline/3zzzzzzzzzzzz`,
        workflow: "manual.yml",
      },
    });
    assert.equal(g.status, 400, JSON.stringify(g.body));
    assert.match(String(g.body.message), /no such workflow/);
  });

  it("a member record deleted on the PDS is removed in Loom", async () => {
    await owner.createRecord(
      "sh.tangled.spindle.member",
      { subject: mallory.did, instance: HOSTNAME, createdAt: NOW() },
      "3mmallory0000",
    );
    await waitFor(() => rbac().isMember(mallory.did), 30_000, `mallory a member${why()}`);
    await owner.deleteRecord("sh.tangled.spindle.member", "3mmallory0000");
    await waitFor(() => !rbac().isMember(mallory.did), 30_000, `mallory removed${why()}`);
  });

  it("catches up after a Jetstream restart", async () => {
    await peers.stopJetstream();
    assert.equal(peers.jetstreamRunning, false);
    // Written while Jetstream is down: it reads them from the PDS firehose when it is back.
    const carol = await createAccount(peers.pdsUrl, "carol");
    await owner.createRecord("sh.tangled.spindle.member", {
      subject: carol.did,
      instance: HOSTNAME,
      createdAt: NOW(),
    });
    await peers.startJetstream();
    await waitFor(
      () => rbac().isMember(carol.did),
      60_000,
      `carol a member after the Jetstream restart${why()}`,
    );
  });

  it("catches up after its own restart", async () => {
    await b.stop();
    const dave = await createAccount(peers.pdsUrl, "dave");
    await owner.createRecord("sh.tangled.spindle.member", {
      subject: dave.did,
      instance: HOSTNAME,
      createdAt: NOW(),
    });
    // Let Jetstream store the event before Loom comes back with its saved cursor.
    await sleep(1_000);
    b = await boot();
    await waitFor(() => rbac().isMember(dave.did), 60_000, `dave a member after Loom's restart${why()}`);
  });
});
