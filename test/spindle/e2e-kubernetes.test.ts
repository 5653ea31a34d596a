/**
 * The spindle with `SPINDLE_SERVER_ENGINE=kubernetes` on a real control plane: a pipeline from a
 * knot becomes a SpindleSet that the embedded controller (leader-elected) reconciles, and the
 * workflow's status flows back to `/events` — here through a profile no node matches, so the
 * controller ends the workflow at once with a specific reason and no pod ever runs (kwok's pods
 * run no containers; the log path is proven in test/engine/kubernetes.test.ts).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { spindleSetName } from "../../src/api/contract/index.ts";
import { GROUP, SPINDLESET, VERSION } from "../../src/api/v1alpha1/group.ts";
import type { SpindleSet } from "../../src/api/v1alpha1/spindleset.ts";
import { eventually, getTestCluster } from "../harness/index.ts";
import { bootKubernetesServer } from "./kubernetes-kit.ts";
import { KNOT, pipelineRecord, statuses, workflow } from "./server-kit.ts";

const cluster = await getTestCluster({ full: true });

test("a pipeline runs through a SpindleSet and the embedded controller, and its status reaches /events", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const kc = cluster.kubeConfig();
  await cluster.installSpindleSetCrd();

  // The server takes cluster access the way it does in production: KUBECONFIG.
  const { booted, events } = await bootKubernetesServer(t, {
    cluster,
    namespace: ns,
    prefix: "loom-k8s-server-",
    kubernetes: [
      "  template:",
      "    resourceProfiles:",
      "      - name: nowhere",
      "        nodeSelector:",
      '          loom.test/never: "true"',
    ],
  });
  assert.equal(booted.server.engine.name, "kubernetes");
  assert.ok(booted.server.controller, "the controller runs inside the spindle");
  const rkey = "3k8sserver0001";
  await booted.server.pipelines.acceptPipeline(
    KNOT,
    rkey,
    pipelineRecord([workflow("build.yml", [{ name: "hello", command: "echo hi" }])]),
  );

  const name = spindleSetName({ knot: KNOT, rkey });
  const api = kc.makeApiClient(CustomObjectsApi);
  await eventually(
    "the SpindleSet and its final status",
    async () => {
      const ss = (await api
        .getNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: ns,
          plural: SPINDLESET.plural,
          name,
        })
        .catch(() => undefined)) as SpindleSet | undefined;
      if (!ss) return "no SpindleSet yet";
      assert.deepEqual(
        ss.spec.workflows.map((w) => w.name),
        ["build.yml"],
      );
      const wf = ss.status?.workflows?.find((w) => w.name === "build.yml");
      return wf?.reason === "NoMatchingProfile" || `status ${JSON.stringify(ss.status?.workflows)}`;
    },
    60_000,
  );

  await events.until((f) => statuses(f, "build.yml").some((e) => e.status === "failed"), 60_000);
  const failed = statuses(events.frames, "build.yml").find((e) => e.status === "failed")!;
  assert.match(String(failed.error), /profile/i, "the controller's reason reaches the appview");
  assert.equal(failed.pipeline, `at://did:web:${KNOT}/sh.tangled.pipeline/${rkey}`);

  // Ready once the controller's caches are synced; one /metrics serves the controller's too.
  await eventually("/readyz", async () => {
    const res = await fetch(`${booted.url}/readyz`);
    return res.status === 200 || `${res.status} ${await res.text()}`;
  });
  const metrics = await (await fetch(`${booted.url}/metrics`)).text();
  assert.match(metrics, /^loom_controller_leader 1$/m);
  assert.match(metrics, /^loom_controller_reconciles_total\{result="\w+"\} [1-9]/m);
  assert.match(
    metrics,
    /^# TYPE loom_pipelines_total counter$/m,
    "the spindle's own metrics are still there",
  );
});
