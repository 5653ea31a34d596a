import assert from "node:assert/strict";
import { test } from "node:test";
import { isValidTid } from "@atproto/syntax";
import { encodeTid, TidClock } from "./tid.ts";

test("TIDs are valid, 13 characters and sort by time then clock id", () => {
  assert.equal(encodeTid(0n, 0), "2222222222222");
  const a = encodeTid(1_770_724_800_000_000n, 5);
  const b = encodeTid(1_770_724_800_000_001n, 0);
  assert.equal(a.length, 13);
  assert.ok(isValidTid(a) && isValidTid(b));
  assert.ok(a < b);
});

test("a TidClock never repeats, even when the clock stands still or steps back", () => {
  const times = [10n, 10n, 9n, 11n];
  const clock = new TidClock({ clockId: 1, nowMicros: () => times.shift() ?? 0n });
  const tids = [clock.next(), clock.next(), clock.next(), clock.next()];
  assert.deepEqual([...tids].sort(), tids);
  assert.equal(new Set(tids).size, 4);
});
