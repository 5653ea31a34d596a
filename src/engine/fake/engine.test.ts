import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { LogLine } from "../../protocol/logline.ts";
import type { RunnerStep } from "../../runner/protocol.ts";
import { EngineError, type StatusUpdate, type WorkflowRun } from "../engine.ts";
import { FakeEngine, type FakeStep } from "./engine.ts";

let n = 0;
function makeRun(steps: string[], opts: { timeoutSeconds?: number; secrets?: Record<string, string> } = {}) {
  const wid = `fake.knot-${n++}-test.yml`;
  const lines: LogLine[] = [];
  const statuses: StatusUpdate[] = [];
  const run: WorkflowRun = {
    plan: {
      pipeline: { knot: "fake.knot", rkey: wid },
      workflowName: "test.yml",
      wid,
      engine: "fake",
      image: "alpine:3",
      architecture: "amd64",
      steps: steps.map(
        (command, id): RunnerStep => ({ id, name: `step ${id}`, command, kind: "user", env: [] }),
      ),
      secretKeys: Object.keys(opts.secrets ?? {}),
      timeoutSeconds: opts.timeoutSeconds ?? 60,
    },
    secrets: new Map(Object.entries(opts.secrets ?? {})),
    onStatus: (u) => statuses.push(u),
    log: { backlog: 0, write: (l) => lines.push(l), flush: async () => {} },
  };
  return { run, lines, statuses, wid };
}

/** Steps say what they do in their command: `say <text>`, `fail <code>`, `hang`. */
function script(step: RunnerStep): FakeStep {
  const [verb, ...rest] = step.command.split(" ");
  if (verb === "say") return { output: [{ stream: "stdout", text: `${rest.join(" ")}\n` }] };
  if (verb === "fail") return { exitCode: Number(rest[0]) };
  if (verb === "hang") return { output: [{ stream: "stdout", text: "started\n" }], hang: true };
  return {};
}

describe("FakeEngine", () => {
  it("reports running, then success, after the steps' real log lines", async () => {
    const engine = new FakeEngine({ script });
    const { run, lines, statuses, wid } = makeRun(["say one", "say two"]);
    await engine.start(run);
    assert.deepEqual(statuses, [], "nothing is reported before start() returns");
    const outcome = await engine.wait(wid);
    assert.deepEqual(outcome, { status: "success", exitCode: 0, failedStep: null });
    assert.deepEqual(statuses, [{ status: "running" }, outcome]);
    assert.deepEqual(
      lines.map((l) => [l.kind, l.step_id, l.step_status ?? l.stream, l.content]),
      [
        ["control", 0, "start", "step 0"],
        ["data", 0, "stdout", "one"],
        ["control", 0, "end", "step 0"],
        ["control", 1, "start", "step 1"],
        ["data", 1, "stdout", "two"],
        ["control", 1, "end", "step 1"],
      ],
    );
    await engine.destroy(wid);
    await assert.rejects(
      engine.wait(wid),
      (e: unknown) => e instanceof EngineError && e.code === "not_found",
    );
  });

  it("stops at a failing step with its exit code", async () => {
    const engine = new FakeEngine({ script });
    const { run, lines, wid } = makeRun(["say a", "fail 3", "say never"]);
    await engine.start(run);
    assert.deepEqual(await engine.wait(wid), { status: "failed", exitCode: 3, failedStep: 1 });
    assert.ok(!lines.some((l) => l.step_id === 2));
  });

  it("cancels a hanging step (its end line still comes) and times out on the plan's budget", async () => {
    const engine = new FakeEngine({ script });
    const a = makeRun(["hang", "say never"]);
    await engine.start(a.run);
    await new Promise((r) => setImmediate(r));
    await engine.cancel(a.wid, "User canceled the workflow");
    const cancelled = await engine.wait(a.wid);
    assert.deepEqual(cancelled, {
      status: "cancelled",
      exitCode: null,
      failedStep: 0,
      error: "User canceled the workflow",
    });
    assert.deepEqual(
      a.statuses.map((s) => s.status),
      ["running", "cancelled"],
    );
    assert.equal(a.lines.at(-1)?.step_status, "end");
    assert.ok(!a.lines.some((l) => l.content === "never"));
    await engine.cancel(a.wid); // finished: nothing happens

    const b = makeRun(["hang"], { timeoutSeconds: 1 });
    await engine.start(b.run);
    const timedOut = await engine.wait(b.wid);
    assert.equal(timedOut.status, "timeout");
    assert.equal(timedOut.failedStep, 0);
  });

  it("masks secret values in the output", async () => {
    const engine = new FakeEngine({ script });
    const { run, lines, wid } = makeRun(["say token=s3cr3t-V4lue!"], { secrets: { TOKEN: "s3cr3t-V4lue!" } });
    await engine.start(run);
    await engine.wait(wid);
    assert.deepEqual(
      lines.filter((l) => l.kind === "data").map((l) => l.content),
      ["token=***"],
    );
  });

  it("keeps the contract's errors: duplicate, closed, invalid; destroy is idempotent; recover is lost", async () => {
    const engine = new FakeEngine({ script });
    const { run, statuses, wid } = makeRun(["hang"]);
    await engine.start(run);
    await assert.rejects(
      engine.start(run),
      (e: unknown) => e instanceof EngineError && e.code === "duplicate",
    );
    await assert.rejects(
      engine.start({ ...run, plan: { ...run.plan, wid: "" } }),
      (e: unknown) => e instanceof EngineError && e.code === "invalid",
    );
    await Promise.all([engine.destroy(wid), engine.destroy(wid)]);
    await engine.destroy(wid);
    await engine.destroy("never-started");
    assert.equal(statuses.filter((s) => s.status !== "running").length, 1, "exactly one final status");
    assert.deepEqual(engine.wids, []);
    assert.equal((await engine.recover(makeRun(["say x"]).run)).state, "lost");

    const left = makeRun(["hang"]);
    await engine.start(left.run);
    await engine.close();
    assert.equal((await engine.wait(left.wid)).status, "failed");
    await assert.rejects(
      engine.start(makeRun([]).run),
      (e: unknown) => e instanceof EngineError && e.code === "closed",
    );
  });
});
