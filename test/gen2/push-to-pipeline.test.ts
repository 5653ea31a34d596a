/**
 * The Gen2 building blocks chained the way the spindle will wire them (gen2 §2.3–§2.7):
 * knot /events envelope → refUpdate → push decision (+ getDefaultBranch) → workflow fetch with
 * real git → Gen2 compile → pipeline TID → sh.tangled.ci.pipeline, plus the definition hash.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { WebSocket } from "ws";
import { getDefaultBranch } from "../../src/net/knot/default-branch.ts";
import { WorkflowFetcher } from "../../src/net/knot/workflow-fetcher.ts";
import { buildCiPipeline } from "../../src/protocol/ci-pipeline.ts";
import { type Envelope, parseEnvelope } from "../../src/protocol/envelope.ts";
import { validate } from "../../src/protocol/lexicons.ts";
import { REF_UPDATE_NSID } from "../../src/protocol/nsid.ts";
import { parseRefUpdate, ZERO_SHA } from "../../src/protocol/ref-update.ts";
import { TidGenerator } from "../../src/protocol/tid.ts";
import { compileGen2 } from "../../src/workflow/compile.ts";
import { describeWorkflowDefinition } from "../../src/workflow/fingerprint.ts";
import { decidePush, type KnownRepo } from "../../src/workflow/push.ts";
import { KnotGitServer } from "../support/knot-git-server.ts";

const REPO = "did:plc:e2erepo";
const CI = `when:
  - event: push
    branch: main
    paths: ["src/**"]
engine: nixery
steps:
  - name: test
    command: make test
`;
const DOCS = `when:
  - event: push
    branch: main
    paths: ["docs/**"]
engine: nixery
steps:
  - name: docs
    command: make docs
`;

async function readEnvelopes(url: string, n: number): Promise<Envelope[]> {
  const ws = new WebSocket(url);
  const out: Envelope[] = [];
  await new Promise<void>((resolve, reject) => {
    ws.on("message", (data) => {
      out.push(parseEnvelope(String(data)));
      if (out.length === n) resolve();
    });
    ws.on("error", reject);
  });
  ws.close();
  return out;
}

describe("refUpdate → ci.pipeline", () => {
  let knot: KnotGitServer;
  let cacheDir: string;

  before(async () => {
    knot = await KnotGitServer.start();
    cacheDir = await mkdtemp(join(tmpdir(), "e2e-cache-"));
  });
  after(async () => {
    await knot.stop();
    await rm(cacheDir, { recursive: true, force: true });
  });

  it("builds a pipeline for the workflows whose paths changed, and skips skip-ci and deletions", async () => {
    const [base, head] = await knot.createRepo(
      REPO,
      { ".tangled/workflows/ci.yml": CI, ".tangled/workflows/docs.yml": DOCS, "src/a.ts": "1\n" },
      { "src/a.ts": "2\n" },
    );
    const push = (over: Record<string, unknown>) => ({
      $type: "",
      changedFiles: ["src/a.ts"],
      committerDid: "did:plc:pusher",
      meta: { commitCount: { byEmail: [] }, isDefaultRef: true },
      newSha: head,
      oldSha: base,
      ownerDid: "did:plc:owner",
      ref: "refs/heads/main",
      repo: REPO,
      ...over,
    });
    knot.publish(REF_UPDATE_NSID, push({}));
    knot.publish(REF_UPDATE_NSID, push({ pushOptions: ["skip-ci"] }));
    knot.publish(
      REF_UPDATE_NSID,
      push({ newSha: ZERO_SHA, meta: null, changedFiles: undefined, ref: "refs/heads/old" }),
    );
    knot.publish("sh.tangled.knot.memberUpdate", { op: "add", subject: "did:plc:x" });

    const envelopes = await readEnvelopes(`ws://${knot.host}/events`, 4);
    const branch = await getDefaultBranch(knot.host, REPO, { dev: true });
    const repo: KnownRepo = {
      knot: knot.host,
      ownerDid: "did:plc:owner",
      repoDid: REPO,
      rkey: "3kself",
      defaultBranch: branch.name,
    };
    const fetcher = new WorkflowFetcher({ cacheDir });
    const tids = new TidGenerator({ clockId: 1 });

    const built = [];
    const skipped = [];
    for (const env of envelopes) {
      if (env.nsid !== REF_UPDATE_NSID) continue; // a spindle ignores the rest (§2.3)
      const decision = decidePush(parseRefUpdate(env.event), repo);
      if (!decision.build) {
        skipped.push(decision.reason);
        continue;
      }
      const fetched = await fetcher.fetchWorkflows({
        knot: knot.host,
        repoDid: REPO,
        sha: decision.sha,
        dev: true,
      });
      const compiled = compileGen2(fetched.files, decision.trigger, {
        ...(decision.changedFiles !== undefined && { changedFiles: decision.changedFiles }),
      });
      if (compiled.record === undefined) continue;
      const id = tids.next();
      const pipeline = buildCiPipeline({
        id,
        createdAt: new Date(Number((env.created ?? 0n) / 1_000_000n)),
        trigger: compiled.record.triggerMetadata,
        workflows: compiled.record.workflows.map((w) => w.name),
        statuses: [],
      });
      built.push({
        pipeline,
        record: compiled.record,
        definition: describeWorkflowDefinition(fetched.files),
      });
    }

    assert.deepEqual(skipped, ["skip-ci", "deletion"]);
    assert.equal(built.length, 1);
    const [{ pipeline, record, definition }] = built as [(typeof built)[0]];
    validate.getPipelineOutput(pipeline);
    assert.equal(pipeline.commit, head);
    assert.equal(pipeline.repo, REPO);
    assert.deepEqual(pipeline.workflows, [{ id: "ci.yml", name: "ci.yml", status: "pending" }]);
    assert.deepEqual(record.triggerMetadata.repo, {
      knot: knot.host,
      did: "did:plc:owner",
      repo: "3kself",
      repoDid: REPO,
      defaultBranch: "main",
    });
    assert.equal(record.workflows[0]?.raw, CI);
    assert.deepEqual(record.workflows[0]?.clone, { depth: 0, skip: false, submodules: true, tags: true });
    assert.deepEqual(definition.workflows, ["ci.yml", "docs.yml"]);
    assert.match(definition.hash, /^sha256:[0-9a-f]{64}$/);
    validate.describeWorkflowDefinitionOutput(definition);
  });
});
