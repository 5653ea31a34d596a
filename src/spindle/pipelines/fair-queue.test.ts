import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FairQueue } from "./fair-queue.ts";

const ids = (q: FairQueue, mayStart?: (repo: string) => boolean) => {
  const out: number[] = [];
  for (let e = q.take(mayStart); e; e = q.take(mayStart)) out.push(e.id);
  return out;
};

describe("FairQueue", () => {
  it("one owner's flood does not hold back another owner's first pipeline", () => {
    const q = new FairQueue();
    for (let i = 1; i <= 50; i++) q.add({ id: i, owner: "did:a", repo: "did:a/x" });
    q.add({ id: 100, owner: "did:b", repo: "did:b/y" });
    assert.deepEqual(
      q.peek(4).map((e) => e.id),
      [1, 100, 2, 3],
    );
    assert.equal(q.take()?.id, 1);
    assert.equal(q.take()?.id, 100);
    assert.deepEqual(
      ids(q),
      Array.from({ length: 49 }, (_, i) => i + 2),
    );
    assert.equal(q.size, 0);
  });

  it("alternates owners, then the repos of one owner; FIFO within a repo", () => {
    const q = new FairQueue();
    q.add({ id: 1, owner: "A", repo: "A/1" });
    q.add({ id: 2, owner: "A", repo: "A/1" });
    q.add({ id: 3, owner: "A", repo: "A/2" });
    q.add({ id: 4, owner: "A", repo: "A/2" });
    q.add({ id: 5, owner: "B", repo: "B/1" });
    q.add({ id: 6, owner: "B", repo: "B/1" });
    const order = q.peek(10).map((e) => e.id);
    assert.deepEqual(order, [1, 5, 3, 6, 2, 4]);
    assert.deepEqual(ids(q), order, "take() follows peek()'s order");
  });

  it("a repo held back is skipped and keeps its owner's place", () => {
    const q = new FairQueue();
    q.add({ id: 1, owner: "A", repo: "A/1" });
    q.add({ id: 2, owner: "A", repo: "A/1" });
    q.add({ id: 3, owner: "B", repo: "B/1" });
    q.add({ id: 4, owner: "B", repo: "B/1" });
    assert.deepEqual(
      ids(q, (r) => r !== "A/1"),
      [3, 4],
    );
    assert.equal(q.size, 2);
    assert.equal(q.take()?.id, 1, "A kept its place at the front");
    q.add({ id: 2, owner: "A", repo: "A/1" });
    assert.equal(q.size, 1, "an id already queued is not added twice");
  });
});

describe("FairQueue.peek", () => {
  it("gives take()'s order for many owners and repos, looking only at the front", () => {
    const build = () => {
      const q = new FairQueue();
      let id = 0;
      for (let o = 0; o < 30; o++) {
        for (let r = 0; r < 5; r++) {
          for (let k = 0; k < 3; k++) q.add({ id: id++, owner: `o${o}`, repo: `o${o}/r${r}` });
        }
      }
      return q;
    };
    const q = build();
    const all = ids(build());
    assert.equal(all.length, 450);
    for (const n of [1, 7, 20, 45]) {
      assert.deepEqual(
        q.peek(n).map((e) => e.id),
        all.slice(0, n),
        `peek(${n})`,
      );
    }
  });
});
