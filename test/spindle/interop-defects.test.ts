/**
 * Defects found when Loom was run against real peers (issue 11), each against a real server:
 *
 * 1. a Gen1 knot named `localhost:<port>` is cloned from `localhost` on the local engine (steps
 *    run on the host, where `host.docker.internal` does not resolve), and TANGLED_REPO_URL says so;
 * 2. `sh.tangled.ci.getPipeline` never answers 500 for a stored Gen1 pipeline whose repo has no
 *    DID: such a pipeline is left out (404 PipelineNotFound, as the lexicon names);
 * 4. a pull-request trigger always carries `action` (a Gen1 record without one is `opened`);
 * 5. a 2025 knot's older `sh.tangled.git.refUpdate` (repoDid/repoName, no repo) is logged at
 *    debug with the reason, not as a WARN.
 * (3, the "wrong aud" error text, is in auth-service-jwt.test.ts.)
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import type { KnotEnvelope } from "../../src/protocol/envelope.ts";
import { Repos } from "../../src/spindle/db/index.ts";
import { Rbac } from "../../src/spindle/rbac/index.ts";
import { KnotGitServer } from "../support/knot-git-server.ts";
import {
  ALICE,
  addRepo,
  type Booted,
  bootServer,
  Collector,
  pipelineRecord,
  statuses,
  workflow,
} from "./server-kit.ts";

describe("a Gen1 knot named localhost:<port>, local engine (defect 1)", () => {
  let knot: KnotGitServer;
  let b: Booted;
  let host: string;
  let sha: string;
  before(async () => {
    knot = await KnotGitServer.start();
    host = `localhost:${knot.port}`;
    b = await bootServer();
    addRepo(b.server, ALICE, "laptop", "3repolaptop0a", host);
    // Gen1 clone URL: http://<knot>/<owner DID>/<repo name>
    [sha = ""] = await knot.createRepo(`${ALICE}/laptop`, { "README.md": "cloned from the knot\n" });
  });
  after(async () => {
    await b?.stop();
    await knot?.stop();
  });

  it("clones from localhost itself and TANGLED_REPO_URL names it", async () => {
    const events = new Collector(`${b.wsUrl}/events`);
    await events.opened;
    const rkey = "3lxyzlocalhst";
    const rec = pipelineRecord([], { did: ALICE, repo: "laptop", knot: host });
    rec.workflows.push({
      clone: { depth: 1, skip: false, submodules: false },
      engine: "kubernetes",
      name: "ci.yml",
      raw: [
        "engine: kubernetes",
        "image: alpine:3",
        "steps:",
        "  - name: show",
        '    command: echo "url=$TANGLED_REPO_URL"; cat README.md',
        "",
      ].join("\n"),
    });
    // A commit the knot really has: the clone fetches it by SHA.
    rec.triggerMetadata.push.newSha = sha;
    await b.server.pipelines.acceptPipeline(host, rkey, rec);
    await events.until((f) => statuses(f).some((e) => ["success", "failed"].includes(String(e.status))));
    const final = statuses(events.frames).at(-1);
    const logs = new Collector(`${b.wsUrl}/logs/${host}/${rkey}/ci.yml`);
    await logs.closed;
    const text = logs.frames.map((f) => String(JSON.parse(f).content ?? "")).join("\n");
    assert.equal(final?.status, "success", `clone failed:\n${text}`);
    assert.match(text, new RegExp(`url=http://localhost:${knot.port}/${ALICE}/laptop`));
    assert.doesNotMatch(text, /host\.docker\.internal/);
    assert.match(text, /cloned from the knot/);
    events.close();
  });
});

const REPO_DID = "did:plc:interoprepo0000000000";
const wf = () => [workflow("ci.yml", [{ name: "a", command: "true" }])];

describe("ci.* answers for Gen1 pipelines (defects 2, 4)", () => {
  let b: Booted;
  const get = async (tid: string) => {
    const r = await fetch(`${b.url}/xrpc/sh.tangled.ci.getPipeline?pipeline=${tid}`);
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  before(async () => {
    b = await bootServer();
    // A late-2025 repo record: no repoDid.
    addRepo(b.server, ALICE, "nodid", "3reponodid00a");
    // A repo whose record names its DID.
    new Repos(b.server.db).upsert({
      knot: "knot.test",
      owner: ALICE,
      name: "withdid",
      rkey: "3repodid000aa",
      repoDid: REPO_DID,
    });
    new Rbac(b.server.db).grantRepoOwner(ALICE, { ownerDid: ALICE, name: "withdid" });
  });
  after(() => b?.stop());

  it("getPipeline of a Gen1 pipeline whose repo has no DID: 404 PipelineNotFound, never 500", async () => {
    const rec = pipelineRecord(wf(), { did: ALICE, repo: "nodid" });
    await b.server.pipelines.acceptPipeline("knot.test", "3lxyznodid222", rec);
    const r = await get("3lxyznodid222");
    assert.equal(r.status, 404, JSON.stringify(r.body));
    assert.equal(r.body.error, "PipelineNotFound");
  });

  it("getPipeline of a Gen1 pipeline whose repo names its DID answers it", async () => {
    const rec = pipelineRecord(wf(), { did: ALICE, repo: "withdid" });
    await b.server.pipelines.acceptPipeline("knot.test", "3lxyzwithdid2", rec);
    const r = await get("3lxyzwithdid2");
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.repo, REPO_DID);
  });

  it("a Gen1 pull_request trigger without action is answered with action 'opened'", async () => {
    // Gen1 records carry `action` (the Gen1 lexicon requires it); knots send "" for none.
    for (const [rkey, pr] of [
      [
        "3lxyzpraction",
        { sourceBranch: "feat", targetBranch: "main", sourceSha: "c".repeat(40), action: "" },
      ],
    ] as const) {
      const rec = {
        $type: "",
        triggerMetadata: {
          kind: "pull_request",
          pullRequest: pr,
          repo: { defaultBranch: "main", did: ALICE, knot: "knot.test", repo: "withdid" },
        },
        workflows: wf(),
      };
      await b.server.pipelines.acceptPipeline("knot.test", rkey, rec);
      const r = await get(rkey);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const trigger = r.body.trigger as Record<string, unknown>;
      assert.equal(trigger.$type, "sh.tangled.ci.trigger#pullRequest");
      assert.equal(trigger.action, "opened", JSON.stringify(trigger));
    }
    // queryPipelines answers the same trigger.
    const q = (await (
      await fetch(`${b.url}/xrpc/sh.tangled.ci.queryPipelines?repo=${REPO_DID}&kinds=pull_request`)
    ).json()) as { pipelines: Array<{ trigger: Record<string, unknown> }> };
    assert.ok(q.pipelines.length >= 1);
    for (const p of q.pipelines) assert.equal(p.trigger.action, "opened");
  });
});

describe("a 2025 knot's older refUpdate (defect 5)", () => {
  let b: Booted;
  const lines: Array<Record<string, unknown>> = [];
  before(async () => {
    const logger = pino({ level: "debug" }, { write: (s: string) => lines.push(JSON.parse(s)) });
    b = await bootServer({ server: { logger } });
  });
  after(() => b?.stop());

  it("is recognised and logged at debug with the reason, not WARN", async () => {
    const env: KnotEnvelope = {
      nsid: "sh.tangled.git.refUpdate",
      rkey: "3molderrefupd",
      created: "1765000000000000000",
      // As a late-2025 knot sends it: the repo by owner DID + name, no `repo`.
      event: {
        $type: "sh.tangled.git.refUpdate",
        committerDid: ALICE,
        meta: { isDefaultRef: true, commitCount: { byEmail: [] } },
        newSha: "b".repeat(40),
        oldSha: "a".repeat(40),
        ref: "refs/heads/main",
        repoDid: ALICE,
        repoName: "laptop",
      },
    };
    lines.length = 0;
    await b.server.refUpdates.onRefUpdate("knot.test", env);
    const about = lines.filter((l) => String(l.msg ?? "").includes("refUpdate"));
    assert.deepEqual(
      about.filter((l) => Number(l.level) >= 40),
      [],
      "no WARN or worse for the older shape",
    );
    const debug = about.find((l) => l.level === 20);
    assert.ok(debug, `a debug line; got ${JSON.stringify(about)}`);
    assert.match(String(debug.reason), /older.*repoDid.*repoName/);
  });
});
