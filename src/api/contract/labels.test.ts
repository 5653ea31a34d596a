import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isLabelKey, isLabelValue, runAnnotations, selectorString, workflowLabels } from "./labels.ts";
import { shortHash } from "./names.ts";

describe("labels", () => {
  it("labels a workflow's objects for every lookup", () => {
    const wid = "knot.example.com-3lq2abcxyz22k-build.yml";
    const labels = workflowLabels("ss-1", wid);
    assert.deepEqual(labels, {
      "app.kubernetes.io/managed-by": "loom",
      "app.kubernetes.io/name": "loom",
      "loom.tangled.sh/spindleset": "ss-1",
      "app.kubernetes.io/component": "workflow",
      "loom.tangled.sh/workflow": shortHash(wid),
    });
    for (const [key, value] of Object.entries(labels)) assert.ok(isLabelKey(key) && isLabelValue(value), key);
    assert.equal(selectorString({ a: "1", "b/c": "2" }), "a=1,b/c=2");
  });

  it("keeps knot and rkey verbatim in annotations, where any string is allowed", () => {
    assert.deepEqual(runAnnotations({ knot: "localhost:5555", rkey: "3lq" }), {
      "loom.tangled.sh/knot": "localhost:5555",
      "loom.tangled.sh/rkey": "3lq",
    });
  });

  it("validates label keys and values as Kubernetes does", () => {
    for (const ok of ["cpu", "kubernetes.io/arch", "nvidia.com/gpu", "a_b.c-d"])
      assert.ok(isLabelKey(ok), ok);
    for (const bad of ["", "-a", "a/", "/a", "Upper.Case/x", "a/b/c", "x".repeat(64)])
      assert.ok(!isLabelKey(bad), bad);
    for (const ok of ["", "amd64", "a.b_c-d"]) assert.ok(isLabelValue(ok), ok);
    for (const bad of ["-a", "a-", "a:b", "x".repeat(64)]) assert.ok(!isLabelValue(bad), bad);
  });
});
