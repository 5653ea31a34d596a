/**
 * Workflows that really run (full control plane: job controller, scheduler, kwok nodes).
 *
 * kwok completes a Running pod of a Job at once, so tests that need a Job to stay unfinished
 * give their workflows a resource profile asking for an extended resource no node has yet
 * (`loom.test/slot-*`): the pod waits unschedulable until the test advertises the resource on
 * the nodes. While it waits, a test can label it to fail (kwok's failure stage).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from "@kubernetes/client-node";
import { GROUP, SPINDLESET, VERSION } from "../../src/api/v1alpha1/group.ts";
import {
  eventually,
  FAIL_EXIT_CODE_ANNOTATION,
  FAIL_POD_LABEL,
  FAKE_NODES,
  getTestCluster,
} from "../harness/index.ts";
import {
  createRun,
  getRun,
  installCrd,
  LogCapture,
  listJobs,
  patchRunSpec,
  plain,
  recordRequests,
  startController,
  testConfig,
  waitForWorkflow,
  workflow,
} from "./support.ts";

const cluster = await getTestCluster({ full: true });
if (!cluster.skip) await installCrd(cluster);

const MERGE = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/** A profile whose pods wait until `advertise(resource)`. */
function heldConfig(ns: string, resource: string, extra: Record<string, unknown> = {}) {
  return testConfig(ns, {
    template: {
      resourceProfiles: [
        { name: "held", resources: { requests: { [resource]: "1" }, limits: { [resource]: "1" } } },
      ],
    },
    ...extra,
  });
}

function slot(): string {
  return `loom.test/slot-${randomBytes(3).toString("hex")}`;
}

async function advertise(resource: string): Promise<void> {
  const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  for (const node of FAKE_NODES) {
    await core.patchNodeStatus(
      {
        name: node.name,
        body: { status: { capacity: { [resource]: "100" }, allocatable: { [resource]: "100" } } },
      },
      MERGE,
    );
  }
}

async function podsOf(ns: string, jobName: string): Promise<V1Pod[]> {
  const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  return plain((await core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${jobName}` })).items);
}

function jobNameOf(run: Awaited<ReturnType<typeof getRun>>, workflowName: string): string {
  const name = run.status?.workflows.find((w) => w.name === workflowName)?.jobName;
  assert.ok(name, `${workflowName} has a Job`);
  return name;
}

const SECRET = "pa55-w0rd-never-stored-anywhere-else";

test("workflows run to success and failed; arm64 lands on arm64; no secret anywhere", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const resource = slot();
  const { logs } = await startController(t, cluster, heldConfig(ns, resource));
  const run = await createRun(
    cluster,
    ns,
    [
      workflow("ok.yml", { secretKeys: ["TOKEN"] }),
      workflow("arm.yml", { architecture: "arm64" }),
      workflow("bad.yml"),
    ],
    { secrets: { TOKEN: SECRET } },
  );
  const name = run.metadata.name!;
  let scheduled = await waitForWorkflow(cluster, ns, name, "bad.yml", (_p, r) => r === "Scheduled");
  const badJob = jobNameOf(scheduled, "bad.yml");
  await eventually("bad.yml's pod exists", async () => (await podsOf(ns, badJob)).length === 1);
  const [badPod] = await podsOf(ns, badJob);
  const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  await core.patchNamespacedPod(
    {
      name: badPod!.metadata!.name!,
      namespace: ns,
      body: {
        metadata: { labels: { [FAIL_POD_LABEL]: "true" }, annotations: { [FAIL_EXIT_CODE_ANNOTATION]: "3" } },
      },
    },
    MERGE,
  );
  scheduled = await getRun(cluster, ns, name);
  assert.equal(scheduled.status!.phase, "pending");
  await advertise(resource);

  const done = await eventually("run finished", async () => {
    const r = await getRun(cluster, ns, name);
    return r.status?.progress === "3/3" || `progress ${r.status?.progress}`;
  });
  void done;
  const final = await getRun(cluster, ns, name);
  const by = new Map(final.status!.workflows.map((w) => [w.name, w]));
  assert.deepEqual([by.get("ok.yml")!.phase, by.get("ok.yml")!.exitCode], ["success", 0]);
  assert.deepEqual([by.get("arm.yml")!.phase, by.get("arm.yml")!.reason], ["success", "Succeeded"]);
  assert.deepEqual(
    [by.get("bad.yml")!.phase, by.get("bad.yml")!.reason, by.get("bad.yml")!.exitCode],
    ["failed", "StepFailed", 3],
  );
  assert.equal(final.status!.phase, "failed");
  assert.equal(final.status!.conditions.find((c) => c.type === "Succeeded")!.status, "False");
  assert.ok(final.status!.completionTime);

  const [armPod] = await podsOf(ns, jobNameOf(final, "arm.yml"));
  const armNode = FAKE_NODES.find((n) => n.name === armPod!.spec!.nodeName);
  assert.equal(armNode?.arch, "arm64", `arm.yml ran on ${armPod!.spec!.nodeName}`);
  const [okPod] = await podsOf(ns, jobNameOf(final, "ok.yml"));
  assert.equal(FAKE_NODES.find((n) => n.name === okPod!.spec!.nodeName)?.arch, "amd64");

  // Everything stored in the namespace, every event, every log line: no secret value, raw or
  // base64, outside the run's own Secret.
  const kc = cluster.kubeConfig();
  const batch = kc.makeApiClient(BatchV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const stored = [
    await custom.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: SPINDLESET.plural,
      namespace: ns,
    }),
    await batch.listNamespacedJob({ namespace: ns }),
    await core.listNamespacedPod({ namespace: ns }),
    await core.listNamespacedConfigMap({ namespace: ns }),
    await core.listNamespacedEvent({ namespace: ns }),
    await kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: ns }),
    (await core.listNamespacedSecret({ namespace: ns })).items.filter(
      (s) => s.metadata?.name !== `${name}-secrets`,
    ),
  ];
  const haystack = JSON.stringify(stored) + logs.text();
  for (const needle of [SECRET, Buffer.from(SECRET).toString("base64")]) {
    assert.ok(!haystack.includes(needle), "a secret value leaked");
  }
  assert.ok(
    (await core.listNamespacedEvent({ namespace: ns })).items.length > 0,
    "the events were really read",
  );
});

test("20 queued workflows never exceed maxConcurrentJobs and all finish", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  // No periodic retry within the test: waiting runs start only because a freed slot wakes them.
  await startController(t, cluster, testConfig(ns, { maxConcurrentJobs: 3 }), { capacityRetryMs: 600_000 });
  const batch = cluster.kubeConfig().makeApiClient(BatchV1Api);
  let max = 0;
  let polling = true;
  const poll = (async () => {
    while (polling) {
      const jobs = (await batch.listNamespacedJob({ namespace: ns })).items;
      const active = jobs.filter(
        (j) =>
          !j.status?.conditions?.some(
            (c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True",
          ),
      );
      max = Math.max(max, active.length);
      await sleep(25);
    }
  })();
  const runs: Awaited<ReturnType<typeof createRun>>[] = [];
  for (let r = 0; r < 5; r++) {
    runs.push(
      await createRun(
        cluster,
        ns,
        [0, 1, 2, 3].map((i) => workflow(`w${i}.yml`)),
      ),
    );
  }
  try {
    await eventually(
      "all 20 workflows succeeded",
      async () => {
        let ok = 0;
        for (const run of runs) {
          const got = await getRun(cluster, ns, run.metadata.name!);
          ok += got.status?.workflows.filter((w) => w.phase === "success").length ?? 0;
        }
        return ok === 20 || `${ok}/20`;
      },
      120_000,
    );
  } finally {
    polling = false;
    await poll;
  }
  assert.ok(max <= 3, `at most 3 unfinished Jobs at once, saw ${max}`);
  assert.ok(max >= 2, `the limit was used, saw ${max}`);
  assert.equal((await listJobs(cluster, ns)).length, 20);
});

test("cancel deletes the Job and its pod; an unschedulable pod ends with Unschedulable", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  // cancel.yml's pod is unschedulable too: the limit must leave time to cancel it first (times
  // have whole seconds, so up to a second less than this on a loaded machine).
  const config = heldConfig(ns, slot(), { timeouts: { unschedulableSeconds: 6 } });
  await startController(t, cluster, config);
  const run = await createRun(cluster, ns, [workflow("cancel.yml"), workflow("stuck.yml")]);
  const name = run.metadata.name!;
  const scheduled = await waitForWorkflow(cluster, ns, name, "cancel.yml", (_p, r) => r === "Scheduled");
  const job = jobNameOf(scheduled, "cancel.yml");
  await eventually("cancel.yml's pod exists", async () => (await podsOf(ns, job)).length === 1);
  await patchRunSpec(cluster, ns, name, { cancelWorkflows: ["cancel.yml"] });
  const cancelled = await waitForWorkflow(cluster, ns, name, "cancel.yml", "cancelled");
  assert.equal(cancelled.status!.workflows.find((w) => w.name === "cancel.yml")!.reason, "Cancelled");
  await eventually("Job and pod gone", async () => {
    const jobs = (await listJobs(cluster, ns)).map((j) => j.metadata!.name);
    const pods = await podsOf(ns, job);
    return (!jobs.includes(job) && pods.length === 0) || `jobs ${jobs}, pods ${pods.length}`;
  });

  const stuck = await waitForWorkflow(cluster, ns, name, "stuck.yml", "failed", 30_000);
  const w = stuck.status!.workflows.find((x) => x.name === "stuck.yml")!;
  assert.equal(w.reason, "Unschedulable");
  assert.match(w.message!, /Insufficient loom\.test\/slot/);
  await eventually("the stuck Job is deleted", async () => {
    return !(await listJobs(cluster, ns)).some((j) => j.metadata!.name === w.jobName);
  });
  const final = await getRun(cluster, ns, name);
  assert.equal(final.status!.phase, "failed");
  assert.equal(final.status!.progress, "2/2");
});

test("a controller killed mid-run: its successor adopts the Jobs, none is duplicated or failed", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const resource = slot();
  const config = heldConfig(ns, resource);
  const first = await startController(t, cluster, config);
  const run = await createRun(cluster, ns, [workflow("a.yml"), workflow("b.yml")]);
  const name = run.metadata.name!;
  await waitForWorkflow(cluster, ns, name, "a.yml", (_p, r) => r === "Scheduled");
  await waitForWorkflow(cluster, ns, name, "b.yml", (_p, r) => r === "Scheduled");
  const before = new Map((await listJobs(cluster, ns)).map((j) => [j.metadata!.name!, j.metadata!.uid!]));
  assert.equal(before.size, 2);
  // Killed: no release, no cleanup; the Jobs carry on without a controller.
  await first.controller.stop({ release: false });
  await advertise(resource);
  const batch = cluster.kubeConfig().makeApiClient(BatchV1Api);
  await eventually("both Jobs complete without a controller", async () => {
    const jobs = (await batch.listNamespacedJob({ namespace: ns })).items;
    return jobs.filter((j) => j.status?.conditions?.some((c) => c.type === "Complete")).length === 2;
  });
  assert.equal((await getRun(cluster, ns, name)).status!.phase, "pending", "nobody recorded the outcome yet");

  const logs = new LogCapture();
  await startController(t, cluster, config, {}, logs);
  const final = await waitForWorkflow(cluster, ns, name, "b.yml", "success");
  assert.equal(final.status!.workflows.find((w) => w.name === "a.yml")!.phase, "success");
  const after = new Map((await listJobs(cluster, ns)).map((j) => [j.metadata!.name!, j.metadata!.uid!]));
  assert.deepEqual(after, before, "the same two Jobs, adopted");
  assert.doesNotMatch(logs.text(), /job created/);
});

test("under Pod Security restricted a default workflow runs; a buildah one is refused (PodCreateFailed, saying why)", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  // Default workflow pods meet restricted; a buildah workflow's pod (SETUID/SETGID, escalation)
  // only baseline: the job controller's pod creation is refused, which only its FailedCreate
  // events record.
  await cluster
    .kubeConfig()
    .makeApiClient(CoreV1Api)
    .patchNamespace(
      { name: ns, body: { metadata: { labels: { "pod-security.kubernetes.io/enforce": "restricted" } } } },
      MERGE,
    );
  const kubeConfig = cluster.kubeConfig();
  const requests = recordRequests(kubeConfig);
  await startController(
    t,
    cluster,
    testConfig(ns, {
      timeouts: { podCreateFailedSeconds: 2 },
      buildah: { images: ["quay.io/buildah/stable"] },
    }),
    { kubeConfig },
  );
  // The FailedCreate events come from one shared watch, never from a list per reconcile.
  const eventLists = () => requests.filter((r) => /^GET .*\/events\?/.test(r) && !/[?&]watch=true/.test(r));
  const listsAtStart = eventLists().length;
  const run = await createRun(cluster, ns, [
    workflow("plain.yml"),
    workflow("refused.yml", { image: "quay.io/buildah/stable:v1.38" }),
  ]);
  const done = await waitForWorkflow(cluster, ns, run.metadata.name!, "refused.yml", "failed", 60_000);
  const w = done.status!.workflows.find((x) => x.name === "refused.yml")!;
  assert.equal(w.reason, "PodCreateFailed");
  assert.match(w.message!, /could not be created for \d+s: .*violates PodSecurity "restricted/);
  assert.equal(listsAtStart, 1, "the informer's list");
  assert.deepEqual(eventLists().slice(listsAtStart), [], "no event list while it waited");
  await waitForWorkflow(cluster, ns, run.metadata.name!, "plain.yml", "success", 60_000);
  await eventually("the refused Job is deleted", async () => {
    return !(await listJobs(cluster, ns)).some((j) => j.metadata!.name === w.jobName);
  });
});
