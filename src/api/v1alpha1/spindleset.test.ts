import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { parseSpindleSetSpec, phaseForReason, REASONS, type SpindleSetSpecInput } from "./spindleset.ts";

const sample = parse(
  readFileSync(new URL("../../../config/samples/spindleset.yaml", import.meta.url), "utf8"),
);

function spec(overrides: Partial<SpindleSetSpecInput> = {}): SpindleSetSpecInput {
  return {
    pipeline: { knot: "knot.example.com", rkey: "3lq2abcxyz22k" },
    trigger: { kind: "manual", repo: { knot: "knot.example.com", did: "did:plc:x", repo: "hello" } },
    workflows: [
      {
        name: "a.yml",
        wid: "knot.example.com-3lq2abcxyz22k-a.yml",
        image: "alpine:3",
        architecture: "arm64",
        timeoutSeconds: 60,
        clone: { skip: true },
        steps: [{ id: 0, name: "hi", command: "echo hi", kind: "user" }],
      },
    ],
    ...overrides,
  };
}

describe("SpindleSet spec", () => {
  it("accepts the committed sample and fills in defaults", () => {
    const result = parseSpindleSetSpec(sample.spec);
    assert.ok(result.ok, JSON.stringify(result));
    const wf = result.value.workflows[0]!;
    assert.deepEqual(wf.clone, {
      skip: false,
      url: "https://knot.example.com/did:plc:abcdefghijklmnopqrstuvwx/hello",
      sha: "9f2c3a1e0b7d4c6a8e5f1d2b3c4a5e6f7a8b9c0d",
      depth: 1,
      submodules: false,
      stepId: 0,
    });
    assert.deepEqual(wf.steps[0]!.env, []);
    assert.equal(result.value.cancel, false);
  });

  it("fills defaults on a minimal spec", () => {
    const result = parseSpindleSetSpec(spec());
    assert.ok(result.ok);
    assert.deepEqual(result.value.workflows[0]!.secretKeys, []);
    assert.deepEqual(result.value.workflows[0]!.clone, { skip: true, depth: 1, submodules: false });
  });

  it("rejects an env entry carrying both a value and a secret", () => {
    const bad = spec();
    bad.workflows[0]!.steps[0]!.env = [{ name: "X", value: "v", secret: "X" } as never];
    const result = parseSpindleSetSpec(bad);
    assert.equal(result.ok, false);
  });

  it("reports cross-field mistakes with their paths", () => {
    const bad = spec();
    const wf = bad.workflows[0]!;
    wf.secretKeys = ["TOKEN"];
    wf.clone = { skip: false, stepId: 7 };
    wf.steps = [
      { id: 0, name: "a", command: "true", kind: "user", env: [{ name: "T", secret: "OTHER" }] },
      { id: 0, name: "b", command: "true", kind: "user" },
    ];
    bad.workflows.push({ ...wf });
    const result = parseSpindleSetSpec(bad);
    assert.equal(result.ok, false);
    assert.deepEqual(!result.ok && result.issues.slice(0, 6), [
      "spec.workflows[0].secretKeys: secret keys need spec.secretRef",
      "spec.workflows[0].steps[0].env[0].secret: secret OTHER is not in the workflow's secretKeys",
      "spec.workflows[0].steps[1].id: duplicate step id",
      "spec.workflows[0].clone.url: required unless clone.skip",
      "spec.workflows[0].clone.stepId: must name a system step",
      "spec.workflows[1].name: duplicate workflow name",
    ]);
  });

  it("maps every reason to a phase", () => {
    const phases = Object.fromEntries(REASONS.map((r) => [r, phaseForReason(r)]));
    assert.deepEqual(phases, {
      Pending: "pending",
      WaitingForCapacity: "pending",
      Scheduled: "pending",
      Running: "running",
      Succeeded: "success",
      StepFailed: "failed",
      TimedOut: "timeout",
      DeadlineExceeded: "timeout",
      ImagePullFailed: "failed",
      Unschedulable: "failed",
      PodCreateFailed: "failed",
      NoMatchingProfile: "failed",
      Unsupported: "failed",
      InitContainerFailed: "failed",
      CloneFailed: "failed",
      RunnerFailed: "failed",
      RunnerSilent: "failed",
      OOMKilled: "failed",
      Evicted: "failed",
      NodeLost: "failed",
      Cancelled: "cancelled",
      SecretMissing: "failed",
      InvalidSpec: "failed",
      JobLost: "failed",
      InternalError: "failed",
    });
  });
});
