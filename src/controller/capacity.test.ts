import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Job } from "@kubernetes/client-node";
import { Capacity } from "./capacity.ts";

const job = (name: string, done = false): V1Job => ({
  metadata: { name },
  ...(done && { status: { conditions: [{ type: "Complete", status: "True" }] } }),
});

describe("Capacity", () => {
  it("counts unfinished Jobs the informer reported plus creates it has not reported yet", () => {
    let now = 0;
    const cap = new Capacity(3, () => now);
    cap.observe(job("a"));
    cap.observe(job("old", true));
    assert.equal(cap.tryReserve("a"), true, "an existing Job is adopted, not counted twice");
    assert.equal(cap.tryReserve("b"), true);
    assert.equal(cap.tryReserve("c"), true);
    assert.equal(cap.tryReserve("d"), false, "a, b, c: the limit of 3");
    assert.equal(cap.hasRoom("d"), false);
    assert.equal(cap.hasRoom("b"), true, "a reserved Job has its room");
    assert.equal(cap.inUse(), 3);
    cap.observe(job("b"));
    assert.equal(cap.tryReserve("d"), false, "b seen by the informer still counts once");
    cap.release("c");
    assert.equal(cap.tryReserve("d"), true, "a failed create frees its slot");
    cap.observe(job("a", true));
    assert.equal(cap.tryReserve("e"), true, "a finished Job frees its slot");
    assert.equal(cap.active, 1, "b");
    now = 61_000;
    assert.equal(cap.inUse(), 1, "reservations the informer never confirmed expire");
  });

  it("frees a reservation once the informer has reported its Job, even if the Job is gone again", () => {
    const cap = new Capacity(2, () => 0);
    assert.equal(cap.tryReserve("a"), true);
    assert.equal(cap.tryReserve("b"), true);
    // a and b are created, seen by the watch and deleted (a cancel right after the create)
    // before the next capacity check.
    cap.observe(job("a"));
    cap.observe(job("b"));
    cap.forget("a");
    cap.forget("b");
    assert.equal(cap.inUse(), 0, "nothing runs");
    assert.equal(cap.tryReserve("c"), true, "the slots of deleted Jobs are free at once");
  });

  it("wakes one waiting run per free slot, oldest first, keeping a woken run's place", () => {
    const cap = new Capacity(2, () => 0);
    cap.observe(job("j1"));
    cap.observe(job("j2"));
    for (const key of ["ns/r1", "ns/r2", "ns/r3", "ns/r4"]) cap.wait(key);
    assert.deepEqual(cap.wake(), [], "no slot free: nobody is woken");
    cap.observe(job("j1", true));
    assert.deepEqual(cap.wake(), ["ns/r1"], "one slot: one run, not all four");
    assert.deepEqual(cap.wake(), [], "r1 has not been reconciled yet: the slot is promised to it");
    // r1 lost the slot to a run that never waited: it waits again, in its old place.
    assert.equal(cap.tryReserve("new"), true);
    cap.wait("ns/r1");
    cap.observe(job("j2", true));
    assert.deepEqual(cap.wake(), ["ns/r1"]);
    cap.done("ns/r1");
    assert.equal(cap.tryReserve("r1-job"), true);
    cap.forget("new");
    assert.deepEqual(cap.wake(), ["ns/r2"]);
    assert.equal(cap.waiting, 3);
  });

  it("knows a Job its run created that the informer has not reported yet, until it does", () => {
    let now = 0;
    const cap = new Capacity(2, () => now);
    assert.equal(cap.createdFor("j1", "uid-1"), false);
    assert.equal(cap.tryReserve("j1", "uid-1"), true);
    assert.equal(cap.createdFor("j1", "uid-1"), true);
    assert.equal(cap.createdFor("j1", "uid-other"), false, "a newer run of the same name");
    cap.observe(job("j1"));
    assert.equal(cap.createdFor("j1", "uid-1"), false, "reported: the cache has it");
    assert.equal(cap.tryReserve("j2", "uid-2"), true);
    cap.release("j2");
    assert.equal(cap.createdFor("j2", "uid-2"), false, "a failed create");
    assert.equal(cap.tryReserve("j3", "uid-3"), true);
    now += 61_000;
    assert.equal(cap.createdFor("j3", "uid-3"), false, "the reservation ran out");
  });
});
