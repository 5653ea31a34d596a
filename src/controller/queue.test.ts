import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { FIRST_LANE_RUN, WorkQueue } from "./queue.ts";

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

  it("never starves the normal lane: one normal key after every FIRST_LANE_RUN first-lane keys", async () => {
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
    for (let i = 0; i < 2; i++) q.add(`status-${i}`);
    for (let i = 0; i < 2 * FIRST_LANE_RUN + 1; i++) q.add(`new-${i}`, { first: true });
    gate.resolve();
    await sleep(20);
    const news = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `new-${from + i}`);
    assert.deepEqual(seen, [
      "block",
      ...news(0, FIRST_LANE_RUN),
      "status-0",
      ...news(FIRST_LANE_RUN, 2 * FIRST_LANE_RUN),
      "status-1",
      `new-${2 * FIRST_LANE_RUN}`,
    ]);
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
