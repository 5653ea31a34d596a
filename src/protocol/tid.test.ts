import assert from "node:assert/strict";
import { describe, it, test } from "node:test";
import { isValidTid } from "@atproto/syntax";
import { decodeTid, encodeTid, TidGenerator } from "./tid.ts";

describe("TIDs", () => {
  it("encodes the atproto layout (known vector)", () => {
    // 2023-05-01T00:00:00Z in µs, clock id 0: checked against the spec's bit layout by decoding.
    const micros = 1682899200000000n;
    const tid = encodeTid(micros, 0);
    assert.equal(tid.length, 13);
    assert.ok(isValidTid(tid), tid);
    assert.deepEqual(decodeTid(tid), { micros, clockId: 0 });
    assert.equal(encodeTid(0n, 0), "2222222222222");
    // 63 bits in 65: the first character never passes "b".
    assert.equal(encodeTid((1n << 53n) - 1n, 1023), "bzzzzzzzzzzzz");
  });

  it("is strictly increasing even when the clock stalls or steps back", () => {
    const times = [1000n, 1000n, 999n, 500n, 1001n, 5000n];
    const gen = new TidGenerator({ clockId: 7, nowMicros: () => times.shift() ?? 0n });
    const ids = Array.from({ length: 6 }, () => gen.next());
    assert.deepEqual(
      ids.map((id) => decodeTid(id).micros),
      [1000n, 1001n, 1002n, 1003n, 1004n, 5000n],
    );
    assert.deepEqual([...ids].sort(), ids, "string order is time order");
    for (const id of ids) assert.ok(isValidTid(id));
  });

  it("uses the real clock by default, and 10,000 ids are unique, valid and sorted", () => {
    const gen = new TidGenerator();
    const ids = Array.from({ length: 10_000 }, () => gen.next());
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), ids);
    assert.ok(ids.every((id) => isValidTid(id)));
    const ageMs = Number(BigInt(Date.now()) * 1000n - decodeTid(ids[0] ?? "").micros) / 1000;
    assert.ok(Math.abs(ageMs) < 5000, `timestamp near now (off by ${ageMs} ms)`);
  });

  it("refuses bad inputs", () => {
    assert.throws(() => encodeTid(-1n, 0), RangeError);
    assert.throws(() => encodeTid(1n << 53n, 0), RangeError);
    assert.throws(() => new TidGenerator({ clockId: 1024 }), RangeError);
    assert.throws(() => decodeTid("zzzzzzzzzzzzz"), /not a TID/);
    assert.throws(() => decodeTid("short"), /not a TID/);
  });
});

// From the events table's former clock (one generator serves both now).

test("TIDs are valid, 13 characters and sort by time then clock id", () => {
  assert.equal(encodeTid(0n, 0), "2222222222222");
  const a = encodeTid(1_770_724_800_000_000n, 5);
  const b = encodeTid(1_770_724_800_000_001n, 0);
  assert.equal(a.length, 13);
  assert.ok(isValidTid(a) && isValidTid(b));
  assert.ok(a < b);
});

test("a TidGenerator never repeats, even when the clock stands still or steps back", () => {
  const times = [10n, 10n, 9n, 11n];
  const clock = new TidGenerator({ clockId: 1, nowMicros: () => times.shift() ?? 0n });
  const tids = [clock.next(), clock.next(), clock.next(), clock.next()];
  assert.deepEqual([...tids].sort(), tids);
  assert.equal(new Set(tids).size, 4);
});
