/**
 * Fair share (issue 12): with every worker busy, a repo that queued 50 pipelines does not hold
 * back another owner's first one (it starts within the next two free slots); the per-repo limit
 * holds a repo back while other repos run; waiting workflows show their place in the queue in
 * the status `error` text the appview shows, written again only when it changes. Real server,
 * local engine, real sh.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  ALICE,
  addRepo,
  type Booted,
  bootServer,
  Collector,
  KNOT,
  pipelineRecord,
  statuses,
  workflow,
} from "./server-kit.ts";

const BOB = "did:plc:bobbobbobbobbob";

/** A pipeline of one workflow `<name>.yml` whose step waits until `open(name)` is called. */
function gated(b: Booted) {
  const gate = (name: string) => join(b.dir, `gate-${name}`);
  return {
    record: (name: string, repo: { did: string; repo: string }) =>
      pipelineRecord(
        [
          workflow(`${name}.yml`, [
            { name: "s", command: `while [ ! -e ${gate(name)} ]; do sleep 0.05; done` },
          ]),
        ],
        repo,
      ),
    open: (name: string) => writeFileSync(gate(name), ""),
  };
}

const rkey = (tag: string, i: number) => `3lxyz${tag}${String(i).padStart(4, "0")}`;

/** Workflow names in the order they reported `running`. */
const started = (frames: string[]) =>
  statuses(frames)
    .filter((e) => e.status === "running")
    .map((e) => String(e.workflow).replace(/\.yml$/, ""));

/** The queue notes a workflow showed, in order. */
const notes = (frames: string[], name: string) =>
  statuses(frames, `${name}.yml`)
    .filter((e) => e.status === "pending" && e.error !== undefined)
    .map((e) => e.error);

describe("spindle server: fair share between repos", () => {
  let b: Booted;
  before(async () => {
    b = await bootServer({ env: { SPINDLE_SERVER_MAX_JOB_COUNT: "1", SPINDLE_SERVER_QUEUE_SIZE: "200" } });
    addRepo(b.server, ALICE, "flood");
    addRepo(b.server, BOB, "small", "3repo0000000b");
  });
  after(() => b.stop());

  it("another owner's first workflow starts within the next two free slots, with its place shown", async () => {
    const g = gated(b);
    const events = new Collector(`${b.wsUrl}/events`);
    await events.opened;
    for (let i = 1; i <= 50; i++) {
      await b.server.pipelines.acceptPipeline(
        KNOT,
        rkey("flood", i),
        g.record(`a${i}`, { did: ALICE, repo: "flood" }),
      );
    }
    await b.server.pipelines.acceptPipeline(
      KNOT,
      rkey("small", 1),
      g.record("b1", { did: BOB, repo: "small" }),
    );
    await events.until((f) => started(f).includes("a1") && notes(f, "b1").length === 1);
    // a1 runs; a2 is next, then Bob's b1 (round-robin across owners), then a3.
    assert.deepEqual(notes(events.frames, "b1"), ["queued: position 2 in the spindle's queue"]);
    assert.deepEqual(notes(events.frames, "a2"), ["queued: position 1 in the spindle's queue"]);
    assert.equal(
      b.server.store.runByName(KNOT, rkey("small", 1), "b1.yml")?.error,
      "queued: position 2 in the spindle's queue",
      "the note is the run's error, which sh.tangled.ci.pipeline serves",
    );
    assert.deepEqual(
      b.server.scheduler.queueSnapshot(3).map((q) => [q.rkey, q.owner, q.position]),
      [
        [rkey("flood", 2), ALICE, 1],
        [rkey("small", 1), BOB, 2],
        [rkey("flood", 3), ALICE, 3],
      ],
    );
    // Bounded: the 20 next show their place; one pushed back beyond them (by b1) says so once;
    // pipelines further back never got a note of their own.
    assert.deepEqual(notes(events.frames, "a21"), [
      "queued: position 20 in the spindle's queue",
      "queued: more than 20 pipelines ahead in the spindle's queue",
    ]);
    for (let i = 22; i <= 50; i++) assert.deepEqual(notes(events.frames, `a${i}`), [], `a${i}`);

    g.open("a1");
    await events.until((f) => started(f).includes("a2"));
    await events.until((f) => notes(f, "b1").length === 2);
    assert.deepEqual(notes(events.frames, "b1").at(-1), "queued: position 1 in the spindle's queue");
    g.open("a2");
    await events.until((f) => started(f).includes("b1"));
    assert.deepEqual(started(events.frames), ["a1", "a2", "b1"]);
    // The running event clears the note.
    assert.equal(b.server.store.runByName(KNOT, rkey("small", 1), "b1.yml")?.error, null);
    g.open("b1");
    await events.until((f) => started(f).includes("a3"));
    assert.deepEqual(started(events.frames), ["a1", "a2", "b1", "a3"]);
    events.close();
  });
});

describe("spindle server: per-repo limit", () => {
  let b: Booted;
  before(async () => {
    b = await bootServer({
      env: { SPINDLE_SERVER_MAX_JOB_COUNT: "3", SPINDLE_SERVER_MAX_JOB_COUNT_PER_REPO: "1" },
    });
    addRepo(b.server, ALICE, "flood");
    addRepo(b.server, BOB, "small", "3repo0000000b");
  });
  after(() => b.stop());

  it("SPINDLE_SERVER_MAX_JOB_COUNT_PER_REPO holds a repo back while workers are free for others", async () => {
    const g = gated(b);
    const events = new Collector(`${b.wsUrl}/events`);
    await events.opened;
    for (let i = 1; i <= 3; i++) {
      await b.server.pipelines.acceptPipeline(
        KNOT,
        rkey("limit", i),
        g.record(`a${i}`, { did: ALICE, repo: "flood" }),
      );
    }
    await b.server.pipelines.acceptPipeline(
      KNOT,
      rkey("small", 1),
      g.record("b1", { did: BOB, repo: "small" }),
    );
    await events.until((f) => started(f).includes("a1") && started(f).includes("b1"));
    await events.until((f) => notes(f, "a3").length > 0);
    assert.deepEqual(started(events.frames).sort(), ["a1", "b1"]);
    assert.equal(b.server.scheduler.activePipelines, 2, "a free worker stays free: the repo is at its limit");
    assert.equal(notes(events.frames, "a2").at(-1), "queued: position 1 in the spindle's queue");
    g.open("a1");
    await events.until((f) => started(f).includes("a2"));
    g.open("a2");
    await events.until((f) => started(f).includes("a3"));
    // Never two of Alice's at once.
    let running = 0;
    for (const e of statuses(events.frames)) {
      if (!String(e.workflow).startsWith("a")) continue;
      if (e.status === "running") running++;
      if (["success", "failed", "cancelled", "timeout"].includes(String(e.status))) running--;
      assert.ok(running <= 1, "two of one repo's pipelines ran at once");
    }
    events.close();
  });
});
