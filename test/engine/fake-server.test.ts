/**
 * The fake engine inside a real spindle server (SQLite, HTTP, WebSocket): what a server test
 * gets from it — the workflow's statuses on /events and its log lines on /logs, with no process
 * or cluster behind them.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeEngine } from "../../src/engine/fake/engine.ts";
import type { RunnerStep } from "../../src/runner/protocol.ts";
import {
  ALICE,
  addRepo,
  bootServer,
  Collector,
  KNOT,
  pipelineRecord,
  statuses,
  workflow,
} from "../spindle/server-kit.ts";

/** `echo <text>` prints its text; `exit <code>` fails with it. */
function script(step: RunnerStep) {
  const [verb, ...rest] = step.command.split(" ");
  if (verb === "echo") return { output: [{ stream: "stdout" as const, text: `${rest.join(" ")}\n` }] };
  if (verb === "exit") return { exitCode: Number(rest[0]) };
  return {};
}

describe("the fake engine in a spindle server", () => {
  it("reports each workflow's statuses on /events and its log lines on /logs", async (t) => {
    const engine = new FakeEngine({ name: "kubernetes", script });
    const booted = await bootServer({ server: { engine } });
    t.after(() => booted.stop());
    addRepo(booted.server, ALICE, "loom");
    const events = new Collector(`${booted.wsUrl}/events?cursor=1`);
    t.after(() => events.close());
    await events.opened;
    const rkey = "3fakeengine001";
    await booted.server.pipelines.acceptPipeline(
      KNOT,
      rkey,
      pipelineRecord([
        workflow("ok.yml", [{ name: "hello", command: "echo hi there" }]),
        workflow("bad.yml", [{ name: "boom", command: "exit 4" }]),
      ]),
    );
    await events.until(
      (f) =>
        statuses(f, "ok.yml").some((e) => e.status === "success") &&
        statuses(f, "bad.yml").some((e) => e.status === "failed"),
    );
    assert.deepEqual(
      statuses(events.frames, "ok.yml").map((e) => e.status),
      ["pending", "running", "success"],
    );
    const failed = statuses(events.frames, "bad.yml").find((e) => e.status === "failed")!;
    assert.equal(failed.exitCode, 4);

    const logs = new Collector(`${booted.wsUrl}/logs/${KNOT}/${rkey}/ok.yml`);
    t.after(() => logs.close());
    await logs.until((f) => f.some((l) => l.includes('"content":"hi there"')));
    assert.ok(logs.frames.some((l) => l.includes('"step_status":"end"')));
  });
});
