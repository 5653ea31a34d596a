import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { WorkflowStatus } from "./spindleset.ts";
import { setCondition, summarizeRun } from "./status.ts";

const wf = (
  name: string,
  phase: WorkflowStatus["phase"],
  reason: WorkflowStatus["reason"],
): WorkflowStatus => ({
  name,
  phase,
  reason,
});

describe("summarizeRun", () => {
  it("is pending, with the waiting reason, before anything runs", () => {
    assert.deepEqual(summarizeRun(["a", "b"], [wf("a", "pending", "WaitingForCapacity")]), {
      phase: "pending",
      reason: "WaitingForCapacity",
      progress: "0/2",
    });
  });

  it("is running while any workflow runs, counting finished ones", () => {
    assert.deepEqual(
      summarizeRun(["a", "b", "c"], [wf("a", "success", "Succeeded"), wf("b", "running", "Running")]),
      {
        phase: "running",
        reason: "Running",
        progress: "1/3",
      },
    );
  });

  it("takes the worst outcome once all are finished", () => {
    const statuses = [
      wf("a", "success", "Succeeded"),
      wf("b", "timeout", "TimedOut"),
      wf("c", "failed", "OOMKilled"),
    ];
    assert.deepEqual(summarizeRun(["a", "b", "c"], statuses), {
      phase: "failed",
      reason: "OOMKilled",
      progress: "3/3",
    });
    assert.deepEqual(summarizeRun(["a", "b"], statuses.slice(0, 2)), {
      phase: "timeout",
      reason: "TimedOut",
      progress: "2/2",
    });
    assert.deepEqual(summarizeRun(["a"], statuses.slice(0, 1)), {
      phase: "success",
      reason: "Succeeded",
      progress: "1/1",
    });
  });

  it("ignores statuses of workflows the spec does not have", () => {
    assert.deepEqual(
      summarizeRun(["a"], [wf("a", "success", "Succeeded"), wf("z", "failed", "StepFailed")]),
      {
        phase: "success",
        reason: "Succeeded",
        progress: "1/1",
      },
    );
  });
});

describe("setCondition", () => {
  const t0 = new Date("2026-11-27T16:00:00.123Z");
  const t1 = new Date("2026-11-27T16:05:00Z");

  it("adds a condition stamped with the time, at second precision", () => {
    assert.deepEqual(
      setCondition([], { type: "Succeeded", status: "Unknown", reason: "Running", message: "" }, t0),
      [
        {
          type: "Succeeded",
          status: "Unknown",
          reason: "Running",
          message: "",
          lastTransitionTime: "2026-11-27T16:00:00Z",
        },
      ],
    );
  });

  it("keeps the transition time when only reason or message change, and moves it when status changes", () => {
    const first = setCondition(
      [],
      { type: "Succeeded", status: "Unknown", reason: "Pending", message: "" },
      t0,
    );
    const same = setCondition(
      first,
      { type: "Succeeded", status: "Unknown", reason: "Running", message: "m" },
      t1,
    );
    assert.deepEqual(same, [
      {
        type: "Succeeded",
        status: "Unknown",
        reason: "Running",
        message: "m",
        lastTransitionTime: "2026-11-27T16:00:00Z",
      },
    ]);
    const done = setCondition(
      same,
      { type: "Succeeded", status: "True", reason: "Succeeded", message: "" },
      t1,
    );
    assert.deepEqual(done, [
      {
        type: "Succeeded",
        status: "True",
        reason: "Succeeded",
        message: "",
        lastTransitionTime: "2026-11-27T16:05:00Z",
      },
    ]);
  });
});
