import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SpindleSet } from "../api/v1alpha1/spindleset.ts";
import { needsJob } from "./controller.ts";

function run(workflows: string[], status?: { name: string; phase: string; jobName?: string }[]): SpindleSet {
  return {
    apiVersion: "loom.tangled.sh/v1alpha1",
    kind: "SpindleSet",
    metadata: { name: "r", namespace: "ns", uid: "u" },
    spec: { workflows: workflows.map((name) => ({ name })) },
    ...(status && { status: { workflows: status } }),
  } as unknown as SpindleSet;
}

describe("needsJob (which runs the queue takes first)", () => {
  it("is true for a new run and for a workflow added beside a started one", () => {
    assert.equal(needsJob(run(["a"])), true);
    assert.equal(needsJob(run(["a", "b"], [{ name: "a", phase: "running", jobName: "j-a" }])), true);
  });

  it("is true for a run waiting for capacity (no Job yet)", () => {
    assert.equal(needsJob(run(["a"], [{ name: "a", phase: "pending" }])), true);
  });

  it("is false once every workflow has a Job or an end, and for a cancelled or deleted run", () => {
    assert.equal(
      needsJob(
        run(
          ["a", "b"],
          [
            { name: "a", phase: "pending", jobName: "j-a" },
            { name: "b", phase: "failed" },
          ],
        ),
      ),
      false,
    );
    const cancelled = run(["a"]);
    (cancelled.spec as { cancel?: boolean }).cancel = true;
    assert.equal(needsJob(cancelled), false);
    const deleted = run(["a"]);
    deleted.metadata.deletionTimestamp = new Date();
    assert.equal(needsJob(deleted), false);
  });
});
