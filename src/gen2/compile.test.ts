import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compileGen2 } from "./compile.ts";
import type { Gen2TriggerMetadata, PullAction } from "./wire/v2026/trigger-metadata.ts";

const SHA = "2".repeat(40);
const repo = {
  knot: "knot.example.com",
  did: "did:plc:owner",
  repo: "3kabc",
  repoDid: "did:plc:repo",
  defaultBranch: "main",
};
const push = (ref = "refs/heads/main"): Gen2TriggerMetadata => ({
  kind: "push",
  repo,
  push: { ref, oldSha: "1".repeat(40), newSha: SHA },
});
const pr = (action?: PullAction): Gen2TriggerMetadata => ({
  kind: "pull_request",
  repo,
  pullRequest: { sourceBranch: "feat", targetBranch: "main", sourceSha: SHA, ...(action && { action }) },
});

const file = (name: string, body: string) => ({
  name,
  content: `engine: nixery\n${body}steps:\n  - name: t\n    command: "true"\n`,
});
const names = (r: ReturnType<typeof compileGen2>) => r.record?.workflows.map((w) => w.name) ?? [];

describe("compileGen2", () => {
  it("PR types default to opened, reopened, synchronize; a missing action is opened", () => {
    const files = [
      file("default.yml", "when:\n  - event: pull_request\n    branch: main\n"),
      file("closed.yml", "when:\n  - event: pull_request\n    branch: main\n    types: [closed, merged]\n"),
    ];
    assert.deepEqual(names(compileGen2(files, pr())), ["default.yml"]);
    assert.deepEqual(names(compileGen2(files, pr("synchronize"))), ["default.yml"]);
    assert.deepEqual(names(compileGen2(files, pr("reopened"))), ["default.yml"]);
    assert.deepEqual(names(compileGen2(files, pr("merged"))), ["closed.yml"]);
    const none = compileGen2([files[0] as (typeof files)[0]], pr("closed"));
    assert.equal(none.record, undefined, "no matching workflow → no pipeline");
    assert.equal(none.diagnostics[0]?.kind, "workflow skipped");
  });

  it("paths glob against the push's changed files; unknown changed files do not filter", () => {
    const files = [
      file("docs.yml", "when:\n  - event: push\n    branch: main\n    paths: ['docs/**']\n"),
      file("src.yml", "when:\n  - event: push\n    branch: main\n    paths: ['src/**/*.ts']\n"),
      file("all.yml", "when:\n  - event: push\n    branch: main\n"),
    ];
    assert.deepEqual(names(compileGen2(files, push(), { changedFiles: ["src/a/b.ts"] })), [
      "all.yml",
      "src.yml",
    ]);
    assert.deepEqual(names(compileGen2(files, push(), { changedFiles: ["docs/x.md", "README"] })), [
      "all.yml",
      "docs.yml",
    ]);
    assert.deepEqual(names(compileGen2(files, push(), { changedFiles: [] })), ["all.yml"]);
    assert.deepEqual(names(compileGen2(files, push())), ["all.yml", "docs.yml", "src.yml"]);
  });

  it("Gen2 clone defaults: tags and submodules true when omitted; explicit values kept", () => {
    const r = compileGen2(
      [file("a.yml", ""), file("b.yml", "clone:\n  tags: false\n  submodules: false\n  depth: 5\n")],
      push(),
    );
    assert.deepEqual(
      r.record?.workflows.map((w) => [w.name, w.clone]),
      [
        ["a.yml", { depth: 0, skip: false, submodules: true, tags: true }],
        ["b.yml", { depth: 5, skip: false, submodules: false, tags: false }],
      ],
    );
  });

  it("keeps the Gen2 trigger metadata (repoDid, no action) in the record", () => {
    const trigger = pr();
    const r = compileGen2([file("a.yml", "")], trigger);
    assert.equal(r.record?.$type, "");
    assert.deepEqual(r.record?.triggerMetadata, trigger);
    assert.equal(r.record?.workflows[0]?.raw.startsWith("engine: nixery\n"), true);
  });

  it("manual triggers run every workflow; parse errors drop files; no engine means kubernetes (issue 14)", () => {
    const manual: Gen2TriggerMetadata = { kind: "manual", repo, manual: { sha: SHA } };
    const r = compileGen2(
      [
        file("a.yml", "when:\n  - event: push\n    branch: nope\n"),
        { name: "broken.yml", content: "engine: [unclosed" },
        { name: "noengine.yml", content: "steps: []\n" },
      ],
      manual,
    );
    assert.deepEqual(names(r), ["a.yml", "noengine.yml"]);
    assert.equal(r.record?.workflows[1]?.engine, "kubernetes");
    assert.deepEqual(
      r.diagnostics.map((d) => [d.file, d.severity, d.kind]),
      [
        ["broken.yml", "error", "parse error"],
        ["noengine.yml", "warning", "no steps"],
      ],
    );
  });
});
