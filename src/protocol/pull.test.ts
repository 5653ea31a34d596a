import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  classifyPull,
  MAX_ROUNDS,
  PULL_STATUS_ACTIONS,
  parsePullRecord,
  parsePullStatus,
  pullAtUri,
} from "./pull.ts";
import { WireError } from "./zod-util.ts";

const REPO = "did:plc:targetrepo00000000000000";
const FORK = "did:plc:forkrepo0000000000000000";
const CID1 = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
const CID2 = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

const blob = (cid: string) => ({
  $type: "blob",
  ref: { $link: cid },
  mimeType: "application/gzip",
  size: 123,
});
const round = (cid: string) => ({ patchBlob: blob(cid), createdAt: "2026-08-01T00:00:00Z" });

const current = (extra: Record<string, unknown> = {}) => ({
  $type: "sh.tangled.repo.pull",
  target: { repo: REPO, branch: "main" },
  title: "Add a thing",
  body: "please",
  rounds: [round(CID1), round(CID2)],
  source: { branch: "feature" },
  createdAt: "2026-08-01T00:00:00Z",
  mentions: ["did:plc:someone"],
  references: [],
  ...extra,
});

const rejects = (value: unknown, pattern: RegExp) =>
  assert.throws(
    () => parsePullRecord(value),
    (e: unknown) => e instanceof WireError && pattern.test(e.message),
  );

describe("sh.tangled.repo.pull", () => {
  it("a current same-repo record: target DID, branches, the latest round's blob", () => {
    const c = classifyPull(parsePullRecord(current()));
    assert.deepEqual(c, {
      ci: true,
      repoDid: REPO,
      targetBranch: "main",
      sourceBranch: "feature",
      source: { blob: { cid: CID2, mimeType: "application/gzip" } },
      round: 2,
    });
  });

  it("accepts legacy blob refs ({cid, mimeType}) and a source.repo naming the target itself", () => {
    const c = classifyPull(
      parsePullRecord(
        current({
          rounds: [{ patchBlob: { cid: CID1, mimeType: "application/gzip" } }],
          source: { branch: "f", repo: REPO },
        }),
      ),
    );
    assert.equal(c.ci, true);
    assert.deepEqual(c.ci && c.source, { blob: { cid: CID1, mimeType: "application/gzip" } });
  });

  it("legacy shapes: at-uri target with repoDid, single patchBlob, source.sha", () => {
    const atUri = "at://did:plc:owner/sh.tangled.repo/3lrepo";
    const withBlob = classifyPull(
      parsePullRecord({
        target: { repo: atUri, repoDid: REPO, branch: "main" },
        source: { branch: "feature", repo: atUri },
        patchBlob: { cid: CID1, mimeType: "application/gzip" },
      }),
    );
    assert.equal(withBlob.ci, true);
    assert.equal(withBlob.ci && withBlob.repoDid, REPO);
    assert.equal(withBlob.ci && withBlob.round, 0);
    const sha = "a".repeat(40);
    const withSha = classifyPull(
      parsePullRecord({
        target: { repo: REPO, branch: "main" },
        source: { branch: "f", sha },
        patch: "diff…",
      }),
    );
    assert.deepEqual(withSha.ci && withSha.source, { sha });
    const noDid = classifyPull(
      parsePullRecord({ target: { repo: atUri, branch: "main" }, source: { branch: "f" } }),
    );
    assert.deepEqual(noDid, { ci: false, reason: "target names no repo DID" });
  });

  it("ignores legacy (no target), patch-based (no source) and fork-based pulls", () => {
    assert.match(
      String((classifyPull(parsePullRecord({ title: "old", patch: "x" })) as { reason: string }).reason),
      /legacy/,
    );
    const patchOnly = current();
    delete (patchOnly as Record<string, unknown>).source;
    assert.match((classifyPull(parsePullRecord(patchOnly)) as { reason: string }).reason, /patch-based/);
    const fork = classifyPull(parsePullRecord(current({ source: { branch: "f", repo: FORK } })));
    assert.equal(fork.ci, false);
    assert.match((fork as { reason: string }).reason, /fork-based/);
    const noRounds = classifyPull(parsePullRecord(current({ rounds: [] })));
    assert.match((noRounds as { reason: string }).reason, /no rounds/);
  });

  it("100 rounds: the last one counts", () => {
    const rounds = Array.from({ length: 100 }, (_, i) => round(i === 99 ? CID2 : CID1));
    const c = classifyPull(parsePullRecord(current({ rounds })));
    assert.equal(c.ci && c.round, 100);
    assert.deepEqual(c.ci && c.source, { blob: { cid: CID2, mimeType: "application/gzip" } });
  });

  it("hostile input: huge arrays, wrong types, bad blob refs are WireErrors", () => {
    rejects(
      current({ rounds: Array.from({ length: MAX_ROUNDS + 1 }, () => round(CID1)) }),
      /rounds: at most/,
    );
    rejects(current({ rounds: "nope" }), /rounds/);
    rejects(current({ rounds: [{ patchBlob: "bafy" }] }), /rounds\.0\.patchBlob/);
    rejects(
      current({ rounds: [{ patchBlob: { $type: "blob", ref: { $link: "../../etc" }, mimeType: "x" } }] }),
      /patchBlob/,
    );
    rejects(current({ rounds: [{ patchBlob: { $type: "blob", cid: CID1, mimeType: "x" } }] }), /patchBlob/);
    rejects(current({ target: { repo: REPO } }), /target\.branch/);
    rejects(current({ target: { repo: 42, branch: "main" } }), /target\.repo/);
    rejects(current({ target: "did:plc:x" }), /target/);
    rejects(current({ source: { branch: "" } }), /source\.branch/);
    rejects(current({ source: { branch: "f", sha: "not-a-sha" } }), /source\.sha/);
    rejects(null, /pull/);
    rejects([current()], /pull/);
    // Display-only fields are not CI's business: huge or odd ones do not block it.
    const loose = parsePullRecord(current({ mentions: Array.from({ length: 50_000 }, () => "x"), title: 5 }));
    assert.equal(classifyPull(loose).ci, true);
  });
});

describe("sh.tangled.repo.pull.status", () => {
  const pull = pullAtUri("did:plc:author", "3lpull0000000");

  it("maps the three known statuses to actions; default open", () => {
    for (const [status, action] of PULL_STATUS_ACTIONS) {
      assert.deepEqual(parsePullStatus({ pull, status }), {
        pull,
        author: "did:plc:author",
        rkey: "3lpull0000000",
        status,
        action,
      });
    }
    assert.equal(parsePullStatus({ pull }).action, "reopened");
    assert.equal(parsePullStatus({ pull, status: "sh.tangled.repo.pull.status.draft" }).action, null);
    assert.equal(parsePullStatus({ pull, status: "constructor" }).action, null);
  });

  it("refuses a pull that is not a sh.tangled.repo.pull at-uri, and wrong types", () => {
    for (const bad of [
      { pull: "at://did:plc:author/sh.tangled.repo/3l" },
      { pull: "https://example.com/x" },
      { pull: "at://not-a-did/sh.tangled.repo.pull/3l" },
      { pull: `${pull}/extra` },
      { pull, status: 7 },
      { status: "sh.tangled.repo.pull.status.closed" },
      "x",
    ]) {
      assert.throws(() => parsePullStatus(bad), WireError, JSON.stringify(bad));
    }
  });
});
