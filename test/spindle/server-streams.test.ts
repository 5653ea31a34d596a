/**
 * Stream behaviour under load: a client that stops reading is closed as a slow consumer
 * (bounded memory) while a normal client on the same server gets every frame; /logs follows a
 * running workflow live and closes once it has finished and the file is drained.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { WebSocket } from "ws";
import { transaction } from "../../src/spindle/db/index.ts";
import { workflowId } from "../../src/workflow/resolve.ts";
import {
  ALICE,
  addRepo,
  type Booted,
  bootServer,
  Collector,
  KNOT,
  pipelineRecord,
  statuses,
  waitFor,
  workflow,
} from "./server-kit.ts";

describe("spindle server: streams", () => {
  let b: Booted;
  before(async () => {
    b = await bootServer({ server: { stream: { highWaterBytes: 64 * 1024, stallMs: 3000, pollMs: 50 } } });
    addRepo(b.server, ALICE, "loom");
  });
  after(() => b.stop());

  it("a stalled /events client is closed; a reading one gets every event", async () => {
    const fast = new Collector(`${b.wsUrl}/events`);
    const slow = new WebSocket(`${b.wsUrl}/events`);
    await fast.opened;
    await new Promise((r) => slow.once("open", r));
    slow.pause();
    const N = 40_000;
    const events = b.server.events;
    const batch = transaction(b.server.db, () =>
      Array.from({ length: N }, (_, i) =>
        events.insert({
          pipeline: `at://did:web:${KNOT}/sh.tangled.pipeline/3lxyz2load022`,
          workflow: `w${i}.yml`,
          status: "pending",
          createdAt: new Date(),
        }),
      ),
    );
    events.publish(batch);
    await fast.until((f) => f.length === N, 90_000);
    await waitFor(
      () => /loom_slow_clients_total\{stream="events"\} 1/.test(metricsText),
      10_000,
      "slow client closed",
      async () => {
        metricsText = await b.server.metrics.registry.getSingleMetricAsString("loom_slow_clients_total");
      },
    );
    fast.close();
    slow.terminate();
  });

  it("a stalled /logs client is closed; another gets the whole file", async () => {
    const rkey = "3lxyz2biglog2";
    const done = new Collector(`${b.wsUrl}/events`);
    await done.opened;
    await b.server.pipelines.acceptPipeline(
      KNOT,
      rkey,
      pipelineRecord([workflow("big.yml", [{ name: "x", command: "true" }])]),
    );
    await done.until((f) => statuses(f, "big.yml").some((e) => e.status === "success"));
    done.close();
    // Replace the finished workflow's log with a large one.
    const line = (i: number) =>
      `{"kind":"data","content":"line ${i} ${"x".repeat(200)}","time":"2026-02-10T12:00:00Z","step_id":0,"stream":"stdout"}`;
    const N = 30_000;
    mkdirSync(join(b.dir, "logs"), { recursive: true });
    writeFileSync(
      join(b.dir, "logs", `${workflowId(KNOT, rkey, "big.yml")}.log`),
      `${Array.from({ length: N }, (_, i) => line(i)).join("\n")}\n`,
    );
    const slow = new WebSocket(`${b.wsUrl}/logs/${KNOT}/${rkey}/big.yml`);
    await new Promise((r) => slow.once("open", r));
    slow.pause();
    const full = new Collector(`${b.wsUrl}/logs/${KNOT}/${rkey}/big.yml`);
    assert.equal((await full.closed).code, 1000);
    assert.equal(full.frames.length, N);
    assert.equal(full.frames[N - 1], line(N - 1));
    await waitFor(
      () => /loom_slow_clients_total\{stream="logs"\} 1/.test(metricsText),
      10_000,
      "slow log client closed",
      async () => {
        metricsText = await b.server.metrics.registry.getSingleMetricAsString("loom_slow_clients_total");
      },
    );
    slow.terminate();
  });

  it("/events pings after silence", async () => {
    const quiet = await bootServer({ server: { stream: { pingMs: 100 } } });
    try {
      const ws = new WebSocket(`${quiet.wsUrl}/events`);
      let pings = 0;
      ws.on("ping", () => pings++);
      await new Promise((r) => ws.once("open", r));
      await waitFor(() => pings >= 2, 5000, "two pings");
      ws.close();
    } finally {
      await quiet.stop();
    }
  });

  it("/logs follows a running workflow and closes once it finished", async () => {
    const rkey = "3lxyz2follow2";
    const events = new Collector(`${b.wsUrl}/events`);
    await events.opened;
    await b.server.pipelines.acceptPipeline(
      KNOT,
      rkey,
      pipelineRecord([workflow("f.yml", [{ name: "tick", command: "echo one; sleep 1; echo two" }])]),
    );
    await events.until((f) => statuses(f, "f.yml").some((e) => e.status === "running"));
    const logs = new Collector(`${b.wsUrl}/logs/${KNOT}/${rkey}/f.yml`);
    await logs.until((f) => f.some((l) => JSON.parse(l).content === "one"));
    assert.ok(!logs.frames.some((l) => JSON.parse(l).content === "two"), "read ahead of the step");
    assert.deepEqual(await logs.closed, { code: 1000, reason: "log stream complete" });
    assert.ok(logs.frames.some((l) => JSON.parse(l).content === "two"));
    // Two sockets, no order between them: the success status may land just after the close.
    await events.until((f) => statuses(f, "f.yml").some((e) => e.status === "success"));
    events.close();
  });
});

let metricsText = "";
