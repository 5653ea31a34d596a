/**
 * The informers' transforms (src/api/slim.ts) keep every field the controller reads: a workflow's
 * status observed from the slim Job and pod is the one observed from the full objects, and the
 * slim objects are a small part of the full ones.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CoreV1Event, V1Job, V1Pod } from "@kubernetes/client-node";
import { RUNNER_SILENT_ANNOTATION } from "../api/contract/index.ts";
import { slimEvent, slimJob, slimPod } from "../api/slim.ts";
import { podCreateFailureOf } from "./api.ts";
import { planWorkflow } from "./build/plan.ts";
import { config, OWNER, spec } from "./build/testdata/fixtures.ts";
import { observeJob } from "./observe.ts";

const NOW = new Date("2026-11-27T12:10:00Z");
const T0 = "2026-11-27T12:00:00Z";

function built(): V1Job {
  const plan = planWorkflow({
    owner: OWNER,
    spec: spec(),
    workflowName: "build.yml",
    nodes: undefined,
    config: config(),
  });
  assert.ok(plan.ok);
  const job = structuredClone(plan.job);
  job.metadata!.uid = "job-uid";
  job.metadata!.resourceVersion = "7";
  job.metadata!.creationTimestamp = T0 as never;
  job.metadata!.managedFields = [{ manager: "loom", operation: "Update", fieldsV1: { "f:spec": {} } }];
  return job;
}

function podOf(job: V1Job, status: V1Pod["status"]): V1Pod {
  return {
    metadata: {
      name: `${job.metadata!.name}-abcde`,
      namespace: "loom",
      uid: "pod-uid",
      labels: job.spec!.template.metadata!.labels!,
      annotations: job.spec!.template.metadata!.annotations!,
      ownerReferences: [
        { apiVersion: "batch/v1", kind: "Job", name: job.metadata!.name!, uid: "job-uid", controller: true },
      ],
      creationTimestamp: T0 as never,
    },
    spec: { ...job.spec!.template.spec!, nodeName: "node-1" },
    status,
  };
}

const running: V1Pod["status"] = {
  phase: "Running",
  startTime: T0 as never,
  containerStatuses: [
    {
      name: "runner",
      image: "i",
      imageID: "",
      ready: true,
      restartCount: 0,
      state: { running: { startedAt: T0 as never } },
    },
  ],
};
const pulling: V1Pod["status"] = {
  phase: "Pending",
  startTime: T0 as never,
  initContainerStatuses: [
    {
      name: "setup-user",
      image: "i",
      imageID: "",
      ready: false,
      restartCount: 0,
      state: { waiting: { reason: "ImagePullBackOff", message: "nope" } },
    },
  ],
};
const scheduledNowhere: V1Pod["status"] = {
  phase: "Pending",
  conditions: [
    {
      type: "PodScheduled",
      status: "False",
      reason: "Unschedulable",
      message: "0/3 nodes",
      lastTransitionTime: T0 as never,
    },
  ],
};

describe("cache transforms", () => {
  it("observing slim objects gives the status observing full ones gives", () => {
    const timeouts = config().timeouts;
    const job = built();
    const deadline = structuredClone(job);
    deadline.status = {
      conditions: [
        { type: "Failed", status: "True", reason: "DeadlineExceeded", lastTransitionTime: T0 as never },
      ],
    };
    const silent = structuredClone(job);
    silent.metadata!.annotations = {
      ...silent.metadata!.annotations,
      [RUNNER_SILENT_ANNOTATION]: "no line for 120s",
    };
    const cases: [V1Job, V1Pod[]][] = [
      [job, []],
      [job, [podOf(job, running)]],
      [job, [podOf(job, pulling)]],
      [{ ...job, spec: { ...job.spec!, template: job.spec!.template } }, [podOf(job, scheduledNowhere)]],
      [deadline, []],
      [silent, [podOf(job, running)]],
    ];
    for (const [j, pods] of cases) {
      const full = observeJob({ job: j, pods, now: NOW, timeouts });
      const slim = observeJob({ job: slimJob(j), pods: pods.map(slimPod), now: NOW, timeouts });
      assert.deepEqual(slim, full);
    }
  });

  it("keeps a small part of a workflow's Job and pod: no template, no RunnerSpec, no managedFields", () => {
    const job = built();
    const pod = podOf(job, running);
    const slim = { job: slimJob(job), pod: slimPod(pod) };
    assert.equal(slim.job.spec?.template, undefined);
    assert.equal(slim.job.metadata?.managedFields, undefined);
    assert.equal(slim.pod.metadata?.annotations, undefined, "the RunnerSpec annotation is not kept");
    assert.deepEqual(slim.pod.metadata?.labels, pod.metadata?.labels);
    assert.deepEqual(slim.pod.metadata?.ownerReferences, pod.metadata?.ownerReferences);
    assert.equal(slim.pod.spec?.nodeName, "node-1");
    assert.ok(JSON.stringify(slim.job).length * 5 < JSON.stringify(job).length);
    assert.ok(JSON.stringify(slim.pod).length * 5 < JSON.stringify(pod).length);
  });

  it("keeps what a FailedCreate event says", () => {
    const e: CoreV1Event = {
      metadata: { name: "e1", namespace: "loom", managedFields: [{ manager: "kcm" }] },
      involvedObject: { kind: "Job", name: "j", uid: "job-uid" },
      reason: "FailedCreate",
      message: 'Error creating: pods "j-x" is forbidden',
      firstTimestamp: T0 as never,
      lastTimestamp: "2026-11-27T12:05:00Z" as never,
      source: { component: "job-controller" },
    };
    assert.deepEqual(podCreateFailureOf([slimEvent(e)], "job-uid"), podCreateFailureOf([e], "job-uid"));
    assert.equal(slimEvent(e).metadata?.managedFields, undefined);
  });
});
