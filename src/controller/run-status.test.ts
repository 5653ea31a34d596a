import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { WorkflowStatus } from "../api/v1alpha1/spindleset.ts";
import { runFinished, runStatus } from "./run-status.ts";

const T1 = new Date("2026-11-27T12:00:00Z");
const T2 = new Date("2026-11-27T12:05:00Z");
const ok: WorkflowStatus = {
  name: "a",
  phase: "success",
  reason: "Succeeded",
  startTime: "2026-11-27T11:59:00Z",
};
const bad: WorkflowStatus = {
  name: "b",
  phase: "failed",
  reason: "StepFailed",
  message: "the runner exited 2",
};

describe("runStatus", () => {
  it("is Unknown while a workflow is unfinished, then False with the worst outcome", () => {
    const running = runStatus(
      undefined,
      ["a", "b"],
      [ok, { name: "b", phase: "running", reason: "Running" }],
      3,
      T1,
    );
    assert.deepEqual(
      [running.phase, running.progress, running.completionTime],
      ["running", "1/2", undefined],
    );
    assert.equal(running.conditions[0]!.status, "Unknown");
    assert.equal(running.observedGeneration, 3);
    assert.equal(running.startTime, "2026-11-27T11:59:00Z");
    const done = runStatus(running, ["a", "b"], [ok, bad], 3, T2);
    assert.deepEqual([done.phase, done.reason, done.progress], ["failed", "StepFailed", "2/2"]);
    assert.equal(done.conditions[0]!.status, "False");
    assert.match(done.conditions[0]!.message, /b: the runner exited 2/);
    assert.equal(done.completionTime, "2026-11-27T12:05:00Z");
    assert.ok(runFinished(done, ["a", "b"]));
  });

  it("keeps the completion time while finished, and finishes anew when a workflow is added", () => {
    const done = runStatus(undefined, ["a"], [ok], 1, T1);
    assert.equal(runStatus(done, ["a"], [ok], 1, T2).completionTime, "2026-11-27T12:00:00Z");
    const grown = runStatus(done, ["a", "b"], [ok], 2, T2);
    assert.equal(grown.completionTime, undefined);
    assert.ok(!runFinished(grown, ["a", "b"]));
    const again = runStatus(grown, ["a", "b"], [ok, { ...ok, name: "b" }], 2, T2);
    assert.equal(again.completionTime, "2026-11-27T12:05:00Z");
    assert.equal(again.conditions[0]!.status, "True");
  });
});
