import assert from "node:assert/strict";
import { test } from "node:test";
import { duration } from "./page.ts";

test("duration: seconds, minutes, hours; unknown as a dash", () => {
  assert.equal(duration(null), "–");
  assert.equal(duration(4_200), "4s");
  assert.equal(duration(125_000), "2m 5s");
  assert.equal(duration(3 * 3600_000 + 61_000), "3h 1m");
});
