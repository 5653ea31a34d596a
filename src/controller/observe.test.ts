import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1ContainerStatus, V1Job, V1Pod } from "@kubernetes/client-node";
import { RUNNER_SILENT_ANNOTATION } from "../api/contract/index.ts";
import { parseControllerConfig } from "./config.ts";
import { type ObserveInput, observeJob } from "./observe.ts";

const config = parseControllerConfig({
  images: { runner: "loom-runner:1" },
  timeouts: { imagePullGraceSeconds: 60, unschedulableSeconds: 300 },
});
const NOW = new Date("2026-11-27T12:10:00Z");
const T0 = "2026-11-27T12:00:00Z";

function job(extra: Partial<V1Job["status"]> = {}, annotations?: Record<string, string>): V1Job {
  return {
    metadata: {
      name: "j",
      uid: "job-uid",
      creationTimestamp: T0 as never,
      ...(annotations && { annotations }),
    },
    spec: { activeDeadlineSeconds: 900, template: {} },
    status: { startTime: T0 as never, ...extra },
  };
}

function pod(status: V1Pod["status"]): V1Pod {
  return {
    metadata: { name: "p", creationTimestamp: T0 as never },
    status: { startTime: T0 as never, ...status },
  };
}

const waiting = (name: string, reason: string, message = ""): V1ContainerStatus => ({
  name,
  image: `${name}:img`,
  imageID: "",
  ready: false,
  restartCount: 0,
  state: { waiting: { reason, message } },
});
const terminated = (
  name: string,
  exitCode: number,
  reason = "Error",
  message?: string,
): V1ContainerStatus => ({
  name,
  image: `${name}:img`,
  imageID: "",
  ready: false,
  restartCount: 0,
  state: {
    terminated: {
      exitCode,
      reason,
      finishedAt: "2026-11-27T12:05:00Z" as never,
      ...(message && { message }),
    },
  },
});

const observe = (j: V1Job, pods: V1Pod[], now = NOW) =>
  observeJob({ job: j, pods, now, timeouts: config.timeouts } satisfies ObserveInput);

describe("observeJob", () => {
  it("a Job without a pod waits, looking again; refused pods end it as PodCreateFailed after the limit", () => {
    const young = observe(job(), [], new Date(Date.parse(T0) + 4000));
    assert.deepEqual(
      { phase: young.phase, reason: young.reason, recheckAfterMs: young.recheckAfterMs },
      { phase: "pending", reason: "Scheduled", recheckAfterMs: 6000 },
    );
    const refused = 'Error creating: pods "j-abc" is forbidden: violates PodSecurity "restricted:latest"';
    const at = (seconds: number, since = T0) =>
      observeJob({
        job: job(),
        pods: [],
        now: new Date(Date.parse(since) + seconds * 1000),
        timeouts: config.timeouts,
        podCreateFailure: { since: new Date(since), message: refused },
      });
    const waitingNow = at(100);
    assert.equal(waitingNow.phase, "pending");
    assert.equal(waitingNow.message, `the Job's pod cannot be created: ${refused}`);
    assert.equal(waitingNow.recheckAfterMs, (config.timeouts.podCreateFailedSeconds - 100) * 1000);
    assert.equal(waitingNow.kill, undefined);
    const over = at(config.timeouts.podCreateFailedSeconds);
    assert.deepEqual(
      { phase: over.phase, reason: over.reason, kill: over.kill },
      { phase: "failed", reason: "PodCreateFailed", kill: true },
    );
    assert.match(over.message ?? "", /could not be created for 300s: Error creating: .*violates PodSecurity/);
  });

  it("an unfinished Job has a start time before its pod exists (the Job's creation, until it starts)", () => {
    const created = observe(job({ startTime: undefined }), [], new Date(Date.parse(T0) + 1000));
    assert.equal(created.phase, "pending");
    assert.equal(created.startTime, T0);
    const later = "2026-11-27T12:00:01Z";
    const started = observe(job({ startTime: later as never }), [pod({ phase: "Pending" })]);
    assert.equal(started.startTime, later);
  });

  it("a complete Job is a success with exit code 0", () => {
    const obs = observe(job({ conditions: [{ type: "Complete", status: "True" }], completionTime: NOW }), []);
    assert.deepEqual(
      { phase: obs.phase, reason: obs.reason, exitCode: obs.exitCode },
      { phase: "success", reason: "Succeeded", exitCode: 0 },
    );
  });

  it("a Job past its deadline is a timeout", () => {
    const obs = observe(
      job({ conditions: [{ type: "Failed", status: "True", reason: "DeadlineExceeded" }] }),
      [],
    );
    assert.equal(obs.phase, "timeout");
    assert.equal(obs.reason, "DeadlineExceeded");
  });

  it("a failed Job reports the runner's exit code; 124 is the runner's own timeout", () => {
    const failed = job({ conditions: [{ type: "Failed", status: "True", reason: "BackoffLimitExceeded" }] });
    const step = observe(failed, [pod({ phase: "Failed", containerStatuses: [terminated("runner", 3)] })]);
    assert.deepEqual([step.phase, step.reason, step.exitCode], ["failed", "StepFailed", 3]);
    const budget = observe(failed, [
      pod({ phase: "Failed", containerStatuses: [terminated("runner", 124)] }),
    ]);
    assert.deepEqual([budget.phase, budget.reason], ["timeout", "TimedOut"]);
    const oom = observe(failed, [
      pod({ phase: "Failed", containerStatuses: [terminated("runner", 137, "OOMKilled")] }),
    ]);
    assert.equal(oom.reason, "OOMKilled");
    const gone = observe(failed, []);
    assert.deepEqual([gone.phase, gone.reason], ["failed", "RunnerFailed"]);
  });

  it("a runner that could not start is RunnerFailed, not the user's StepFailed", () => {
    const failed = job({ conditions: [{ type: "Failed", status: "True", reason: "BackoffLimitExceeded" }] });
    // FallbackToLogsOnError: the launcher's one line is the tail of the container's log.
    const line = "loom-runner: cannot start: this runner bundle is for linux/amd64, the machine is aarch64";
    const wrongArch = observe(failed, [
      pod({ phase: "Failed", containerStatuses: [terminated("runner", 125, "Error", `${line}\n`)] }),
    ]);
    assert.deepEqual(
      [wrongArch.phase, wrongArch.reason, wrongArch.exitCode],
      ["failed", "RunnerFailed", 125],
    );
    assert.equal(
      wrongArch.message,
      "the runner could not start: this runner bundle is for linux/amd64, the machine is aarch64",
    );
    const noLauncher = observe(failed, [
      pod({
        phase: "Failed",
        containerStatuses: [
          terminated("runner", 128, "StartError", 'exec: "/loom/runner/loom-runner": permission denied'),
        ],
      }),
    ]);
    assert.equal(noLauncher.reason, "RunnerFailed");
    assert.match(noLauncher.message ?? "", /StartError: exec: .*permission denied/);
    // The runner's own output is JSON lines, and the words count only with the launcher's 125.
    const step = observe(failed, [
      pod({
        phase: "Failed",
        containerStatuses: [terminated("runner", 126, "Error", '{"type":"result"}\n')],
      }),
    ]);
    assert.equal(step.reason, "StepFailed");
    const other = observe(failed, [
      pod({ phase: "Failed", containerStatuses: [terminated("runner", 1, "Error", `${line}\n`)] }),
    ]);
    assert.equal(step.reason, "StepFailed");
    assert.equal(other.reason, "StepFailed");
  });

  it("a failed clone-repo is CloneFailed with git's message; another init container is InitContainerFailed", () => {
    const clone = observe(job(), [
      pod({
        phase: "Failed",
        initContainerStatuses: [
          terminated("setup-user", 0, "Completed"),
          terminated("clone-repo", 128, "Error", "fatal: repository not found"),
        ],
      }),
    ]);
    assert.equal(clone.reason, "CloneFailed");
    assert.match(clone.message!, /repository not found/);
    const setup = observe(job(), [
      pod({ phase: "Pending", initContainerStatuses: [terminated("setup-user", 1)] }),
    ]);
    assert.equal(setup.reason, "InitContainerFailed");
  });

  it("evicted and node-lost pods say so", () => {
    assert.equal(
      observe(job(), [pod({ phase: "Failed", reason: "Evicted", message: "low memory" })]).reason,
      "Evicted",
    );
    const lost = pod({
      phase: "Failed",
      conditions: [{ type: "DisruptionTarget", status: "True", reason: "DeletionByPodGC" }],
    });
    assert.equal(observe(job(), [lost]).reason, "NodeLost");
  });

  it("an image that does not pull is tolerated for the grace period, then killed", () => {
    const p = pod({
      phase: "Pending",
      initContainerStatuses: [terminated("setup-user", 0, "Completed")],
      containerStatuses: [waiting("runner", "ImagePullBackOff", "back-off pulling image")],
    });
    // setup-user finished at 12:05, so the runner's image has been pulling for 30 s at 12:05:30.
    const early = observe(job(), [p], new Date("2026-11-27T12:05:30Z"));
    assert.deepEqual([early.phase, early.kill, early.recheckAfterMs], ["pending", undefined, 30_000]);
    const late = observe(job(), [p], new Date("2026-11-27T12:06:01Z"));
    assert.deepEqual([late.phase, late.reason, late.kill], ["failed", "ImagePullFailed", true]);
    const invalid = pod({ phase: "Pending", containerStatuses: [waiting("runner", "InvalidImageName")] });
    assert.equal(observe(job(), [invalid]).kill, true);
  });

  it("an unschedulable pod waits for the limit, then is killed with the scheduler's message", () => {
    const unschedulable = (since: string) =>
      pod({
        phase: "Pending",
        conditions: [
          {
            type: "PodScheduled",
            status: "False",
            reason: "Unschedulable",
            message: "0/3 nodes are available",
            lastTransitionTime: since as never,
          },
        ],
      });
    const early = observe(job(), [unschedulable("2026-11-27T12:09:00Z")]);
    assert.deepEqual([early.phase, early.reason, early.recheckAfterMs], ["pending", "Scheduled", 240_000]);
    const late = observe(job(), [unschedulable("2026-11-27T12:00:00Z")]);
    assert.deepEqual([late.reason, late.kill], ["Unschedulable", true]);
    assert.match(late.message!, /0\/3 nodes/);
  });

  it("a missing secret key ends the run at once", () => {
    const p = pod({
      phase: "Pending",
      containerStatuses: [
        waiting("runner", "CreateContainerConfigError", "couldn't find key TOKEN in Secret loom/x"),
      ],
    });
    assert.deepEqual([observe(job(), [p]).reason, observe(job(), [p]).kill], ["SecretMissing", true]);
  });

  it("a running runner is running; a silent one (the engine's annotation) is killed", () => {
    const running = pod({
      phase: "Running",
      containerStatuses: [
        { name: "runner", image: "x", imageID: "", ready: true, restartCount: 0, state: { running: {} } },
      ],
    });
    assert.equal(observe(job(), [running]).phase, "running");
    const silent = observe(job({}, { [RUNNER_SILENT_ANNOTATION]: "no event for 120s" }), [running]);
    assert.deepEqual([silent.phase, silent.reason, silent.kill], ["failed", "RunnerSilent", true]);
  });
});

describe("observeJob: a pod on its way", () => {
  it("says the same thing with no pod, an unscheduled pod and a bound one, so the status is written once for them", () => {
    const young = new Date(Date.parse(T0) + 2000);
    const messages = [
      observe(job(), [], young),
      observe(job(), [pod({ phase: "Pending" })], young),
      observe(job(), [{ ...pod({ phase: "Pending" }), spec: { nodeName: "node-1", containers: [] } }], young),
    ].map((o) => [o.phase, o.reason, o.message]);
    assert.deepEqual(messages, Array(3).fill(["pending", "Scheduled", "waiting for the Job's pod to start"]));
  });
});
