import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BuildError } from "../../api/contract/index.ts";
import { buildRunnerSpec, buildRunnerSpecConfigMap, effectiveTimeoutSeconds } from "./runner-spec.ts";
import { config, OWNER, spec } from "./testdata/fixtures.ts";

describe("buildRunnerSpec", () => {
  it("keeps every step and its id, replacing only the clone step's command", () => {
    const s = spec();
    assert.deepEqual(buildRunnerSpec(s.workflows[0]!, config()), {
      version: 1,
      workspace: "/tangled/workspace",
      timeoutSeconds: 300,
      heartbeatSeconds: 10,
      steps: [
        {
          id: 0,
          name: "Clone repository into workspace",
          command: "cat /loom/setup/clone.log",
          kind: "system",
          env: [],
        },
        {
          id: 1,
          name: "Test",
          command: "npm ci && npm test",
          kind: "user",
          env: [
            { name: "CI", value: "true" },
            { name: "NPM_TOKEN", secret: "NPM_TOKEN" },
          ],
        },
      ],
    });
  });

  it("a microvm workflow's steps run in /workspace/repo, the dev-shell step as it is", () => {
    const devShell = {
      id: 1,
      name: "Set up dev shell",
      kind: "system" as const,
      command: "nix print-dev-env --impure -L --expr '...' > /tangled/home/.cache/loom/devshell.sh",
      env: [{ name: "NIX_CONFIG", value: "experimental-features = nix-command flakes" }],
    };
    const s = spec((x) => {
      x.workflows[0]!.image = "nixos";
      x.workflows[0]!.microvm = { image: "nixos" };
      x.workflows[0]!.steps = [x.workflows[0]!.steps[0]!, devShell];
    });
    const runnerSpec = buildRunnerSpec(s.workflows[0]!, config());
    assert.equal(runnerSpec.workspace, "/workspace/repo");
    assert.deepEqual(runnerSpec.steps[1], devShell);
  });

  it("leaves the steps alone when the clone is skipped or no step is marked", () => {
    const skipped = spec((x) => {
      x.workflows[0]!.clone = { skip: true, stepId: 0 };
    });
    assert.equal(
      buildRunnerSpec(skipped.workflows[0]!, config()).steps[0]!.command,
      "git init && git fetch ...",
    );
    const unmarked = spec((x) => {
      x.workflows[0]!.clone = { url: "https://k/d/r" };
    });
    assert.equal(
      buildRunnerSpec(unmarked.workflows[0]!, config()).steps[0]!.command,
      "git init && git fetch ...",
    );
  });
});

describe("buildRunnerSpecConfigMap", () => {
  it("carries the spec as compact JSON in an immutable ConfigMap named after the Job", () => {
    const s = spec();
    const runnerSpec = buildRunnerSpec(s.workflows[0]!, config());
    const cm = buildRunnerSpecConfigMap({
      owner: OWNER,
      pipeline: s.pipeline,
      workflow: s.workflows[0]!,
      jobName: "job-1",
      spec: runnerSpec,
    });
    assert.equal(cm.metadata!.name, "job-1-spec");
    assert.equal(cm.immutable, true);
    assert.deepEqual(Object.keys(cm.data!), ["spec.json"]);
    assert.deepEqual(JSON.parse(cm.data!["spec.json"]!), runnerSpec);
    assert.equal(cm.metadata!.ownerReferences![0]!.uid, OWNER.uid);
  });

  it("refuses a spec a ConfigMap cannot hold", () => {
    const s = spec();
    const big = buildRunnerSpec(s.workflows[0]!, config());
    big.steps[1]!.command = "x".repeat(1_000_001);
    assert.throws(
      () =>
        buildRunnerSpecConfigMap({
          owner: OWNER,
          pipeline: s.pipeline,
          workflow: s.workflows[0]!,
          jobName: "j",
          spec: big,
        }),
      (err: unknown) => err instanceof BuildError && err.reason === "InvalidSpec",
    );
  });
});

describe("effectiveTimeoutSeconds", () => {
  it("caps a workflow's timeout and gives the cap to workflows without one", () => {
    const cfg = config({ timeouts: { maxWorkflowSeconds: 3600 } });
    const wf = (timeoutSeconds: number) => ({ ...spec().workflows[0]!, timeoutSeconds });
    assert.deepEqual(
      [300, 3600, 7200, 0].map((t) => effectiveTimeoutSeconds(wf(t), cfg)),
      [300, 3600, 3600, 3600],
    );
    assert.equal(buildRunnerSpec(wf(0), cfg).timeoutSeconds, 3600);
  });
});
