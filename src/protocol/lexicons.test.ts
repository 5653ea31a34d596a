import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { LEXICON_DOCS, LexiconValidationError, validate } from "./lexicons.ts";

const SPEC = new URL("../../test/fixtures/spec/lexicons", import.meta.url).pathname;
const SHA = "a".repeat(40);

describe("Gen2 lexicon copies", () => {
  it("equal the spec's files (formatting aside)", {
    skip: !existsSync(SPEC) && "spec not on this machine",
  }, () => {
    for (const doc of LEXICON_DOCS) {
      const v2 = `${SPEC}/v2-2026-ci/${doc.id}.json`;
      const path = existsSync(v2) ? v2 : `${SPEC}/${doc.id}.json`;
      assert.deepEqual(doc, JSON.parse(readFileSync(path, "utf8")), doc.id);
    }
  });
});

describe("ci.* validators", () => {
  it("queryPipelines: repeatable params from a query string, limit as an integer", () => {
    const search = new URLSearchParams(
      `repo=did:plc:repo&commits=${SHA}&commits=${"b".repeat(40)}&kinds=push&kinds=manual&limit=30&cursor=1795000000000000001&other=x`,
    );
    assert.deepEqual(validate.queryPipelinesParams(search), {
      repo: "did:plc:repo",
      commits: [SHA, "b".repeat(40)],
      kinds: ["push", "manual"],
      limit: 30,
      cursor: "1795000000000000001",
    });
  });

  it("queryPipelines: refuses a missing repo, an unknown kind, a bad limit", () => {
    for (const q of [
      "kinds=push",
      "repo=did:plc:r&kinds=tag",
      "repo=did:plc:r&limit=abc",
      "repo=did:plc:r&limit=0",
      "repo=nope",
    ]) {
      assert.throws(
        () => validate.queryPipelinesParams(new URLSearchParams(q)),
        (err: unknown) => err instanceof LexiconValidationError && err.code === "InvalidRequest",
        q,
      );
    }
  });

  it("getPipeline and subscribePipelineLogs want a TID", () => {
    assert.deepEqual(validate.getPipelineParams(new URLSearchParams("pipeline=3mrkp6iz6os2o")), {
      pipeline: "3mrkp6iz6os2o",
    });
    assert.throws(
      () => validate.getPipelineParams(new URLSearchParams("pipeline=knot.example.com-3mrk")),
      /pipeline/,
    );
    assert.deepEqual(
      validate.subscribePipelineLogsParams(
        new URLSearchParams("pipeline=3mrkp6iz6os2o&workflows=a.yml&workflows=b.yml"),
      ),
      {
        pipeline: "3mrkp6iz6os2o",
        workflows: ["a.yml", "b.yml"],
      },
    );
  });

  it("describeWorkflowDefinition wants a 40-character sha", () => {
    assert.ok(validate.describeWorkflowDefinitionParams(new URLSearchParams(`repo=did:plc:r&sha=${SHA}`)));
    assert.throws(
      () => validate.describeWorkflowDefinitionParams(new URLSearchParams("repo=did:plc:r&sha=abc")),
      /sha/,
    );
    assert.ok(
      validate.describeWorkflowDefinitionOutput({ derived: true, hash: "sha256:00", workflows: ["a.yml"] }),
    );
    assert.ok(validate.describeWorkflowDefinitionOutput({ derived: false }));
  });

  it("triggerPipeline: manual and pullRequest triggers, not push", () => {
    const manual = {
      repo: "did:plc:r",
      trigger: { $type: "sh.tangled.ci.trigger#manual", sha: SHA },
      workflows: ["ci.yml"],
    };
    assert.deepEqual(validate.triggerPipelineInput(manual), manual);
    const pr = {
      repo: "did:plc:r",
      trigger: {
        $type: "sh.tangled.ci.trigger#pullRequest",
        sourceRepo: "did:plc:fork",
        sourceSha: SHA,
        targetBranch: "main",
      },
    };
    assert.deepEqual(validate.triggerPipelineInput(pr), pr);
    assert.throws(
      () =>
        validate.triggerPipelineInput({
          repo: "did:plc:r",
          trigger: { $type: "sh.tangled.ci.trigger#push", ref: "r", newSha: SHA, oldSha: SHA },
        }),
      LexiconValidationError,
    );
    assert.throws(
      () =>
        validate.triggerPipelineInput({
          repo: "did:plc:r",
          trigger: { $type: "sh.tangled.ci.trigger#manual" },
        }),
      /sha/,
    );
    assert.ok(
      validate.triggerPipelineOutput({
        pipeline: "at://did:web:ci.example.com/sh.tangled.pipeline/3mrkp6iz6os2o",
      }),
    );
  });

  it("cancelPipeline: repo DID and pipeline TID", () => {
    assert.ok(validate.cancelPipelineInput({ repo: "did:plc:r", pipeline: "3mrkp6iz6os2o" }));
    assert.throws(() => validate.cancelPipelineInput({ repo: "did:plc:r", pipeline: "nope" }), /pipeline/);
  });
});
