import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Lanes } from "./lanes.ts";

/** A job that records its start and end and finishes when told. */
function gated(log: string[], name: string) {
  let finish = () => {};
  const done = new Promise<void>((r) => {
    finish = r;
  });
  return {
    finish,
    job: async () => {
      log.push(`start ${name}`);
      await done;
      log.push(`end ${name}`);
    },
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("Lanes", () => {
  it("runs one job per lane at a time, lanes side by side, at most `limit` at once", async () => {
    const log: string[] = [];
    const lanes = new Lanes(2);
    const a1 = gated(log, "a1");
    const a2 = gated(log, "a2");
    const b1 = gated(log, "b1");
    const c1 = gated(log, "c1");
    lanes.push("a", a1.job);
    lanes.push("a", a2.job);
    lanes.push("b", b1.job);
    lanes.push("c", c1.job);
    await tick();
    assert.deepEqual(log, ["start a1", "start b1"], "a2 waits behind a1, c1 for a slot");
    assert.equal(lanes.pending, 4);
    b1.finish();
    await tick();
    assert.deepEqual(log.slice(2), ["end b1", "start c1"]);
    a1.finish();
    await tick();
    assert.deepEqual(log.slice(4), ["end a1", "start a2"]);
    a2.finish();
    c1.finish();
    await lanes.idle();
    assert.equal(lanes.pending, 0);
  });

  it("clear drops the jobs not started; running ones finish", async () => {
    const log: string[] = [];
    const lanes = new Lanes(1);
    const a1 = gated(log, "a1");
    lanes.push("a", a1.job);
    lanes.push("a", gated(log, "a2").job);
    lanes.push("b", gated(log, "b1").job);
    await tick();
    assert.equal(lanes.clear(), 2);
    assert.equal(lanes.pending, 1);
    a1.finish();
    await lanes.idle();
    assert.deepEqual(log, ["start a1", "end a1"]);
  });

  it("below() waits until fewer jobs are pending; a rejecting job does not stop its lane", async () => {
    const lanes = new Lanes(1);
    const log: string[] = [];
    const a1 = gated(log, "a1");
    lanes.push("a", a1.job);
    lanes.push("a", async () => {
      throw new Error("its own error (test)");
    });
    lanes.push("a", async () => {
      log.push("a3");
    });
    let below = false;
    const waiting = lanes.below(3).then(() => {
      below = true;
    });
    await tick();
    assert.equal(below, false);
    a1.finish();
    await waiting;
    await lanes.idle();
    assert.deepEqual(log, ["start a1", "end a1", "a3"]);
    assert.throws(() => new Lanes(0), /not ≥ 1/);
  });
});
