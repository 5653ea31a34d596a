/**
 * The controller metrics the dashboard and the alerts read: every reconcile's duration
 * (loom_controller_reconcile_seconds, one observation per reconcile whatever its result) and
 * each workflow counted once as it finishes, by phase and reason
 * (loom_controller_workflows_finished_total: what the infrastructure-failure alert rates).
 * A real kube-apiserver; no Job runs (the parked profile), RunnerSilent comes from the engine's
 * annotation as in production.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { BatchV1Api, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { MetricObjectWithValues, MetricValue } from "prom-client";
import { RUNNER_SILENT_ANNOTATION } from "../../src/api/contract/index.ts";
import {
  createRun,
  ensureNodes,
  installCrd,
  parkedConfig,
  startController,
  waitForWorkflow,
  workflow,
} from "../controller/support.ts";
import { getTestCluster } from "../harness/index.ts";

const cluster = await getTestCluster();
if (!cluster.skip) {
  await installCrd(cluster);
  await ensureNodes(cluster);
}

test("reconcile latency per reconcile; finished workflows counted once by phase and reason", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const { controller } = await startController(t, cluster, parkedConfig(ns), { secretWaitMs: 4000 });
  const run = await createRun(
    cluster,
    ns,
    [workflow("nokey.yml", { secretKeys: ["TOKEN"] }), workflow("quiet.yml")],
    { secrets: {} },
  );
  const name = run.metadata.name!;
  await waitForWorkflow(cluster, ns, name, "nokey.yml", "failed");
  const scheduled = await waitForWorkflow(cluster, ns, name, "quiet.yml", (_p, r) => r === "Scheduled");
  const jobName = scheduled.status!.workflows.find((w) => w.name === "quiet.yml")!.jobName!;
  await cluster
    .kubeConfig()
    .makeApiClient(BatchV1Api)
    .patchNamespacedJob(
      {
        name: jobName,
        namespace: ns,
        body: { metadata: { annotations: { [RUNNER_SILENT_ANNOTATION]: "no runner event for 120s" } } },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
  const done = await waitForWorkflow(cluster, ns, name, "quiet.yml", "failed");
  assert.equal(done.status!.workflows.find((w) => w.name === "quiet.yml")!.reason, "RunnerSilent");

  // Stopped, so no reconcile is in flight between the two reads below.
  await controller.stop();
  const all = (await controller.metrics.registry.getMetricsAsJSON()) as MetricObjectWithValues<
    MetricValue<string>
  >[];
  const metric = (n: string) => all.find((m) => m.name === n)!.values;
  const finished = metric("loom_controller_workflows_finished_total").map((v) => [
    v.labels.phase,
    v.labels.reason,
    v.value,
  ]);
  assert.deepEqual(
    finished.sort((a, b) => String(a[1]).localeCompare(String(b[1]))),
    [
      ["failed", "RunnerSilent", 1],
      ["failed", "SecretMissing", 1],
    ],
  );
  // A "stale" result is a reconcile skipped before it began (its cached SpindleSet had not yet
  // caught up with the controller's own status write): counted, but nothing ran to be timed.
  const reconciles = metric("loom_controller_reconciles_total")
    .filter((v) => v.labels.result !== "stale")
    .reduce((n, v) => n + v.value, 0);
  const timed = metric("loom_controller_reconcile_seconds").find(
    (v) => (v as { metricName?: string }).metricName === "loom_controller_reconcile_seconds_count",
  )!.value;
  assert.ok(reconciles >= 3, `${reconciles} reconciles`);
  assert.equal(timed, reconciles);
});
