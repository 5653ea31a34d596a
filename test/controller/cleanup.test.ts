/** Cleanup on a real apiserver: the orphan sweep, unknown runs, and the TTL of finished runs. */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1ObjectMeta,
} from "@kubernetes/client-node";
import { CONTAINERS, runLabels, workflowLabels } from "../../src/api/contract/index.ts";
import { GROUP, SPINDLESET, VERSION } from "../../src/api/v1alpha1/group.ts";
import { eventually, getTestCluster } from "../harness/index.ts";
import {
  createRun,
  ensureNodes,
  getRun,
  installCrd,
  listJobs,
  parkedConfig,
  recordRequests,
  startController,
  testConfig,
  waitForWorkflow,
  workflow,
} from "./support.ts";

const cluster = await getTestCluster();
if (!cluster.skip) {
  await installCrd(cluster);
  await ensureNodes(cluster);
}

const CR = { group: GROUP, version: VERSION, plural: SPINDLESET.plural };

test("the orphan sweep removes strays and runs the spindle does not know, and keeps the rest", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const kc = cluster.kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const batch = kc.makeApiClient(BatchV1Api);
  // A live run with its Secret; a run the spindle no longer knows.
  const kept = await createRun(cluster, ns, [workflow("kept.yml")], { secrets: { A: "1" } });
  const unknown = await createRun(cluster, ns, [workflow("unknown.yml")], { rkey: "forgotten" });
  // Unknown too, but made by hand (as config/samples is) and labelled so: kept.
  const handMade = await createRun(cluster, ns, [workflow("hand.yml")], { rkey: "forgotten-hand" });
  const labelled = await cluster.kubectl([
    "-n",
    ns,
    "label",
    `spindleset/${handMade.metadata.name}`,
    "loom.tangled.sh/hand-made=true",
  ]);
  assert.equal(labelled.code, 0, labelled.stderr);
  // Strays of a run that is gone, and a stale Secret of an earlier run under the live run's name.
  const goneMeta = (name: string): V1ObjectMeta => ({
    name,
    labels: workflowLabels("gone-run", "knot.test-gone-x.yml"),
  });
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: goneMeta("gone-cm"), data: {} } });
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: goneMeta("gone-secret") } });
  await core.createNamespacedPod({
    namespace: ns,
    body: { metadata: goneMeta("gone-pod"), spec: { containers: [{ name: "c", image: "busybox" }] } },
  });
  await batch.createNamespacedJob({
    namespace: ns,
    body: {
      metadata: goneMeta("gone-job"),
      spec: {
        template: {
          metadata: { labels: workflowLabels("gone-run", "knot.test-gone-x.yml") },
          spec: { restartPolicy: "Never", containers: [{ name: "c", image: "busybox" }] },
        },
      },
    },
  });
  await core.createNamespacedSecret({
    namespace: ns,
    body: {
      metadata: {
        name: "stale-secret",
        labels: runLabels(kept.metadata.name!),
        ownerReferences: [
          {
            apiVersion: `${GROUP}/${VERSION}`,
            kind: "SpindleSet",
            name: kept.metadata.name!,
            uid: "00000000-0000-4000-8000-000000000000",
          },
        ],
      },
    },
  });
  // Not Loom's: never touched.
  await core.createNamespacedConfigMap({
    namespace: ns,
    body: { metadata: { name: "someone-else" }, data: {} },
  });

  const { controller } = await startController(t, cluster, testConfig(ns), {
    isKnown: (_knot, rkey) => !rkey.startsWith("forgotten"),
    unknownMinAgeMs: 0,
  });
  await controller.sweep();
  await eventually("strays gone", async () => {
    const names = [
      ...(await core.listNamespacedConfigMap({ namespace: ns })).items,
      ...(await core.listNamespacedSecret({ namespace: ns })).items,
      ...(await core.listNamespacedPod({ namespace: ns })).items,
      ...(await batch.listNamespacedJob({ namespace: ns })).items,
    ].map((o) => o.metadata!.name!);
    const left = names.filter((n) =>
      ["gone-cm", "gone-secret", "gone-pod", "gone-job", "stale-secret"].includes(n),
    );
    return left.length === 0 || `left: ${left}`;
  });
  const custom = kc.makeApiClient(CustomObjectsApi);
  await eventually("unknown run deleted", async () => {
    const list = (await custom.listNamespacedCustomObject({ ...CR, namespace: ns })) as {
      items: { metadata: V1ObjectMeta }[];
    };
    const names = list.items.map((i) => i.metadata.name);
    return !names.includes(unknown.metadata.name) || `still ${names}`;
  });
  await getRun(cluster, ns, kept.metadata.name!);
  await getRun(cluster, ns, handMade.metadata.name!);
  await core.readNamespacedSecret({ name: `${kept.metadata.name}-secrets`, namespace: ns });
  await core.readNamespacedConfigMap({ name: "someone-else", namespace: ns });
  const keptJob = (await listJobs(cluster, ns)).find(
    (j) => j.metadata?.labels?.["loom.tangled.sh/spindleset"] === kept.metadata.name,
  );
  assert.equal(keptJob?.metadata?.ownerReferences?.[0]?.uid, kept.metadata.uid, "the live run's Job stays");
  assert.ok(controller.metrics.registry);
  const metrics = await controller.metrics.registry.metrics();
  // gone-secret is ours alone to delete. stale-secret names an owner uid that does not exist, so
  // in full mode Kubernetes' garbage collector races the sweep for it: the sweep counts it only
  // when it got there first (it counts its own deletes, never the collector's).
  assert.match(metrics, /loom_controller_orphans_deleted_total\{kind="Secret"\} [12]\n/);
});

test("a finished run is deleted after its TTL", { skip: cluster.skip }, async (t) => {
  const ns = await cluster.namespace(t);
  await startController(t, cluster, testConfig(ns, { ttl: { spindleSetSecondsAfterFinished: 2 } }));
  const run = await createRun(cluster, ns, [workflow("never.yml", { architecture: "riscv64" })]);
  const name = run.metadata.name!;
  const finished = await waitForWorkflow(cluster, ns, name, "never.yml", "failed");
  assert.ok(finished.status!.completionTime);
  const custom = cluster.kubeConfig().makeApiClient(CustomObjectsApi);
  const start = Date.now();
  await eventually("run deleted", async () => {
    try {
      await custom.getNamespacedCustomObject({ ...CR, namespace: ns, name });
      return "still there";
    } catch (err) {
      return (err as { code?: number }).code === 404;
    }
  });
  assert.ok(Date.now() - start >= 500, "not before its TTL");
});

test("a run that failed on its own keeps its Job (and the pod's log) though the cluster has not yet marked the Job finished", {
  skip: cluster.skip,
}, async (t) => {
  // Under load kube-controller-manager marks a Job Failed seconds after its pod failed. Loom
  // sees the pod first, records StepFailed, and the run is finished: its Job must not be deleted
  // as if the controller had stopped it, or its pod and log go before the engine (or an
  // operator's `kubectl logs`) read them.
  const ns = await cluster.namespace(t);
  const kc = cluster.kubeConfig();
  const requests = recordRequests(kc);
  await startController(t, cluster, parkedConfig(ns, { ttl: { spindleSetSecondsAfterFinished: 1 } }), {
    kubeConfig: kc,
  });
  const run = await createRun(cluster, ns, [workflow("fails.yml")]);
  const name = run.metadata.name!;
  const scheduled = await waitForWorkflow(cluster, ns, name, "fails.yml", (_p, r) => r === "Scheduled");
  const jobName = scheduled.status!.workflows[0]!.jobName!;
  const batch = kc.makeApiClient(BatchV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const job = await batch.readNamespacedJob({ name: jobName, namespace: ns });
  // The workflow's pod as Loom knows it (its labels, owned by the Job), but without the job
  // controller's own labels: the job controller ignores it, so the Job stays active, as it does
  // for a while when kube-controller-manager is behind.
  const labels = { ...job.spec!.template.metadata!.labels };
  for (const k of Object.keys(labels))
    if (k.includes("controller-uid") || k.includes("job-name")) delete labels[k];
  // The job controller's own pod waits unschedulable; ours must be the newest (timestamps have
  // whole seconds), as the workflow's pod is the newest one of its Job.
  let theirs = 0;
  await eventually("the job controller's pod", async () => {
    const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${jobName}` });
    theirs = Math.max(...pods.items.map((p) => new Date(p.metadata!.creationTimestamp!).getTime()));
    return pods.items.length > 0;
  });
  await new Promise((r) => setTimeout(r, Math.max(0, theirs + 1100 - Date.now())));
  const podName = `${jobName}-by-hand`;
  await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: {
        name: podName,
        labels,
        ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name: jobName, uid: job.metadata!.uid! }],
      },
      spec: {
        nodeSelector: { "loom.test/no-such-node": "true" },
        containers: [{ name: CONTAINERS.runner, image: "busybox" }],
      },
    },
  });
  const at = new Date().toISOString();
  // A merge patch of the status alone: the scheduler writes the pod's conditions meanwhile.
  await core.patchNamespacedPodStatus(
    {
      name: podName,
      namespace: ns,
      body: {
        status: {
          phase: "Failed",
          containerStatuses: [
            {
              name: CONTAINERS.runner,
              image: "busybox",
              imageID: "",
              ready: false,
              restartCount: 0,
              state: { terminated: { exitCode: 3, reason: "Error", startedAt: at, finishedAt: at } },
            },
          ],
        },
      },
    },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
  const failed = await waitForWorkflow(cluster, ns, name, "fails.yml", "failed");
  assert.equal(failed.status!.workflows[0]!.reason, "StepFailed");
  // The run is finished: its TTL (1 s) runs out and the controller deletes it. Until then it
  // must not have deleted the Job itself (the garbage collector takes it with the run).
  await eventually("the finished run deleted after its TTL", async () =>
    requests.some((r) => r.startsWith("DELETE") && r.includes(`/spindlesets/${name}`)),
  );
  const jobDeletes = requests.filter((r) => r.startsWith("DELETE") && r.includes(`/jobs/${jobName}`));
  assert.deepEqual(
    jobDeletes,
    [],
    "the Job of a workflow that failed on its own is not deleted by the controller",
  );
});

test("the orphan sweep keeps what the cached runs own without reading each run from the API server", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const kc = cluster.kubeConfig();
  const requests = recordRequests(kc);
  const { controller } = await startController(t, cluster, parkedConfig(ns), { kubeConfig: kc });
  const runs = await Promise.all(
    [1, 2, 3].map((i) => createRun(cluster, ns, [workflow(`live-${i}.yml`)], { secrets: { A: `${i}` } })),
  );
  for (const run of runs) {
    await waitForWorkflow(
      cluster,
      ns,
      run.metadata.name!,
      run.spec.workflows[0]!.name,
      (_p, r) => r === "Scheduled",
    );
  }
  const before = requests.length;
  await controller.sweep();
  const reads = requests
    .slice(before)
    .filter(
      (r) => r.startsWith("GET") && runs.some((run) => r.includes(`/spindlesets/${run.metadata.name}`)),
    );
  assert.deepEqual(reads, [], "no run read one by one: the cache knows them");
  const deletes = requests.slice(before).filter((r) => r.startsWith("DELETE"));
  assert.deepEqual(deletes, [], "nothing of a live run is swept");
  assert.equal((await listJobs(cluster, ns)).length, 3);
});
