/**
 * Gen2 knot intake edge cases against a real server (handlers called with envelopes as the knot
 * consumer would hand them over): a knot that cannot be reached gives a failed pipeline whose
 * error is readable through getPipeline and subscribePipelineLogs; events from the wrong knot,
 * for unknown repos or malformed are dropped; collaboratorUpdate grants and revokes push rights;
 * migration 6/7 index pipelines stored before them.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { decodeFirst } from "cborg";
import { WebSocket } from "ws";
import type { KnotEnvelope } from "../../src/protocol/envelope.ts";
import { MIGRATIONS, openDatabase, Repos } from "../../src/spindle/db/index.ts";
import type { RefUpdateIntake } from "../../src/spindle/intake/ref-updates.ts";
import { FETCH_FAILED_WORKFLOW } from "../../src/spindle/pipelines/build.ts";
import { Rbac } from "../../src/spindle/rbac/index.ts";
import { ALICE, type Booted, bootServer } from "./server-kit.ts";

const REPO = "did:plc:gen2intake00000000000";
const DEAD_KNOT = "127.0.0.1:9";
const BOB = "did:plc:bobbobbobbobbob";
const SHA_A = "a".repeat(40);
const SHA_B = "b".repeat(40);

let seq = 0;
const env = (nsid: string, event: Record<string, unknown>): KnotEnvelope => ({
  nsid,
  rkey: `3m${String(seq++).padStart(11, "2")}`,
  event,
  created: ((1n << 53n) + BigInt(seq)).toString(),
});
const refUpdate = (over: Record<string, unknown> = {}) =>
  env("sh.tangled.git.refUpdate", {
    $type: "",
    committerDid: ALICE,
    meta: { isDefaultRef: true },
    newSha: SHA_B,
    oldSha: SHA_A,
    ownerDid: ALICE,
    ref: "refs/heads/main",
    repo: REPO,
    ...over,
  });

describe("spindle gen2 intake: failures and collaborators", () => {
  let b: Booted;
  /** The knot handlers createIntake registers (refUpdate, collaboratorUpdate, pipeline). */
  const refUpdates = (): RefUpdateIntake => b.server.refUpdates;
  const total = async () => {
    const r = await fetch(`${b.url}/xrpc/sh.tangled.ci.queryPipelines?repo=${REPO}`);
    return ((await r.json()) as { total: number; pipelines: Array<{ id: string }> }).total;
  };

  before(async () => {
    b = await bootServer({ server: { builds: { fetchRetryDelaysMs: [10] } } });
    new Repos(b.server.db).upsert({
      knot: DEAD_KNOT,
      owner: ALICE,
      name: "intake",
      rkey: "3repoint0000a",
      repoDid: REPO,
    });
    new Rbac(b.server.db).grantRepoOwner(ALICE, { ownerDid: ALICE, repoDid: REPO });
  });
  after(async () => {
    await b?.stop();
  });

  it("events from another knot, for unknown repos, or malformed are dropped", async () => {
    await refUpdates().onRefUpdate("other.knot.test", refUpdate());
    await refUpdates().onRefUpdate(DEAD_KNOT, refUpdate({ repo: "did:plc:unknownrepo" }));
    await refUpdates().onRefUpdate(DEAD_KNOT, refUpdate({ newSha: "not-a-sha" }));
    assert.equal(await total(), 0);
  });

  it("an unreachable knot gives a failed pipeline that says why", async () => {
    await refUpdates().onRefUpdate(DEAD_KNOT, refUpdate());
    const page = (await (await fetch(`${b.url}/xrpc/sh.tangled.ci.queryPipelines?repo=${REPO}`)).json()) as {
      pipelines: Array<{
        id: string;
        commit: string;
        workflows: Array<{ name: string; status: string; error?: string }>;
      }>;
    };
    assert.equal(page.pipelines.length, 1);
    const p = page.pipelines[0];
    assert.equal(p?.commit, SHA_B);
    assert.equal(p?.workflows.length, 1);
    const wf = p?.workflows[0];
    assert.equal(wf?.name, FETCH_FAILED_WORKFLOW);
    assert.equal(wf?.status, "failed");
    assert.match(wf?.error ?? "", /could not read \.tangled\/workflows at b{40} from 127\.0\.0\.1:9/);
    // The error is also what a log subscriber sees.
    const ws = new WebSocket(
      `${b.wsUrl}/xrpc/sh.tangled.ci.subscribePipelineLogs?pipeline=${p?.id}&workflows=${FETCH_FAILED_WORKFLOW}`,
    );
    const bodies: Array<Record<string, unknown>> = [];
    ws.on("message", (data) => {
      const [, rest] = decodeFirst(new Uint8Array(data as Buffer));
      bodies.push(decodeFirst(rest)[0] as Record<string, unknown>);
    });
    await new Promise((r) => ws.once("close", r));
    assert.equal(bodies.length, 2);
    assert.match(String(bodies[1]?.content), /could not read/);
    // A replay of the same refUpdate does not add a second pipeline.
    await refUpdates().onRefUpdate(DEAD_KNOT, refUpdate());
    assert.equal(await total(), 1);
  });

  it("a push whose Gen1 event came first is not built again from its refUpdate", async () => {
    const before = await total();
    const sha = "c".repeat(40);
    const gen1 = refUpdates().handlers()["sh.tangled.pipeline"];
    assert.ok(gen1);
    await gen1(
      DEAD_KNOT,
      env("sh.tangled.pipeline", {
        $type: "",
        triggerMetadata: {
          kind: "push",
          push: { newSha: sha, oldSha: SHA_B, ref: "refs/heads/main" },
          // No repoDid: the push is matched to the repo through its (owner, name).
          repo: { defaultBranch: "", did: ALICE, knot: DEAD_KNOT, repo: "intake" },
        },
        workflows: [
          {
            clone: { depth: 1, skip: true, submodules: false },
            engine: "kubernetes",
            name: "ci.yml",
            raw: "engine: kubernetes\nimage: alpine:3\nsteps:\n  - name: a\n    command: 'true'\n",
          },
        ],
      }),
    );
    assert.equal(await total(), before + 1);
    await refUpdates().onRefUpdate(DEAD_KNOT, refUpdate({ oldSha: SHA_B, newSha: sha }));
    assert.equal(await total(), before + 1, "the refUpdate of the same push builds nothing");
  });

  it("collaboratorUpdate from the repo's knot grants and revokes push rights", async () => {
    const rbac = new Rbac(b.server.db);
    const ref = { ownerDid: ALICE, repoDid: REPO };
    const [handler] = [refUpdates().handlers()["sh.tangled.repo.collaboratorUpdate"]];
    assert.ok(handler);
    await handler(
      "other.knot.test",
      env("sh.tangled.repo.collaboratorUpdate", { op: "add", subject: BOB, repo: REPO }),
    );
    assert.equal(rbac.canPush(BOB, ref), false, "only the repo's own knot may change collaborators");
    await handler(
      DEAD_KNOT,
      env("sh.tangled.repo.collaboratorUpdate", { op: "add", subject: BOB, repo: REPO }),
    );
    assert.equal(rbac.canPush(BOB, ref), true);
    await handler(
      DEAD_KNOT,
      env("sh.tangled.repo.collaboratorUpdate", { op: "remove", subject: BOB, repo: REPO }),
    );
    assert.equal(rbac.canPush(BOB, ref), false);
    await handler(
      DEAD_KNOT,
      env("sh.tangled.repo.collaboratorUpdate", { op: "bogus", subject: BOB, repo: REPO }),
    );
    assert.equal(rbac.canPush(ALICE, ref), true, "the owner keeps push rights");
  });
});

describe("migrations 6 and 7 index pipelines stored before them", () => {
  it("backfills ci_pipelines and the per-repo totals", () => {
    const dir = mkdtempSync(join(tmpdir(), "loom-gen2-mig-"));
    try {
      const path = join(dir, "db.sqlite");
      const old = openDatabase(path, { migrations: MIGRATIONS.slice(0, 5) });
      old
        .prepare("INSERT INTO repos (knot, owner, name, repo_did) VALUES ('k', ?, 'loom', ?)")
        .run(ALICE, REPO);
      const record = (sha: string) =>
        JSON.stringify({
          $type: "",
          triggerMetadata: {
            kind: "push",
            push: { newSha: sha, oldSha: SHA_A, ref: "refs/heads/main" },
            // No repoDid in the record: found through the repos row of (owner, name).
            repo: { knot: "k", did: ALICE, repo: "loom", defaultBranch: "" },
          },
          workflows: [],
        });
      const ins = old.prepare(
        "INSERT INTO pipelines (knot, rkey, record, scope, state, created_at) VALUES ('k', ?, ?, 's', 'done', ?)",
      );
      ins.run("3m22222222222", record(SHA_B), 1000);
      ins.run("3m22222222223", record(SHA_A), 1000);
      old.close();
      const db = openDatabase(path);
      const rows = db
        .prepare("SELECT tid, repo_did, commit_sha, kind, ref FROM ci_pipelines ORDER BY created_ns")
        .all()
        .map((r) => ({ ...r }));
      assert.deepEqual(rows, [
        { tid: "3m22222222222", repo_did: REPO, commit_sha: SHA_B, kind: "push", ref: "refs/heads/main" },
        { tid: "3m22222222223", repo_did: REPO, commit_sha: SHA_A, kind: "push", ref: "refs/heads/main" },
      ]);
      assert.deepEqual(
        { ...db.prepare("SELECT n FROM ci_repo_totals WHERE repo_did = ?").get(REPO) },
        { n: 2 },
      );
      // A Gen1 repo known by name only gains its DID later: its pipelines follow (migration 8).
      const LATER = "did:plc:gen2laterdid00000000";
      db.prepare("INSERT INTO repos (knot, owner, name) VALUES ('k', ?, 'old')").run(ALICE);
      const oldRecord = record(SHA_A).replace('"repo":"loom"', '"repo":"old"');
      db.prepare(
        "INSERT INTO pipelines (knot, rkey, record, scope, state, created_at) VALUES ('k', '3m22222222224', ?, 's', 'done', 2000)",
      ).run(oldRecord);
      const didOf = () => ({
        ...db.prepare("SELECT repo_did FROM ci_pipelines WHERE tid = '3m22222222224'").get(),
      });
      assert.deepEqual(didOf(), { repo_did: null });
      new Repos(db).upsert({ knot: "k", owner: ALICE, name: "old", repoDid: LATER });
      assert.deepEqual(didOf(), { repo_did: LATER });
      assert.deepEqual(
        { ...db.prepare("SELECT n FROM ci_repo_totals WHERE repo_did = ?").get(LATER) },
        { n: 1 },
      );
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
