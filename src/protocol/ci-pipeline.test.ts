import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildCiPipeline, type StoredPipeline } from "./ci-pipeline.ts";
import { validate } from "./lexicons.ts";
import { rfc3339Seconds } from "./time.ts";

const NEW = "2".repeat(40);
const OLD = "1".repeat(40);
const repo = {
  knot: "knot.example.com",
  did: "did:plc:owner",
  repo: "3kabc",
  repoDid: "did:plc:repo",
  defaultBranch: "main",
};

const push: StoredPipeline = {
  id: "3mrkp6iz6os2o",
  createdAt: "2026-07-26T12:00:00.987654Z",
  trigger: { kind: "push", repo, push: { ref: "refs/heads/main", oldSha: OLD, newSha: NEW } },
  workflows: ["build.yml", "ci.yml", "lint.yml"],
  statuses: [
    { workflow: "ci.yml", status: "pending", createdAt: "2026-07-26T12:00:01Z" },
    { workflow: "ci.yml", status: "running", createdAt: "2026-07-26T12:00:02.5Z" },
    { workflow: "build.yml", status: "running", createdAt: "2026-07-26T12:00:03Z" },
    { workflow: "ci.yml", status: "failed", createdAt: new Date("2026-07-26T12:01:00Z"), error: "exit 1" },
  ],
};

describe("buildCiPipeline", () => {
  it("builds the §2.7 object for a push", () => {
    const p = buildCiPipeline(push);
    assert.deepEqual(p, {
      commit: NEW,
      createdAt: "2026-07-26T12:00:00Z",
      id: "3mrkp6iz6os2o",
      repo: "did:plc:repo",
      trigger: { $type: "sh.tangled.ci.trigger#push", newSha: NEW, oldSha: OLD, ref: "refs/heads/main" },
      workflows: [
        { id: "build.yml", name: "build.yml", status: "running", startedAt: "2026-07-26T12:00:03Z" },
        {
          id: "ci.yml",
          name: "ci.yml",
          status: "failed",
          startedAt: "2026-07-26T12:00:02Z",
          finishedAt: "2026-07-26T12:01:00Z",
          error: "exit 1",
        },
        { id: "lint.yml", name: "lint.yml", status: "pending" },
      ],
    });
    validate.pipeline(p);
    validate.getPipelineOutput(p);
    validate.queryPipelinesOutput({ pipelines: [p], total: 1 });
  });

  it("builds a fork pull request (sourceRepo) and a manual run", () => {
    const pr = buildCiPipeline({
      ...push,
      statuses: [],
      trigger: {
        kind: "pull_request",
        repo,
        sourceRepo: "did:plc:fork",
        pullRequest: { sourceBranch: "feat", targetBranch: "main", sourceSha: NEW, action: "synchronize" },
      },
    });
    assert.equal(pr.commit, NEW);
    assert.equal(pr.sourceRepo, "did:plc:fork");
    assert.deepEqual(pr.trigger, {
      $type: "sh.tangled.ci.trigger#pullRequest",
      action: "synchronize",
      sourceBranch: "feat",
      sourceRepo: "did:plc:fork",
      sourceSha: NEW,
      targetBranch: "main",
    });
    validate.pipeline(pr);
    const manual = buildCiPipeline({
      ...push,
      statuses: [],
      trigger: {
        kind: "manual",
        repo,
        manual: { sha: OLD, ref: "refs/heads/x", inputs: [{ key: "k", value: "v" }] },
      },
    });
    assert.equal(manual.commit, OLD);
    assert.equal(manual.sourceRepo, undefined);
    assert.deepEqual(manual.trigger, {
      $type: "sh.tangled.ci.trigger#manual",
      inputs: [{ key: "k", value: "v" }],
      ref: "refs/heads/x",
      sha: OLD,
    });
    validate.pipeline(manual);
  });

  it("refuses a trigger without its data", () => {
    assert.throws(() => buildCiPipeline({ ...push, trigger: { kind: "push", repo } }), /carries no/);
  });
});

describe("rfc3339Seconds", () => {
  it("truncates to seconds in UTC", () => {
    assert.equal(rfc3339Seconds("2026-07-26T12:00:00.999999999Z"), "2026-07-26T12:00:00Z");
    assert.equal(rfc3339Seconds("2026-07-26T14:00:00+02:00"), "2026-07-26T12:00:00Z");
    assert.equal(rfc3339Seconds(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678))), "2026-01-02T03:04:05Z");
    assert.throws(() => rfc3339Seconds("yesterday"), RangeError);
  });
});
