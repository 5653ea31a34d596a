import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { SHA_F } from "./testkit.ts";
import { parsePipelineRecord, parseTriggerJson, parseTriggerMetadata } from "./trigger.ts";

const envelope = (kind: string) =>
  JSON.parse(
    readFileSync(new URL(`./testdata/knot-stream/pipeline-${kind}.envelope.json`, import.meta.url), "utf8"),
  );

describe("trigger metadata validation (lexicon sh.tangled.pipeline#triggerMetadata)", () => {
  for (const kind of ["push", "pull_request"]) {
    it(`accepts the ${kind} envelope's trigger unchanged`, () => {
      const t = envelope(kind).event.triggerMetadata;
      const r = parseTriggerMetadata(t);
      assert.ok(r.ok);
      assert.deepEqual(r.trigger, t);
    });
  }

  it("accepts manual with and without inputs, and a missing defaultBranch", () => {
    const repo = { knot: "k", did: "did:plc:x", repo: "r" };
    const r = parseTriggerMetadata({ kind: "manual", repo, manual: { inputs: [{ key: "a", value: "b" }] } });
    assert.ok(r.ok);
    assert.equal(r.trigger.repo.defaultBranch, "");
    assert.ok(parseTriggerMetadata({ kind: "manual", repo, manual: {} }).ok);
  });

  const bad: [string, unknown, RegExp][] = [
    ["not an object", 5, /triggerMetadata: /],
    [
      "unknown kind",
      { kind: "schedule", repo: { knot: "k", did: "did:plc:x", repo: "r" } },
      /triggerMetadata\.kind: /,
    ],
    ["missing repo", { kind: "push" }, /triggerMetadata\.repo: /],
    [
      "bad DID",
      { kind: "push", repo: { knot: "k", did: "alice", repo: "r" } },
      /triggerMetadata\.repo\.did: must be a DID/,
    ],
    [
      "short SHA",
      {
        kind: "push",
        repo: { knot: "k", did: "did:plc:x", repo: "r" },
        push: { ref: "refs/heads/x", oldSha: SHA_F, newSha: "abc" },
      },
      /triggerMetadata\.push\.newSha: must be a 40-character hex SHA/,
    ],
    [
      "shell in a SHA",
      {
        kind: "pull_request",
        repo: { knot: "k", did: "did:plc:x", repo: "r" },
        pullRequest: {
          sourceBranch: "a",
          targetBranch: "b",
          sourceSha: `$(reboot)${"a".repeat(31)}`,
          action: "create",
        },
      },
      /pullRequest\.sourceSha/,
    ],
    [
      "input without value",
      {
        kind: "manual",
        repo: { knot: "k", did: "did:plc:x", repo: "r" },
        manual: { inputs: [{ key: "a" }] },
      },
      /manual\.inputs\.0\.value/,
    ],
  ];
  for (const [name, value, message] of bad) {
    it(`rejects ${name} with the field's path`, () => {
      const r = parseTriggerMetadata(value);
      assert.equal(r.ok, false);
      assert.match(r.ok ? "" : r.error, message);
    });
  }

  it("reports invalid JSON instead of throwing", () => {
    const r = parseTriggerJson("{kind:");
    assert.equal(r.ok, false);
    assert.match(r.ok ? "" : r.error, /not JSON/);
  });
});

describe("manual inputs must fit a process environment", () => {
  const repo = { knot: "k", did: "did:plc:x", repo: "r" };
  for (const [key, value] of [
    ["a=b", "v"],
    ["", "v"],
    ["a\u0000", "v"],
    ["a", "v\u0000"],
  ]) {
    it(`rejects ${JSON.stringify({ key, value })}`, () => {
      assert.equal(
        parseTriggerMetadata({ kind: "manual", repo, manual: { inputs: [{ key, value }] } }).ok,
        false,
      );
    });
  }
});

describe("pipeline record validation (lexicon sh.tangled.pipeline)", () => {
  for (const kind of ["push", "pull_request"]) {
    it(`accepts the ${kind} envelope's record unchanged`, () => {
      const event = envelope(kind).event;
      const r = parsePipelineRecord(event);
      assert.ok(r.ok, r.ok ? "" : r.error);
      assert.equal(JSON.stringify(r.record), JSON.stringify(event));
    });
  }
  it("names the offending field", () => {
    const event = envelope("push").event;
    const bad = {
      ...event,
      workflows: [{ ...event.workflows[0], clone: { depth: "1", skip: false, submodules: false } }],
    };
    const r = parsePipelineRecord(bad);
    assert.equal(r.ok, false);
    assert.match(r.ok ? "" : r.error, /pipeline\.workflows\.0\.clone\.depth: /);
  });
  it("refuses workflow names that are paths", () => {
    const event = envelope("push").event;
    for (const name of ["../x.yml", "a/b.yml", "..", ""]) {
      const r = parsePipelineRecord({ ...event, workflows: [{ ...event.workflows[0], name }] });
      assert.equal(r.ok, false, name);
    }
  });
});

describe("Gen2 manual fields", () => {
  const repo = { knot: "k", did: "did:plc:x", repo: "r", repoDid: "did:plc:repo" };
  it("accepts sha and ref, and checks the sha", () => {
    assert.ok(
      parseTriggerMetadata({ kind: "manual", repo, manual: { sha: SHA_F, ref: "refs/heads/main" } }).ok,
    );
    assert.equal(parseTriggerMetadata({ kind: "manual", repo, manual: { sha: "main" } }).ok, false);
  });
});
