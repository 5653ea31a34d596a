/**
 * Issue 15, cause 7: with the Kubernetes engine the spindle's limits follow the cluster's
 * capacity. With every limit left at its default (kubernetes.maxConcurrentJobs 5), a burst of
 * 120 pipelines — more than the §6.4 defaults ever held (2 running + 100 waiting) — is taken
 * whole: none is refused "queue full", 5 run at once (one per Job slot) and the rest wait in the
 * spindle's queue in fair order. Real control plane (kube-apiserver, etcd, scheduler, kwok).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { eventually, getTestCluster } from "../harness/index.ts";
import { bootKubernetesServer } from "./kubernetes-kit.ts";
import { KNOT, pipelineRecord, statuses, workflow } from "./server-kit.ts";

const cluster = await getTestCluster({ full: true });
const BURST = 120;

test("a burst beyond the old defaults is taken whole; the spindle fills the cluster's Job slots", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  await cluster.installSpindleSetCrd();

  // No spindle limits and no maxConcurrentJobs: every default applies.
  const { booted, events } = await bootKubernetesServer(t, {
    cluster,
    namespace: ns,
    prefix: "loom-k8s-burst-",
  });

  for (let i = 0; i < BURST; i++) {
    await booted.server.pipelines.acceptPipeline(
      KNOT,
      `3k8sburst${String(i).padStart(4, "0")}`,
      pipelineRecord([workflow(`w${i}.yml`, [{ name: "s", command: "true" }])]),
    );
  }
  await events.until((f) => new Set(statuses(f).map((e) => e.workflow)).size === BURST);
  const refused = statuses(events.frames).filter((e) => /queue is full/.test(String(e.error)));
  assert.deepEqual(refused, [], "pipelines of the burst were refused");
  const metrics = await booted.server.metrics.registry.getSingleMetricAsString("loom_pipelines_total");
  assert.match(metrics, new RegExp(`result="accepted",reason=""\\} ${BURST}`));
  assert.doesNotMatch(metrics, /result="overflow"/);

  // One pipeline per Job slot runs; the rest wait in the spindle, in order, places shown.
  await eventually("5 pipelines running", async () => {
    const n = booted.server.scheduler.activePipelines;
    return n === 5 || `${n} running`;
  });
  // Read in one tick: every pipeline is running, waiting or done (kwok completes pods).
  const queued = booted.server.scheduler.queueSnapshot(BURST);
  const running = booted.server.scheduler.activePipelines;
  const done = booted.server.store.pipelinesIn("done").length;
  assert.equal(queued.length + running + done, BURST);
  assert.ok(queued.length > 0, "the rest of the burst waits in the spindle");
  assert.deepEqual(
    queued.slice(0, 2).map((q) => q.position),
    [1, 2],
  );
  await events.until((f) =>
    statuses(f).some(
      (e) => e.status === "pending" && e.error === "queued: position 1 in the spindle's queue",
    ),
  );
  assert.ok(booted.server.scheduler.activePipelines <= 5, "more pipelines than Job slots were started");
});
