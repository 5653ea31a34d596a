import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Backoff, sleep } from "./backoff.ts";

describe("Backoff", () => {
  it("doubles the ceiling per failure up to the cap", () => {
    const b = new Backoff({ baseMs: 100, capMs: 1000, random: () => 0.999999 });
    const delays = Array.from({ length: 7 }, () => b.next());
    assert.deepEqual(delays, [99, 199, 399, 799, 999, 999, 999]);
    assert.equal(b.attempt, 7);
  });

  it("draws each delay uniformly under the ceiling (full jitter), floored at minMs", () => {
    const draws = [0, 0.5, 0.25, 0.1];
    const b = new Backoff({ baseMs: 1000, capMs: 60_000, minMs: 150, random: () => draws.shift() ?? 0 });
    assert.equal(b.next(), 150, "random 0 is lifted to minMs");
    assert.equal(b.next(), 1000, "0.5 of 2000");
    assert.equal(b.next(), 1000, "0.25 of 4000");
    assert.equal(b.next(), 800, "0.1 of 8000");
  });

  it("never overflows: after thousands of failures the ceiling is still the cap", () => {
    const b = new Backoff({ baseMs: 1, capMs: 5000, random: () => 0.5 });
    for (let i = 0; i < 5000; i++) b.next();
    assert.equal(b.ceiling(), 5000);
    assert.equal(b.next(), 2500);
  });

  it("restarts the sequence after a connection stayed healthy long enough (fake clock)", () => {
    let now = 0;
    const b = new Backoff({
      baseMs: 100,
      capMs: 10_000,
      healthyAfterMs: 30_000,
      random: () => 0.5,
      now: () => now,
    });
    b.next();
    b.next();
    b.next();
    assert.equal(b.ceiling(), 800);
    b.connected();
    now += 29_999;
    assert.equal(b.next(), 400, "a short-lived session keeps growing the delay");
    b.connected();
    now += 30_000;
    assert.equal(b.next(), 50, "a healthy session resets to the base");
    assert.equal(b.attempt, 1);
  });

  it("refuses nonsense bounds", () => {
    assert.throws(() => new Backoff({ baseMs: 0, capMs: 10 }), RangeError);
    assert.throws(() => new Backoff({ baseMs: 10, capMs: 5 }), RangeError);
  });
});

describe("sleep", () => {
  it("ends early when aborted", async () => {
    const ac = new AbortController();
    const t0 = Date.now();
    const p = sleep(10_000, ac.signal);
    ac.abort();
    await p;
    assert.ok(Date.now() - t0 < 1000);
  });
});
