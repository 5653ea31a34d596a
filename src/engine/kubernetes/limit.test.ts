import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Limiter } from "./limit.ts";

describe("Limiter", () => {
  it("runs at most n at once, the rest in arrival order, and passes errors through", async () => {
    const limiter = new Limiter(2);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const gates: (() => void)[] = [];
    const tasks = [0, 1, 2, 3, 4].map((i) =>
      limiter.run(async () => {
        started.push(i);
        running++;
        most = Math.max(most, running);
        await new Promise<void>((resolve) => gates.push(resolve));
        running--;
        if (i === 3) throw new Error("task 3 failed");
        return i;
      }),
    );
    while (started.length < 5) {
      await new Promise((r) => setImmediate(r));
      gates.shift()?.();
    }
    for (const g of gates) g();
    const results = await Promise.allSettled(tasks);
    assert.equal(most, 2);
    assert.deepEqual(started, [0, 1, 2, 3, 4]);
    assert.deepEqual(
      results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as Error).message)),
      [0, 1, 2, "task 3 failed", 4],
    );
    assert.equal(await limiter.run(async () => "free again"), "free again");
  });
});
