import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { EngineRunPlan } from "../engine.ts";
import { runSpecFromPlan, triggerFromPlan } from "./spec.ts";
import { outcomeFrom } from "./status.ts";

function plan(env: Record<string, string>, extra: Partial<EngineRunPlan> = {}): EngineRunPlan {
  const entries = Object.entries(env).map(([name, value]) => ({ name, value }));
  return {
    pipeline: { knot: "knot.example.com", rkey: "3lq2abc" },
    workflowName: "build.yml",
    wid: "knot.example.com-3lq2abc-build.yml",
    engine: "kubernetes",
    image: "alpine:3",
    architecture: "amd64",
    steps: [
      { id: 0, name: "clone", command: "git init", kind: "system", env: entries },
      {
        id: 1,
        name: "test",
        command: "make",
        kind: "user",
        env: [...entries, { name: "TOKEN", secret: "TOKEN" }],
      },
    ],
    secretKeys: ["TOKEN"],
    timeoutSeconds: 300,
    ...extra,
  };
}

describe("runSpecFromPlan", () => {
  it("freezes the plan as one workflow with its own clone step and secret keys only", () => {
    const r = runSpecFromPlan(
      plan({
        TANGLED_REPO_KNOT: "knot.example.com",
        TANGLED_REPO_DID: "did:plc:abc",
        TANGLED_REPO_NAME: "repo",
        TANGLED_REF: "refs/heads/main",
        TANGLED_SHA: "a".repeat(40),
      }),
      true,
    );
    assert.ok(r.ok, r.ok ? "" : r.error);
    const wf = r.spec.workflows[0]!;
    assert.deepEqual(wf.clone, { skip: true });
    assert.deepEqual(wf.secretKeys, ["TOKEN"]);
    assert.equal(wf.steps.length, 2);
    assert.deepEqual(r.spec.trigger, {
      kind: "push",
      repo: { knot: "knot.example.com", did: "did:plc:abc", repo: "repo" },
      push: { ref: "refs/heads/main", oldSha: "", newSha: "a".repeat(40) },
    });
  });

  it("hands the plan's clone to the clone-repo init container, keeping the clone step's id", () => {
    const clone = {
      url: "https://knot.example.com/did:plc:abc/repo",
      sha: "b".repeat(40),
      depth: 0,
      submodules: true,
      stepId: 0,
    };
    const r = runSpecFromPlan(plan({}, { clone }), true);
    assert.ok(r.ok, r.ok ? "" : r.error);
    // depth 0 (Gen1's "absent") fetches one commit, as the clone step's --depth=1 would.
    assert.deepEqual(r.spec.workflows[0]!.clone, { ...clone, skip: false, depth: 1 });
    const manual = runSpecFromPlan(plan({}, { clone: { ...clone, sha: undefined } }), true);
    assert.ok(manual.ok, manual.ok ? "" : manual.error);
    assert.equal("sha" in manual.spec.workflows[0]!.clone, false, "no sha: the remote's HEAD");
  });

  it("carries a microvm plan's image name, services and virtualisation; other plans have none", () => {
    const microvm = {
      image: "nixos",
      services: ["postgresql", "redis", "mariadb"],
      virtualisation: ["docker"],
      postgresql: { ensureDatabases: ["app"], ensureUsers: [{ name: "app", ensureDBOwnership: true }] },
      redis: { port: 0 },
      mysql: {
        ensureDatabases: ["app"],
        ensureUsers: [{ name: "app", ensurePermissions: [{ on: "app.*", privileges: "ALL PRIVILEGES" }] }],
      },
    };
    const r = runSpecFromPlan(plan({}, { engine: "microvm", image: "nixos", microvm }), true);
    assert.ok(r.ok, r.ok ? "" : r.error);
    assert.deepEqual(r.spec.workflows[0]!.microvm, microvm);
    assert.equal(r.spec.workflows[0]!.image, "nixos");
    const other = runSpecFromPlan(plan({}), true);
    assert.ok(other.ok);
    assert.equal("microvm" in other.spec.workflows[0]!, false);
  });

  it("refuses a plan the API would call InvalidSpec", () => {
    const r = runSpecFromPlan(plan({}, { architecture: "mips" }), true);
    assert.equal(r.ok, false);
    const noRef = runSpecFromPlan(plan({}), false);
    assert.equal(noRef.ok, false, "secret keys need a secretRef");
  });

  it("reads pull request and manual triggers from the environment", () => {
    assert.equal(triggerFromPlan(plan({ TANGLED_PR_ACTION: "open" })).kind, "pull_request");
    assert.deepEqual(triggerFromPlan(plan({ TANGLED_INPUT_FOO: "bar" })).manual, {
      inputs: [{ key: "foo", value: "bar" }],
    });
  });
});

describe("outcomeFrom", () => {
  const secrets = ["hunter2"];
  it("takes the phase from the controller and the step detail from an agreeing runner result", () => {
    const o = outcomeFrom({
      status: { name: "w", phase: "failed", reason: "StepFailed", message: "step 1 failed", exitCode: 3 },
      result: { status: "failed", exitCode: 3, failedStep: 1 },
      cancelReason: undefined,
      secrets,
    });
    assert.deepEqual(o, { status: "failed", exitCode: 3, failedStep: 1, error: "step 1 failed" });
  });
  it("ignores a disagreeing result, maps -1 to null, masks the message, keeps the cancel reason", () => {
    const o = outcomeFrom({
      status: { name: "w", phase: "failed", reason: "JobLost", message: "lost hunter2", exitCode: -1 },
      result: { status: "success", exitCode: 0, failedStep: null },
      cancelReason: undefined,
      secrets,
    });
    assert.deepEqual(o, { status: "failed", exitCode: null, failedStep: null, error: "lost ***" });
    const c = outcomeFrom({
      status: { name: "w", phase: "cancelled", reason: "Cancelled" },
      result: undefined,
      cancelReason: "User canceled the workflow",
      secrets,
    });
    assert.equal(c.error, "User canceled the workflow");
    const s = outcomeFrom({
      status: { name: "w", phase: "success", reason: "Succeeded" },
      result: undefined,
      cancelReason: undefined,
      secrets,
    });
    assert.deepEqual(s, { status: "success", exitCode: 0, failedStep: null });
  });
});
