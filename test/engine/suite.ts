/**
 * The engine behaviour suite: what every Engine (src/engine/engine.ts) must do, run against
 * real workflows. The local engine passes it in local.test.ts, the Kubernetes engine in
 * kubernetes-suite.test.ts (real control plane and controller; kwok runs no containers, so its
 * harness runs the runner on this machine with the pod's own spec and secrets). A harness that
 * cannot reproduce a case says why (`EngineBehaviourOptions`), and the case is reported skipped
 * with that reason. (The fake engine runs no commands, so it has its own contract tests beside
 * it: src/engine/fake/engine.test.ts.)
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { type Engine, EngineError, type StatusUpdate, type WorkflowRun } from "../../src/engine/engine.ts";
import type { LogLine } from "../../src/protocol/logline.ts";
import type { LogSink } from "../../src/relay/sink.ts";
import type { RunnerStep } from "../../src/runner/protocol.ts";

export interface EngineHarness {
  engine: Engine;
  /**
   * What the run left behind (processes, directories, cluster objects), described for an
   * assertion message; empty when clean. Steps carry `SUITE_RUN=<wid>` in their environment so
   * a harness can find their processes wherever they went.
   */
  leftovers(wid: string): Promise<string[]>;
  /**
   * Another engine on the same state, as a restarted server process builds; the harness closes
   * it. Absent when runs cannot outlive their engine in one test process (local: its runners
   * are children; test/spindle/e2e-crash-truth.test.ts SIGKILLs a real server instead).
   */
  another?(): Engine;
  close(): Promise<void>;
}

/** A log sink that records lines and lets a test wait for one. */
export class RecordingSink implements LogSink {
  readonly lines: LogLine[] = [];
  readonly backlog = 0;
  #waiters: { pred: (l: LogLine) => boolean; resolve: () => void }[] = [];
  write(line: LogLine): void {
    this.lines.push(line);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.pred(line)) return true;
      w.resolve();
      return false;
    });
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  waitFor(pred: (l: LogLine) => boolean, ms = 15_000): Promise<void> {
    if (this.lines.some(pred)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("log line never came")), ms);
      this.#waiters.push({
        pred,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
  data(): string[] {
    return this.lines.filter((l) => l.kind === "data").map((l) => l.content);
  }
}

export interface TestRun extends WorkflowRun {
  log: RecordingSink;
  statuses: StatusUpdate[];
  /** `onMilestone` calls, each as `<what>@<statuses reported before it>`. */
  milestones: string[];
}

/** A run of user steps `commands` (ids 0..), each with SUITE_RUN set. */
export function makeRun(
  commands: string[],
  opts: { timeoutSeconds?: number; secrets?: Record<string, string>; wid?: string } = {},
): TestRun {
  const wid = opts.wid ?? `suite.knot-${randomBytes(5).toString("hex")}-test.yml`;
  const secrets = new Map(Object.entries(opts.secrets ?? {}));
  const steps: RunnerStep[] = commands.map((command, id) => ({
    id,
    name: `step ${id}`,
    command,
    kind: "user",
    env: [{ name: "SUITE_RUN", value: wid }, ...[...secrets.keys()].map((k) => ({ name: k, secret: k }))],
  }));
  const statuses: StatusUpdate[] = [];
  const milestones: string[] = [];
  return {
    plan: {
      pipeline: { knot: "suite.knot", rkey: wid },
      workflowName: "test.yml",
      wid,
      engine: "test",
      image: "alpine:3",
      architecture: "amd64",
      steps,
      secretKeys: [...secrets.keys()],
      timeoutSeconds: opts.timeoutSeconds ?? 60,
    },
    secrets,
    statuses,
    onStatus: (u) => statuses.push(u),
    milestones,
    onMilestone: (m) => milestones.push(`${m}@${statuses.length}`),
    log: new RecordingSink(),
  };
}

export interface EngineBehaviourOptions {
  /** Skip the whole suite (e.g. the control plane's binaries are missing), with the reason. */
  skip?: string | false | undefined;
  /**
   * Cases a harness cannot reproduce, each with the reason (a limit of the harness, never of the
   * engine; the reason names where the behaviour is tested instead).
   */
  cannot?: { cancelMidStep?: string };
  /** The milestones a successful run reports (`onMilestone`, for traces), as TestRun.milestones. */
  milestones?: string[];
}

export function engineBehaviour(
  name: string,
  create: () => Promise<EngineHarness>,
  opts: EngineBehaviourOptions = {},
): void {
  describe(`engine behaviour: ${name}`, { skip: opts.skip || false }, () => {
    let h: EngineHarness;
    before(async () => {
      h = await create();
    });
    after(async () => {
      await h?.close();
    });

    async function runToEnd(run: TestRun) {
      await h.engine.start(run);
      const outcome = await h.engine.wait(run.plan.wid);
      assert.deepEqual(await h.leftovers(run.plan.wid), [], "the run left something behind");
      await h.engine.destroy(run.plan.wid);
      return outcome;
    }

    it("runs steps in order and reports running, then success with exit code 0", async () => {
      const run = makeRun(["echo one", "echo two; echo err >&2"]);
      const outcome = await runToEnd(run);
      assert.deepEqual(outcome, { status: "success", exitCode: 0, failedStep: null });
      assert.deepEqual(run.statuses, [{ status: "running" }, outcome]);
      assert.deepEqual(run.milestones, opts.milestones ?? [], "milestones, before running");
      assert.deepEqual(
        run.log.lines.map((l) => [l.kind, l.step_id, l.step_status ?? l.stream, l.content]),
        [
          ["control", 0, "start", "step 0"],
          ["data", 0, "stdout", "one"],
          ["control", 0, "end", "step 0"],
          ["control", 1, "start", "step 1"],
          ["data", 1, "stdout", "two"],
          ["data", 1, "stderr", "err"],
          ["control", 1, "end", "step 1"],
        ],
      );
    });

    it("stops at a failing step and reports its exit code", async () => {
      const run = makeRun(["true", "echo failing; exit 3", "echo never"]);
      const outcome = await runToEnd(run);
      assert.equal(outcome.status, "failed");
      assert.equal(outcome.exitCode, 3);
      assert.equal(outcome.failedStep, 1);
      assert.ok(!run.log.data().includes("never"));
      assert.ok(!run.log.lines.some((l) => l.step_id === 2));
    });

    it("times out a workflow that exceeds its budget", async () => {
      const run = makeRun(["echo started; sleep 30"], { timeoutSeconds: 1 });
      const t0 = Date.now();
      const outcome = await runToEnd(run);
      assert.equal(outcome.status, "timeout");
      assert.ok(Date.now() - t0 < 15_000, "the timeout was not enforced promptly");
      assert.equal(run.statuses.at(-1)?.status, "timeout");
    });

    it("cancels a run in the middle of a step and leaves nothing behind", {
      skip: opts.cannot?.cancelMidStep ?? false,
    }, async () => {
      const run = makeRun(["echo started; sleep 300 & sleep 301; echo never"]);
      await h.engine.start(run);
      await run.log.waitFor((l) => l.content === "started");
      await h.engine.cancel(run.plan.wid, "User canceled the workflow");
      const outcome = await h.engine.wait(run.plan.wid);
      assert.equal(outcome.status, "cancelled");
      assert.equal(outcome.error, "User canceled the workflow");
      assert.deepEqual(
        run.statuses.map((s) => s.status),
        ["running", "cancelled"],
      );
      assert.deepEqual(await h.leftovers(run.plan.wid), []);
      assert.ok(!run.log.data().includes("never"));
      // The cancelled step still gets its end line.
      assert.equal(run.log.lines.at(-1)?.step_status, "end");
      await h.engine.destroy(run.plan.wid);
    });

    it("leaves no background process of a successful step behind", async () => {
      const run = makeRun(["sleep 302 & echo forked", "echo next"]);
      const outcome = await runToEnd(run);
      assert.equal(outcome.status, "success");
    });

    it("destroy is idempotent: twice, concurrently, on a running and on an unknown run", async () => {
      const run = makeRun(["sleep 303"]);
      await h.engine.start(run);
      await Promise.all([h.engine.destroy(run.plan.wid), h.engine.destroy(run.plan.wid)]);
      await h.engine.destroy(run.plan.wid);
      await h.engine.destroy("never-started-wid");
      assert.deepEqual(await h.leftovers(run.plan.wid), []);
      await assert.rejects(h.engine.wait(run.plan.wid), (e: unknown) => e instanceof EngineError);
      const finals = run.statuses.filter((s) => s.status !== "running");
      assert.equal(finals.length, 1, "exactly one final status");
    });

    it("refuses a second start of the same workflow id", async () => {
      const run = makeRun(["sleep 304"]);
      await h.engine.start(run);
      await assert.rejects(
        h.engine.start(run),
        (e: unknown) => e instanceof EngineError && e.code === "duplicate",
      );
      await h.engine.destroy(run.plan.wid);
    });

    it("masks secret values (and their base64) in every log line", async () => {
      const value = "s3cr3t-V4lue!";
      const run = makeRun(['echo "token=$TOKEN"; printf %s "$TOKEN" | base64; echo "$TOKEN" >&2'], {
        secrets: { TOKEN: value },
      });
      const outcome = await runToEnd(run);
      assert.equal(outcome.status, "success");
      assert.deepEqual(run.log.data(), ["token=***", "***", "***"]);
      const all = JSON.stringify(run.log.lines) + JSON.stringify(run.statuses);
      assert.ok(!all.includes(value));
      assert.ok(!all.includes(Buffer.from(value).toString("base64").replace(/=+$/, "")));
    });

    it("runs several workflows at once without mixing their logs or statuses", async () => {
      const runs = [0, 1, 2].map((i) => makeRun([`echo run-${i}; sleep 0.${i + 2}; echo end-${i}`]));
      await Promise.all(runs.map((r) => h.engine.start(r)));
      const outcomes = await Promise.all(runs.map((r) => h.engine.wait(r.plan.wid)));
      for (const [i, run] of runs.entries()) {
        assert.equal(outcomes[i]!.status, "success");
        assert.deepEqual(run.log.data(), [`run-${i}`, `end-${i}`]);
        assert.deepEqual(await h.leftovers(run.plan.wid), []);
        await h.engine.destroy(run.plan.wid);
      }
    });

    it("reports a run it never started as lost on recover", async () => {
      const run = makeRun(["true"]);
      const res = await h.engine.recover(run);
      assert.equal(res.state, "lost");
    });

    it("a run that ended while no engine watched is recovered with its real status and exit code", async (t) => {
      if (!h.another) {
        t.skip("runs cannot outlive their engine in-process here");
        return;
      }
      const first = h.another();
      const run = makeRun(["echo before", "exit 3", "echo never"]);
      await first.start(run);
      await run.log.waitFor((l) => l.kind === "data" && l.content === "before");
      // The server goes away; the run carries on and ends with no engine watching.
      await first.close();
      assert.deepEqual(await h.leftovers(run.plan.wid), []);
      const second = h.another();
      const again = { ...run, log: new RecordingSink(), statuses: [] as StatusUpdate[] };
      again.onStatus = (u) => again.statuses.push(u);
      const res = await second.recover(again);
      assert.notEqual(res.state, "lost", res.state === "lost" ? res.reason : "");
      const outcome = res.state === "finished" ? res.outcome : await second.wait(run.plan.wid);
      assert.equal(outcome.status, "failed");
      assert.equal(outcome.exitCode, 3);
      assert.equal(outcome.failedStep, 1);
      await second.destroy(run.plan.wid);
      await second.close();
    });
  });
}
