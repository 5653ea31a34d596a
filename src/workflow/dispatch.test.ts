import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { validate } from "../protocol/lexicons.ts";
import { DispatchError, selectWorkflows, triggerFromCiInput } from "./dispatch.ts";
import type { KnownRepo } from "./push.ts";

const SHA = "a".repeat(40);
const repo: KnownRepo = {
  knot: "knot.example.com",
  ownerDid: "did:plc:owner",
  repoDid: "did:plc:repo",
  rkey: "3kabc",
  defaultBranch: "main",
};
const repoMeta = {
  knot: "knot.example.com",
  did: "did:plc:owner",
  repo: "3kabc",
  repoDid: "did:plc:repo",
  defaultBranch: "main",
};

describe("triggerFromCiInput", () => {
  it("maps a manual retry (the appview's retry button)", () => {
    const input = validate.triggerPipelineInput({
      repo: "did:plc:repo",
      trigger: {
        $type: "sh.tangled.ci.trigger#manual",
        sha: SHA,
        ref: "refs/heads/main",
        inputs: [{ key: "k", value: "v" }],
      },
      workflows: ["ci.yml"],
    });
    assert.deepEqual(triggerFromCiInput(input, repo), {
      kind: "manual",
      repo: repoMeta,
      manual: { sha: SHA, ref: "refs/heads/main", inputs: [{ key: "k", value: "v" }] },
    });
  });

  it("maps a fork pull request and keeps its sourceRepo", () => {
    const input = validate.triggerPipelineInput({
      repo: "did:plc:repo",
      trigger: {
        $type: "sh.tangled.ci.trigger#pullRequest",
        sourceRepo: "did:plc:fork",
        sourceSha: SHA,
        sourceBranch: "feat",
        targetBranch: "main",
        pull: "at://did:plc:author/sh.tangled.repo.pull/3kpull",
      },
    });
    assert.deepEqual(triggerFromCiInput(input, repo), {
      kind: "pull_request",
      repo: repoMeta,
      pullRequest: {
        sourceBranch: "feat",
        targetBranch: "main",
        sourceSha: SHA,
        pull: "at://did:plc:author/sh.tangled.repo.pull/3kpull",
      },
      sourceRepo: "did:plc:fork",
    });
  });

  it("drops a sourceRepo equal to the repo, refuses another repo", () => {
    const same = validate.triggerPipelineInput({
      repo: "did:plc:repo",
      trigger: { $type: "sh.tangled.ci.trigger#manual", sha: SHA, sourceRepo: "did:plc:repo" },
    });
    assert.equal(triggerFromCiInput(same, repo).sourceRepo, undefined);
    assert.throws(() => triggerFromCiInput({ ...same, repo: "did:plc:other" }, repo), DispatchError);
  });
});

describe("selectWorkflows", () => {
  const files = [
    { name: "a.yml", content: "" },
    { name: "b.yml", content: "" },
  ];
  it("selects all, or the named ones, or refuses unknown names", () => {
    assert.deepEqual(
      selectWorkflows(files).map((f) => f.name),
      ["a.yml", "b.yml"],
    );
    assert.deepEqual(
      selectWorkflows(files, []).map((f) => f.name),
      ["a.yml", "b.yml"],
    );
    assert.deepEqual(
      selectWorkflows(files, ["b.yml"]).map((f) => f.name),
      ["b.yml"],
    );
    assert.throws(() => selectWorkflows(files, ["b.yml", "gone.yml"]), /gone\.yml/);
  });
});
