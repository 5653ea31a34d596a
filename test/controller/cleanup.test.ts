/** Cleanup on a real apiserver: the orphan sweep, unknown runs, and the TTL of finished runs. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { BatchV1Api, CoreV1Api, CustomObjectsApi, type V1ObjectMeta } from "@kubernetes/client-node";
import { runLabels, workflowLabels } from "../../src/api/contract/index.ts";
import { GROUP, SPINDLESET, VERSION } from "../../src/api/v1alpha1/group.ts";
import { eventually, getTestCluster } from "../harness/index.ts";
import {
  createRun,
  ensureNodes,
  getRun,
  installCrd,
  listJobs,
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
