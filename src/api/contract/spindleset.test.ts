import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BuildError } from "./errors.ts";
import { shortHash } from "./names.ts";
import { buildSpindleSet } from "./spindleset.ts";
import { specInput } from "./testdata/fixtures.ts";

const NAME = `knot-example-com-3lq2abcxyz22k-${shortHash(["knot.example.com", "3lq2abcxyz22k"], 10)}`;

describe("buildSpindleSet", () => {
  it("names, labels and validates the run, pointing at its Secret", () => {
    const { secretRef: _, ...spec } = specInput();
    const ss = buildSpindleSet({ namespace: "loom", spec, withSecrets: true });
    const wf = spec.workflows[0]!;
    assert.deepEqual(ss, {
      apiVersion: "loom.tangled.sh/v1alpha1",
      kind: "SpindleSet",
      metadata: {
        name: NAME,
        namespace: "loom",
        labels: {
          "app.kubernetes.io/managed-by": "loom",
          "app.kubernetes.io/name": "loom",
          "loom.tangled.sh/spindleset": NAME,
        },
        annotations: { "loom.tangled.sh/knot": "knot.example.com", "loom.tangled.sh/rkey": "3lq2abcxyz22k" },
      },
      spec: {
        pipeline: spec.pipeline,
        trigger: spec.trigger,
        secretRef: { name: `${NAME}-secrets` },
        cancel: false,
        cancelWorkflows: [],
        workflows: [
          {
            ...wf,
            secretKeys: ["NPM_TOKEN", "APP_PASSWORD"],
            clone: { ...wf.clone, skip: false, depth: 1, submodules: false },
            steps: [{ ...wf.steps[0]!, env: [] }, wf.steps[1]],
          },
        ],
      },
    });
  });

  it("refuses a spec that would fail in the controller, saying why", () => {
    const { secretRef: _, ...spec } = specInput();
    assert.throws(
      () => buildSpindleSet({ namespace: "loom", spec, withSecrets: false }),
      (err: unknown) =>
        err instanceof BuildError &&
        err.reason === "InvalidSpec" &&
        err.message.startsWith("spec.workflows[0].secretKeys: secret keys need spec.secretRef"),
    );
  });
});
