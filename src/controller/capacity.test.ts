import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Job } from "@kubernetes/client-node";
import { Capacity } from "./capacity.ts";

const job = (name: string, done = false): V1Job => ({
  metadata: { name },
  ...(done && { status: { conditions: [{ type: "Complete", status: "True" }] } }),
});

describe("Capacity", () => {
  it("counts unfinished Jobs in the cache plus creates the cache has not seen yet", () => {
    const jobs: V1Job[] = [job("a"), job("old", true)];
    let now = 0;
    const cap = new Capacity(
      3,
      () => jobs,
      () => now,
    );
    assert.equal(cap.tryReserve("a"), true, "an existing Job is adopted, not counted twice");
    assert.equal(cap.tryReserve("b"), true);
    assert.equal(cap.tryReserve("c"), true);
    assert.equal(cap.tryReserve("d"), false, "a, b, c: the limit of 3");
    assert.equal(cap.inUse(), 3);
    jobs.push(job("b"));
    assert.equal(cap.tryReserve("d"), false, "b seen in the cache still counts once");
    cap.release("c");
    assert.equal(cap.tryReserve("d"), true, "a failed create frees its slot");
    jobs[0] = job("a", true);
    assert.equal(cap.tryReserve("e"), true, "a finished Job frees its slot");
    now = 61_000;
    assert.equal(cap.inUse(), 1, "reservations the cache never confirmed expire");
  });

  it("frees a reservation once the cache has seen its Job, even if the Job is gone again", () => {
    const jobs: V1Job[] = [];
    const cap = new Capacity(
      2,
      () => jobs,
      () => 0,
    );
    assert.equal(cap.tryReserve("a"), true);
    assert.equal(cap.tryReserve("b"), true);
    // a and b are created, seen by the watch and deleted (a cancel right after the create)
    // before the next capacity check: the cache never holds them when it is looked at.
    cap.observed("a");
    cap.observed("b");
    assert.equal(cap.inUse(), 0, "nothing runs");
    assert.equal(cap.tryReserve("c"), true, "the slots of deleted Jobs are free at once");
  });
});
