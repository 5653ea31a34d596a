/**
 * Generation 2 end to end against a real server: a Gen2 knot stand-in serving the repo over real
 * git smart HTTP, whose `/events` carries `created` values above 2^53; the server's real knot
 * consumer; the local engine running the compiled workflows; the ci.* XRPC read side; the
 * subscribePipelineLogs WebSocket decoded with a standard CBOR decoder (cborg); service JWTs for
 * triggerPipeline/cancelPipeline minted by a real PDS (@atproto/dev-env's getServiceAuth, the
 * accounts' DID documents on its real PLC directory).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { decodeFirst } from "cborg";
import { WebSocket } from "ws";
import { validate } from "../../src/protocol/lexicons.ts";
import { KnotCursors, Repos } from "../../src/spindle/db/index.ts";
import { Rbac } from "../../src/spindle/rbac/index.ts";
import { createSecretsProvider } from "../../src/spindle/secrets/index.ts";
import { type AtprotoPeers, getAtprotoPeers } from "../harness/atproto-peers.ts";
import { FIRST_CREATED, KnotGitServer } from "../support/knot-git-server.ts";
import { createAccount, type PdsAccount } from "../support/pds-client.ts";
import { type Booted, bootServer, Collector, HOSTNAME, waitFor } from "./server-kit.ts";

const got = await getAtprotoPeers();
const skip = "skip" in got ? got.skip : false;
const peers = got as AtprotoPeers;

const REPO = "did:plc:gen2repo0000000000000";
const FORK = "did:plc:gen2fork0000000000000";
/** Accounts on the real PDS (set in before()). */
let ALICE = "";
let MALLORY = "";
const AUD = `did:web:${HOSTNAME}`;
const ZERO = "0".repeat(40);
const SECRET = "s3cr3t-gen2-value";

const CI = `when:
  - event: ["push", "pull_request"]
    branch: ["main"]
engine: kubernetes
image: alpine:3
clone:
  skip: true
steps:
  - name: hello
    command: echo "hello from ci"
  - name: secret
    command: echo "secret=[$MY_SECRET]"
`;
// Only runs when something under src/ changed (gen2 `when[].paths`).
const LINT = `when:
  - event: ["push"]
    branch: ["main"]
    paths: ["src/**"]
engine: kubernetes
image: alpine:3
clone:
  skip: true
steps:
  - name: lint
    command: echo lint
`;
const SLOW = `when:
  - event: ["manual"]
engine: kubernetes
image: alpine:3
clone:
  skip: true
steps:
  - name: sleep
    command: sleep 30
`;

interface Wf {
  name: string;
  status: string;
  startedAt?: string;
  finishedAt?: string;
}
interface CiP {
  id: string;
  commit: string;
  repo: string;
  sourceRepo?: string;
  trigger: { $type: string; sourceRepo?: string };
  workflows: Wf[];
}

interface Frame {
  header: { op: number; t?: string };
  body: Record<string, unknown>;
}

/** All binary messages of a subscribePipelineLogs connection, decoded with cborg, until it closes. */
async function subscribe(wsUrl: string, query: string): Promise<{ frames: Frame[]; code: number }> {
  const ws = new WebSocket(`${wsUrl}/xrpc/sh.tangled.ci.subscribePipelineLogs?${query}`);
  const frames: Frame[] = [];
  ws.on("message", (data, isBinary) => {
    assert.ok(isBinary, "log frames are binary");
    const bytes = new Uint8Array(data as Buffer);
    const [header, rest] = decodeFirst(bytes);
    const [body, tail] = decodeFirst(rest);
    assert.equal(tail.length, 0, "exactly two CBOR values per message");
    frames.push({ header, body });
  });
  const code = await new Promise<number>((res, rej) => {
    ws.once("close", (c) => res(c));
    ws.once("error", rej);
  });
  return { frames, code };
}

describe("spindle gen2: push → refUpdate → run → ci.* reads", { skip }, () => {
  let knot: KnotGitServer;
  let b: Booted;
  const accounts = new Map<string, PdsAccount>();
  let shas: string[] = [];

  const xrpc = async (method: string, query = "") => {
    const res = await fetch(`${b.url}/xrpc/${method}${query ? `?${query}` : ""}`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const post = async (method: string, as: string, body: unknown) => {
    const token = await (accounts.get(as) as PdsAccount).serviceAuth({ aud: AUD, lxm: method });
    const res = await fetch(`${b.url}/xrpc/${method}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>) };
  };
  const pipelinesOf = async (query = "") => {
    const r = await xrpc("sh.tangled.ci.queryPipelines", `repo=${REPO}${query}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as { pipelines: CiP[]; total: number; cursor?: string };
  };
  const waitDone = async (id: string) => {
    let last = {} as CiP;
    await waitFor(
      () =>
        (last.workflows ?? []).length > 0 &&
        last.workflows.every((w: Wf) => !["pending", "running"].includes(w.status)),
      30_000,
      `pipeline ${id} finished`,
      async () => {
        last = (await xrpc("sh.tangled.ci.getPipeline", `pipeline=${id}`)).body as unknown as CiP;
      },
    );
    return last;
  };
  const refUpdate = (oldSha: string, newSha: string, changedFiles: string[]) =>
    knot.publish("sh.tangled.git.refUpdate", {
      $type: "",
      changedFiles,
      committerDid: ALICE,
      meta: { isDefaultRef: true },
      newSha,
      oldSha,
      ownerDid: ALICE,
      ref: "refs/heads/main",
      repo: REPO,
    });

  before(async () => {
    for (const name of ["alice", "mallory"]) {
      const a = await createAccount(peers.pdsUrl, name);
      accounts.set(a.did, a);
      if (name === "alice") ALICE = a.did;
      else MALLORY = a.did;
    }
    knot = await KnotGitServer.start();
    shas = await knot.createRepo(REPO, {
      ".tangled/workflows/ci.yml": CI,
      ".tangled/workflows/lint.yml": LINT,
      ".tangled/workflows/slow.yml": SLOW,
      "README.md": "hi\n",
    });
    // The fork's workflow tries to read the repo's secret.
    await knot.createRepo(FORK, {
      ".tangled/workflows/ci.yml": CI,
      "README.md": "fork\n",
    });
    b = await bootServer({
      env: { SPINDLE_SERVER_PLC_URL: peers.plcUrl },
      server: {
        intake: { knots: { backoff: { baseMs: 50, capMs: 200, minMs: 20 } } },
        builds: { fetchRetryDelaysMs: [] },
      },
    });
    const db = b.server.db;
    // Named too, so Gen1 `sh.tangled.pipeline` events for it are accepted by the Gen1 processor.
    new Repos(db).upsert({
      knot: knot.host,
      owner: ALICE,
      name: "gen2",
      rkey: "3repogen2000a",
      repoDid: REPO,
    });
    new Rbac(db).grantRepoOwner(ALICE, { ownerDid: ALICE, repoDid: REPO });
    const secrets = await createSecretsProvider(b.server.config, db);
    await secrets.add({ repo: REPO, key: "MY_SECRET", value: SECRET, createdBy: ALICE });
    await secrets.stop();
    // Replay the knot's whole retained log (its `created` values start above 2^53).
    new KnotCursors(db).set(knot.host, "0");
    b.server.intake?.knots.addKnot(knot.host);
  });
  after(async () => {
    await b?.stop();
    await knot?.stop();
  });

  let pushSha = "";
  let pushId = "";

  it("a pushed refUpdate is fetched over smart HTTP, compiled with the paths filter and run", async () => {
    pushSha = await knot.pushCommit(REPO, { "README.md": "changed\n" });
    const ev = refUpdate(shas[0] as string, pushSha, ["README.md"]);
    assert.ok(ev.created > 1n << 53n);
    let page = await pipelinesOf();
    await waitFor(
      () => page.pipelines.length === 1,
      30_000,
      "pipeline stored",
      async () => {
        page = await pipelinesOf();
      },
    );
    const p = page.pipelines[0] as CiP;
    pushId = p.id;
    assert.match(pushId, /^[2-7a-z]{13}$/);
    assert.equal(p.commit, pushSha);
    assert.equal(p.repo, REPO);
    assert.deepEqual(p.trigger, {
      $type: "sh.tangled.ci.trigger#push",
      newSha: pushSha,
      oldSha: shas[0],
      ref: "refs/heads/main",
    });
    // lint.yml needs src/**; slow.yml is manual only.
    assert.deepEqual(
      p.workflows.map((w: Wf) => w.name),
      ["ci.yml"],
    );
    const done = await waitDone(pushId);
    assert.equal(done.workflows[0]?.status, "success", JSON.stringify(done));
    assert.match(done.workflows[0]?.startedAt ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.match(done.workflows[0]?.finishedAt ?? "", /Z$/);
    validate.pipeline(done);
    // The knot cursor is the exact `created` of the last event, not a rounded double.
    assert.equal(new KnotCursors(b.server.db).get(knot.host), ev.created.toString());
  });

  it("/events carries the spindle's own pipeline record, then its statuses (gen2 §2.9)", async () => {
    const events = new Collector(`${b.wsUrl}/events?cursor=1`);
    try {
      const isFinal = (f: string) => {
        const e = JSON.parse(f) as { nsid: string; event: { pipeline?: string; status?: string } };
        return (
          e.nsid === "sh.tangled.pipeline.status" &&
          e.event.pipeline?.endsWith(`/${pushId}`) === true &&
          e.event.status === "success"
        );
      };
      await events.until((frames) => frames.some(isFinal));
      const mine = events.json.filter(
        (e) => e.rkey === pushId || (e.event as { pipeline?: string }).pipeline?.endsWith(`/${pushId}`),
      );
      assert.equal(mine[0]?.nsid, "sh.tangled.pipeline", JSON.stringify(mine));
      const record = mine[0]?.event as {
        triggerMetadata: { kind: string; repo: { repoDid: string } };
        workflows: { name: string }[];
      };
      assert.equal(record.triggerMetadata.kind, "push");
      assert.equal(record.triggerMetadata.repo.repoDid, REPO);
      assert.deepEqual(
        record.workflows.map((w) => w.name),
        ["ci.yml"],
      );
      assert.deepEqual(
        mine.slice(1).map((e) => [e.nsid, (e.event as { status: string }).status]),
        [
          ["sh.tangled.pipeline.status", "pending"],
          ["sh.tangled.pipeline.status", "running"],
          ["sh.tangled.pipeline.status", "success"],
        ],
      );
      assert.equal(
        (mine[1]?.event as { pipeline?: string } | undefined)?.pipeline,
        `at://did:web:${HOSTNAME}/sh.tangled.pipeline/${pushId}`,
      );
    } finally {
      events.close();
    }
  });

  it("the same push as a Gen1 sh.tangled.pipeline event does not run again", async () => {
    knot.publish("sh.tangled.pipeline", {
      $type: "",
      triggerMetadata: {
        kind: "push",
        push: { newSha: pushSha, oldSha: shas[0], ref: "refs/heads/main" },
        repo: { defaultBranch: "", did: ALICE, knot: knot.host, repo: "gen2", repoDid: REPO },
      },
      workflows: [
        { clone: { depth: 1, skip: true, submodules: false }, engine: "kubernetes", name: "ci.yml", raw: CI },
      ],
    });
    const last = knot.events.at(-1);
    await waitFor(
      () => new KnotCursors(b.server.db).get(knot.host) === last?.created.toString(),
      10_000,
      "gen1 event handled",
    );
    const page = await pipelinesOf();
    assert.equal(page.pipelines.length, 1);
    assert.equal(page.total, 1);
  });

  it("a knot restart replays from the stored cursor without duplicates", async () => {
    const before = knot.cursors.length;
    knot.dropConnections();
    await waitFor(() => knot.cursors.length > before, 10_000, "reconnect");
    assert.equal(knot.cursors.at(-1), knot.events.at(-1)?.created.toString());
    // A push touching src/ arrives after the reconnect: both ci.yml and lint.yml run.
    const sha2 = await knot.pushCommit(REPO, { "src/a.ts": "export {};\n" });
    refUpdate(pushSha, sha2, ["src/a.ts"]);
    let page = await pipelinesOf();
    await waitFor(
      () => page.pipelines.length === 2,
      30_000,
      "second pipeline",
      async () => {
        page = await pipelinesOf();
      },
    );
    assert.equal(page.pipelines[0]?.commit, sha2, "newest first");
    assert.deepEqual(
      page.pipelines[0]?.workflows.map((w: Wf) => w.name),
      ["ci.yml", "lint.yml"],
    );
    await waitDone(page.pipelines[0]?.id);
    // Replaying everything from the start (a knot that lost our cursor) adds nothing.
    new KnotCursors(b.server.db).set(knot.host, FIRST_CREATED.toString());
    const n = knot.cursors.length;
    knot.dropConnections();
    await waitFor(() => knot.cursors.length > n, 10_000, "second reconnect");
    await waitFor(
      () => new KnotCursors(b.server.db).get(knot.host) === knot.events.at(-1)?.created.toString(),
      10_000,
      "replay handled",
    );
    assert.equal((await pipelinesOf()).total, 2);
  });

  it("skip-ci push options and branch deletions build nothing", async () => {
    const sha3 = await knot.pushCommit(REPO, { "README.md": "skip\n" });
    knot.publish("sh.tangled.git.refUpdate", {
      $type: "",
      committerDid: ALICE,
      newSha: sha3,
      oldSha: pushSha,
      ownerDid: ALICE,
      pushOptions: ["skip-ci"],
      ref: "refs/heads/main",
      repo: REPO,
    });
    refUpdate(sha3, ZERO, []);
    await waitFor(
      () => new KnotCursors(b.server.db).get(knot.host) === knot.events.at(-1)?.created.toString(),
      10_000,
      "events handled",
    );
    assert.equal((await pipelinesOf()).total, 2);
  });

  it("getPipeline: unknown → 404 PipelineNotFound, not a TID → 400 InvalidRequest", async () => {
    const unknown = await xrpc("sh.tangled.ci.getPipeline", "pipeline=3zzzzzzzzzzzz");
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error, "PipelineNotFound");
    const bad = await xrpc("sh.tangled.ci.getPipeline", "pipeline=nope");
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, "InvalidRequest");
    const missing = await xrpc("sh.tangled.ci.queryPipelines", "");
    assert.equal(missing.status, 400);
    const badCursor = await xrpc("sh.tangled.ci.queryPipelines", `repo=${REPO}&cursor=abc`);
    assert.equal(badCursor.status, 400);
  });

  it("subscribePipelineLogs replays the finished workflow's log as CBOR frames and closes", async () => {
    const { frames, code } = await subscribe(b.wsUrl, `pipeline=${pushId}&workflows=ci.yml`);
    assert.equal(code, 1000);
    for (const f of frames) assert.equal(f.header.op, 1);
    const data = frames.filter((f) => f.header.t === "#data").map((f) => f.body.content);
    assert.ok(data.includes("hello from ci\n"), JSON.stringify(data));
    // The repo's own push run has the secret (masked in the log), never its value.
    assert.ok(
      data.some((c) => String(c).startsWith("secret=[") && c !== "secret=[]\n"),
      JSON.stringify(data),
    );
    assert.ok(!JSON.stringify(frames).includes(SECRET));
    const control = frames.filter((f) => f.header.t === "#control");
    assert.ok(
      control.some((f) => f.body.content === "hello" && f.body.status === "start" && f.body.kind === "user"),
    );
    for (const f of frames) assert.equal(f.body.workflow, "ci.yml");
  });

  it("subscribePipelineLogs refuses bad requests before the upgrade", async () => {
    const ws400 = new WebSocket(
      `${b.wsUrl}/xrpc/sh.tangled.ci.subscribePipelineLogs?pipeline=nope&workflows=ci.yml`,
    );
    const status400 = await new Promise<number>((res) =>
      ws400.once("unexpected-response", (_req, r) => res(r.statusCode ?? 0)),
    );
    assert.equal(status400, 400);
    const ws404 = new WebSocket(
      `${b.wsUrl}/xrpc/sh.tangled.ci.subscribePipelineLogs?pipeline=3zzzzzzzzzzzz&workflows=ci.yml`,
    );
    const r404 = await new Promise<import("node:http").IncomingMessage>((res) =>
      ws404.once("unexpected-response", (_req, r) => res(r)),
    );
    assert.equal(r404.statusCode, 404);
    const chunks: Buffer[] = [];
    for await (const c of r404) chunks.push(c as Buffer);
    assert.equal(JSON.parse(Buffer.concat(chunks).toString()).error, "NotFound");
    const noWf = new WebSocket(`${b.wsUrl}/xrpc/sh.tangled.ci.subscribePipelineLogs?pipeline=${pushId}`);
    const s = await new Promise<number>((res) =>
      noWf.once("unexpected-response", (_req, r) => res(r.statusCode ?? 0)),
    );
    assert.equal(s, 400);
    // A plain GET (no upgrade) is told what the endpoint is.
    const plain = await xrpc("sh.tangled.ci.subscribePipelineLogs", `pipeline=${pushId}&workflows=ci.yml`);
    assert.equal(plain.status, 400);
  });

  it("queryPipelines filters by commit and kind and pages newest first with a nanosecond cursor", async () => {
    const byCommit = await pipelinesOf(`&commits=${pushSha}`);
    assert.deepEqual(
      byCommit.pipelines.map((p) => p.id),
      [pushId],
    );
    assert.equal((await pipelinesOf("&kinds=manual")).total, 0);
    assert.equal((await pipelinesOf("&kinds=push")).total, 2);
    const first = await pipelinesOf("&limit=1");
    assert.equal(first.pipelines.length, 1);
    assert.equal(first.total, 2);
    assert.match(first.cursor ?? "", /^[0-9]+$/);
    const second = await pipelinesOf(`&limit=1&cursor=${first.cursor}`);
    assert.equal(second.total, 1, "total counts matches after the cursor");
    assert.equal(second.pipelines[0]?.id, pushId);
    const third = await pipelinesOf(`&limit=1&cursor=${second.cursor}`);
    assert.deepEqual(third, { pipelines: [], total: 0 });
  });

  it("describeWorkflowDefinition hashes the files at a commit", async () => {
    const r = await xrpc("sh.tangled.ci.describeWorkflowDefinition", `repo=${REPO}&sha=${pushSha}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.derived, true);
    assert.match(String(r.body.hash), /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(r.body.workflows, ["ci.yml", "lint.yml", "slow.yml"]);
    const unknownRepo = await xrpc(
      "sh.tangled.ci.describeWorkflowDefinition",
      `repo=did:plc:nobody&sha=${pushSha}`,
    );
    assert.equal(unknownRepo.status, 400);
    assert.equal(unknownRepo.body.error, "RepoNotFound");
  });

  it("triggerPipeline retries named workflows at a commit (manual) and needs push rights", async () => {
    const denied = await post("sh.tangled.ci.triggerPipeline", MALLORY, {
      repo: REPO,
      trigger: { $type: "sh.tangled.ci.trigger#manual", sha: pushSha },
    });
    assert.equal(denied.status, 400);
    assert.equal(denied.body.error, "AccessControl");
    const r = await post("sh.tangled.ci.triggerPipeline", ALICE, {
      repo: REPO,
      trigger: { $type: "sh.tangled.ci.trigger#manual", sha: pushSha, ref: "refs/heads/main" },
      workflows: ["ci.yml"],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const m = /^at:\/\/did:web:spindle\.test\/sh\.tangled\.pipeline\/([2-7a-z]{13})$/.exec(
      String(r.body.pipeline),
    );
    assert.ok(m, String(r.body.pipeline));
    const done = await waitDone(m[1] as string);
    assert.equal(done.trigger.$type, "sh.tangled.ci.trigger#manual");
    assert.equal(done.commit, pushSha);
    assert.deepEqual(
      done.workflows.map((w: Wf) => [w.name, w.status]),
      [["ci.yml", "success"]],
    );
    assert.equal((await pipelinesOf("&kinds=manual")).total, 1);
    const unknownWf = await post("sh.tangled.ci.triggerPipeline", ALICE, {
      repo: REPO,
      trigger: { $type: "sh.tangled.ci.trigger#manual", sha: pushSha },
      workflows: ["nope.yml"],
    });
    assert.equal(unknownWf.status, 400);
  });

  it("a fork pull request runs the fork's workflow with no secrets", async () => {
    const [forkSha] = await Promise.all([knot.pushCommit(FORK, { "README.md": "fork change\n" })]);
    const r = await post("sh.tangled.ci.triggerPipeline", ALICE, {
      repo: REPO,
      trigger: {
        $type: "sh.tangled.ci.trigger#pullRequest",
        sourceRepo: FORK,
        sourceSha: forkSha,
        sourceBranch: "main",
        targetBranch: "main",
      },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const id = String(r.body.pipeline).split("/").at(-1) as string;
    const done = await waitDone(id);
    assert.equal(done.sourceRepo, FORK);
    assert.equal(done.trigger.sourceRepo, FORK);
    assert.equal(done.workflows[0]?.status, "success", JSON.stringify(done));
    const { frames } = await subscribe(b.wsUrl, `pipeline=${id}&workflows=ci.yml`);
    const data = frames.filter((f) => f.header.t === "#data").map((f) => f.body.content);
    assert.ok(data.includes("secret=[]\n"), JSON.stringify(data));
    assert.ok(!JSON.stringify(frames).includes(SECRET));
    assert.equal((await pipelinesOf("&kinds=pull_request")).total, 1);
  });

  it("a pull request action outside the workflows' types builds nothing (400)", async () => {
    // ci.yml names no `types`: the default (opened, reopened, synchronize) excludes closed.
    const r = await post("sh.tangled.ci.triggerPipeline", ALICE, {
      repo: REPO,
      trigger: {
        $type: "sh.tangled.ci.trigger#pullRequest",
        action: "closed",
        sourceSha: pushSha,
        sourceBranch: "feature",
        targetBranch: "main",
      },
    });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.error, "InvalidRequest");
    assert.match(String(r.body.message), /no workflow to run/);
  });

  it("cancelPipeline cancels a running pipeline's workflows", async () => {
    const r = await post("sh.tangled.ci.triggerPipeline", ALICE, {
      repo: REPO,
      trigger: { $type: "sh.tangled.ci.trigger#manual", sha: pushSha },
      workflows: ["slow.yml"],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const id = String(r.body.pipeline).split("/").at(-1) as string;
    let p = {} as CiP;
    await waitFor(
      () => p.workflows?.[0]?.status === "running",
      20_000,
      "running",
      async () => {
        p = (await xrpc("sh.tangled.ci.getPipeline", `pipeline=${id}`)).body as unknown as CiP;
      },
    );
    // A live subscriber sees the stream end when the workflow is cancelled.
    const live = subscribe(b.wsUrl, `pipeline=${id}&workflows=slow.yml`);
    let metrics = "";
    const scrape = async () => {
      metrics = await (await fetch(`${b.url}/metrics`)).text();
    };
    await waitFor(() => /^loom_log_subscribers 1$/m.test(metrics), 5000, "the log stream counted", scrape);
    const denied = await post("sh.tangled.ci.cancelPipeline", MALLORY, { repo: REPO, pipeline: id });
    assert.equal(denied.status, 400);
    const c = await post("sh.tangled.ci.cancelPipeline", ALICE, { repo: REPO, pipeline: id });
    assert.equal(c.status, 200, JSON.stringify(c.body));
    const done = await waitDone(id);
    assert.equal(done.workflows[0]?.status, "cancelled");
    assert.equal((await live).code, 1000);
    await waitFor(() => /^loom_log_subscribers 0$/m.test(metrics), 5000, "the log stream uncounted", scrape);
    const unknown = await post("sh.tangled.ci.cancelPipeline", ALICE, {
      repo: REPO,
      pipeline: "3zzzzzzzzzzzz",
    });
    assert.equal(unknown.status, 404);
  });

  it("a Gen1 push pipeline Gen2 did not handle still runs (the dedupe is per push)", async () => {
    const before = (await pipelinesOf("&kinds=push")).total;
    const other = "1".repeat(40);
    knot.publish("sh.tangled.pipeline", {
      $type: "",
      triggerMetadata: {
        kind: "push",
        push: { newSha: other, oldSha: pushSha, ref: "refs/heads/main" },
        repo: { defaultBranch: "", did: ALICE, knot: knot.host, repo: "gen2", repoDid: REPO },
      },
      workflows: [
        { clone: { depth: 1, skip: true, submodules: false }, engine: "kubernetes", name: "ci.yml", raw: CI },
      ],
    });
    let page = await pipelinesOf("&kinds=push");
    await waitFor(
      () => page.total === before + 1,
      10_000,
      "gen1 pipeline",
      async () => {
        page = await pipelinesOf("&kinds=push");
      },
    );
    assert.equal(page.pipelines[0]?.commit, other);
    // Gen1 knot pipelines keep the knot's rkey as their id.
    assert.equal(page.pipelines[0]?.id, knot.events.at(-1)?.rkey);
  });

  it("the original Loom's example shape (image, architecture, steps; no engine, no when) is built and run (issue 14)", async () => {
    const before = (await pipelinesOf("&kinds=push")).total;
    const original = [
      "image: golang:1.24",
      "architecture: amd64",
      "steps:",
      "  - name: build",
      '    command: echo "built $TANGLED_REPO_NAME at $TANGLED_COMMIT_SHA"',
      "",
    ].join("\n");
    const head = (knot.events.at(-1)?.event as { newSha?: string } | undefined)?.newSha ?? pushSha;
    const sha = await knot.pushCommit(REPO, { ".tangled/workflows/original.yml": original });
    refUpdate(head, sha, [".tangled/workflows/original.yml"]);
    let page = await pipelinesOf("&kinds=push");
    await waitFor(
      () => page.total === before + 1,
      30_000,
      "pipeline with original.yml stored",
      async () => {
        page = await pipelinesOf("&kinds=push");
      },
    );
    const p = page.pipelines[0] as CiP;
    assert.equal(p.commit, sha);
    assert.ok(
      p.workflows.some((w: Wf) => w.name === "original.yml"),
      JSON.stringify(p.workflows),
    );
    const done = await waitDone(p.id);
    const wf = done.workflows.find((w: Wf) => w.name === "original.yml");
    assert.equal(wf?.status, "success", JSON.stringify(done));
  });

  it("serves /.well-known/did.json with the #tangled_spindle service", async () => {
    const res = await fetch(`${b.url}/.well-known/did.json`);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as { id: string; service: Array<{ id: string; type: string }> };
    assert.equal(doc.id, AUD);
    assert.equal(doc.service[0]?.id, "#tangled_spindle");
  });
});
