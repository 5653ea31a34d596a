import assert from "node:assert/strict";
import { test } from "node:test";
import { WrittenVersions } from "./written.ts";

function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test("a reconcile waits until the informer delivers the version it wrote", () => {
  const c = clock();
  const w = new WrittenVersions({ maxWaitMs: 1000, now: c.now });
  assert.equal(w.stale("ns/a", "1"), false, "nothing written: go ahead");
  w.writing("ns/a");
  w.wrote("ns/a", "7");
  assert.equal(w.stale("ns/a", "5"), true, "the cache still has the version before the write");
  assert.equal(w.delivered("ns/a", "6"), false, "an older event in flight wakes nothing");
  assert.equal(w.stale("ns/a", "6"), true);
  assert.equal(w.delivered("ns/a", "7"), true, "the written version wakes the reconcile that waited");
  assert.equal(w.stale("ns/a", "7"), false);
  assert.equal(w.size, 0);
});

test("the written version delivered before the write's response is not waited for", () => {
  const w = new WrittenVersions({ now: () => 0 });
  w.writing("ns/a");
  assert.equal(w.delivered("ns/a", "7"), false);
  assert.equal(w.delivered("ns/a", "8"), false, "another writer after ours");
  w.wrote("ns/a", "7");
  assert.equal(w.stale("ns/a", "8"), false);
  assert.equal(w.size, 0);
});

test("a delivered version wakes only a reconcile that waited; a failed write waits for nothing", () => {
  const w = new WrittenVersions({ now: () => 0 });
  w.writing("ns/a");
  w.wrote("ns/a", "7");
  assert.equal(w.delivered("ns/a", "7"), false, "no reconcile waited");
  assert.equal(w.stale("ns/a", "7"), false);
  w.writing("ns/b");
  w.wrote("ns/b", undefined);
  assert.equal(w.stale("ns/b", "3"), false);
});

test("a version the watch skipped is waited for at most maxWaitMs; a deleted run is forgotten", () => {
  const c = clock();
  const w = new WrittenVersions({ maxWaitMs: 1000, now: c.now });
  w.writing("ns/a");
  w.wrote("ns/a", "7");
  assert.equal(w.stale("ns/a", "9"), true, "an unknown version: maybe older");
  c.advance(999);
  assert.equal(w.stale("ns/a", "9"), true);
  c.advance(1);
  assert.equal(w.stale("ns/a", "9"), false, "waited long enough: go ahead (the write is still guarded)");
  assert.equal(w.delivered("ns/a", "7"), false, "nothing waits any more");
  w.writing("ns/b");
  w.wrote("ns/b", "4");
  assert.equal(w.stale("ns/b", "3"), true);
  w.forget("ns/b");
  assert.equal(w.stale("ns/b", "3"), false);
  assert.equal(w.size, 0);
});
