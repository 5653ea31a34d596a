import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { WorkQueue } from "./queue.ts";

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe("WorkQueue", () => {
  it("dedupes a key while it is queued", async () => {
    const seen: string[] = [];
    const gate = deferred();
    const q = new WorkQueue({
      workers: 1,
      process: async (key) => {
        seen.push(key);
        if (key === "block") await gate.promise;
        return undefined;
      },
    });
    q.add("block");
    q.add("a");
    q.add("a");
    q.add("b");
    q.add("a");
    assert.equal(q.depth, 2);
    gate.resolve();
    await sleep(20);
    assert.deepEqual(seen, ["block", "a", "b"]);
    await q.shutdown();
  });

  it("never runs one key twice at once, and runs it again after a change during processing", async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const gate = deferred();
    const q = new WorkQueue({
      workers: 4,
      process: async () => {
        running++;
        runs++;
        maxRunning = Math.max(maxRunning, running);
        if (runs === 1) await gate.promise;
        running--;
        return undefined;
      },
    });
    q.add("k");
    await sleep(5);
    q.add("k");
    q.add("k");
    gate.resolve();
    await sleep(20);
    assert.equal(maxRunning, 1);
    assert.equal(runs, 2);
    await q.shutdown();
  });

  it("retries a failing key with growing per-key backoff, and forgets it after a success", async () => {
    const times: number[] = [];
    const q = new WorkQueue({
      workers: 1,
      baseDelayMs: 20,
      maxDelayMs: 1000,
      process: async () => {
        times.push(Date.now());
        if (times.length < 4) throw new Error("boom");
        return undefined;
      },
    });
    q.add("k");
    await sleep(400);
    assert.equal(times.length, 4);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    assert.ok(gaps[0]! >= 18 && gaps[1]! >= 38 && gaps[2]! >= 78, `gaps ${gaps}`);
    assert.equal(q.backoffMs("k"), 20);
    await q.shutdown();
  });

  it("requeues after the asked delay, the earliest delay winning", async () => {
    const times: number[] = [];
    const start = Date.now();
    const q = new WorkQueue({
      process: async () => {
        times.push(Date.now() - start);
        return times.length === 1 ? { requeueAfterMs: 60 } : undefined;
      },
    });
    q.add("k");
    q.addAfter("other", 500);
    q.addAfter("other", 30);
    await sleep(150);
    assert.equal(times.length, 3);
    assert.ok(times[2]! >= 55, `${times}`);
    await q.shutdown();
  });

  it("shutdown waits for in-flight work and takes no more", async () => {
    const gate = deferred();
    let finished = false;
    const q = new WorkQueue({
      process: async () => {
        await gate.promise;
        finished = true;
        return undefined;
      },
    });
    q.add("k");
    await sleep(5);
    const done = q.shutdown();
    q.add("later");
    setTimeout(() => gate.resolve(), 20);
    await done;
    assert.equal(finished, true);
    assert.equal(q.depth, 0);
  });

  it("takes first-lane keys before normal ones queued earlier, and moves a queued key up", async () => {
    const seen: string[] = [];
    const gate = deferred();
    const q = new WorkQueue({
      workers: 1,
      process: async (key) => {
        seen.push(key);
        if (key === "block") await gate.promise;
        return undefined;
      },
    });
    q.add("block");
    q.add("status-a");
    q.add("status-b");
    q.add("new-a", { first: true });
    q.add("status-b", { first: true });
    q.add("new-a");
    assert.equal(q.depth, 3);
    gate.resolve();
    await sleep(20);
    assert.deepEqual(seen, ["block", "new-a", "status-b", "status-a"]);
    await q.shutdown();
  });

  it("a first-lane key counts as queued the lead earlier: a normal key queued before that goes first", async () => {
    const seen: string[] = [];
    const gate = deferred();
    let clock = 0;
    const q = new WorkQueue({
      workers: 1,
      firstLaneLeadMs: 1000,
      now: () => clock,
      process: async (key) => {
        seen.push(key);
        if (key === "block") await gate.promise;
        return undefined;
      },
    });
    q.add("block");
    q.add("status-0"); // at 0
    clock = 500;
    q.add("status-1"); // at 500
    clock = 1200;
    q.add("new-0", { first: true }); // counts as 200: after status-0, before status-1
    clock = 2000;
    q.add("new-1", { first: true }); // counts as 1000: after status-1
    q.add("status-2"); // at 2000
    gate.resolve();
    await sleep(20);
    assert.deepEqual(seen, ["block", "status-0", "new-0", "status-1", "new-1", "status-2"]);
    await q.shutdown();
  });

  it("never starves the normal lane: a stream of first-lane keys lets a normal key go once it has waited the lead", async () => {
    const seen: string[] = [];
    let clock = 0;
    // Each processed key takes 100 ms of the clock and brings a new first-lane key, as a burst of
    // new runs would: the first lane never empties.
    let next = 0;
    const q: WorkQueue = new WorkQueue({
      workers: 1,
      firstLaneLeadMs: 1000,
      now: () => clock,
      process: async (key) => {
        seen.push(key);
        clock += 100;
        if (next < 40) q.add(`new-${++next}`, { first: true });
        return undefined;
      },
    });
    q.add("new-0", { first: true });
    q.add("status");
    await sleep(20);
    const at = seen.indexOf("status");
    assert.ok(at > 0, `status processed: ${seen.join(",")}`);
    // new-0 starts at once and moves the clock to 100; status is queued then, at 100. new-k is
    // queued at 100·k, so status waits until the first lane's head (new-12, at 1200) was queued
    // more than 1000 ms after it: 12 keys of 100 ms, and not longer.
    assert.equal(at, 12, `status went ${at}th: ${seen.join(",")}`);
    assert.ok(seen.length > at + 5, "the stream of first-lane keys went on after it");
    await q.shutdown();
  });

  it("keeps the first lane for a key added with it while it was processing", async () => {
    const seen: string[] = [];
    const gate = deferred();
    const q = new WorkQueue({
      workers: 1,
      process: async (key) => {
        seen.push(key);
        if (key === "k" && seen.length === 1) await gate.promise;
        return undefined;
      },
    });
    q.add("k");
    await sleep(5);
    q.add("k", { first: true });
    q.add("status");
    gate.resolve();
    await sleep(20);
    assert.deepEqual(seen, ["k", "k", "status"]);
    await q.shutdown();
  });
});
