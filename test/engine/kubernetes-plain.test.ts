/**
 * The Kubernetes engine with the real SpindleSet controller, everything up to the pod: Jobs are
 * created but no pod ever runs (a bare control plane has no Job controller; on the full one the
 * resource profile matches no node), which is exactly what placement and cancel need. Runs on
 * the plain control plane (etcd + kube-apiserver) as well as the full one.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { BatchV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import pino from "pino";
import { secretName, spindleSetName } from "../../src/api/contract/index.ts";
import { GROUP, SPINDLESET, VERSION } from "../../src/api/v1alpha1/group.ts";
import type { SpindleSet } from "../../src/api/v1alpha1/spindleset.ts";
import { parseControllerConfig } from "../../src/controller/config.ts";
import { SpindleSetController } from "../../src/controller/controller.ts";
import { EngineError } from "../../src/engine/engine.ts";
import { KubernetesEngine } from "../../src/engine/kubernetes/engine.ts";
import { eventually, getTestCluster } from "../harness/index.ts";
import { makeRun } from "./suite.ts";

const cluster = await getTestCluster();
const quiet = pino({ level: process.env.LOOM_TEST_LOG ?? "silent" });

async function readSpindleSet(kc: KubeConfig, ns: string, name: string): Promise<SpindleSet | undefined> {
  try {
    return (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: SPINDLESET.plural,
      name,
    })) as SpindleSet;
  } catch {
    return undefined;
  }
}

test("workflows of one pipeline go into one SpindleSet with an owned Secret; cancel and destroy act per workflow", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const kc = cluster.kubeConfig();
  await cluster.installSpindleSetCrd();
  const controller = SpindleSetController.create({
    kubeConfig: kc,
    // A profile no node matches: with the full control plane too (kwok), no pod ever runs.
    config: parseControllerConfig({
      namespace: ns,
      images: { runner: "example.invalid/runner:test" },
      template: { resourceProfiles: [{ nodeSelector: { "loom.test/never": "true" } }] },
    }),
    log: quiet,
    leaderElection: false,
    checkNodes: false,
    resyncMs: 2000,
  });
  await controller.start();
  t.after(() => controller.stop());
  const engine = new KubernetesEngine({ kubeConfig: kc, namespace: ns, logger: quiet, pollMs: 200 });
  t.after(() => engine.close());

  const value = "plain-s3cret-value";
  const runs = ["a.yml", "b.yml", "c.yml"].map((name, i) => {
    const r = makeRun([`echo ${i}`], { secrets: { TOKEN: value }, wid: `plain-knot-rk1-${name}` });
    r.plan = { ...r.plan, pipeline: { knot: "plain.knot", rkey: "rk1" }, workflowName: name };
    return r;
  });
  await Promise.all(runs.map((r) => engine.start(r)));
  const name = spindleSetName({ knot: "plain.knot", rkey: "rk1" });
  const ss = (await readSpindleSet(kc, ns, name))!;
  assert.deepEqual(ss.spec.workflows.map((w) => w.name).sort(), ["a.yml", "b.yml", "c.yml"]);
  assert.equal(ss.spec.secretRef?.name, secretName(name));
  const secret = await kc
    .makeApiClient(CoreV1Api)
    .readNamespacedSecret({ name: secretName(name), namespace: ns });
  assert.equal(secret.metadata?.ownerReferences?.[0]?.uid, ss.metadata.uid);
  assert.ok(!JSON.stringify(ss).includes(value));

  // The controller makes one Job per workflow (no Job controller here: they never get pods).
  const batch = kc.makeApiClient(BatchV1Api);
  await eventually("three Jobs", async () => {
    const n = (await batch.listNamespacedJob({ namespace: ns })).items.length;
    return n === 3 || `${n} Jobs`;
  });

  // Cancelling one workflow leaves the others alone.
  await engine.cancel(runs[0]!.plan.wid, "User canceled the workflow");
  const outcome = await engine.wait(runs[0]!.plan.wid);
  assert.deepEqual(
    { status: outcome.status, error: outcome.error },
    { status: "cancelled", error: "User canceled the workflow" },
  );
  const after = (await readSpindleSet(kc, ns, name))!;
  assert.deepEqual(after.spec.cancelWorkflows, ["a.yml"]);
  assert.equal(after.spec.cancel, false);
  for (const wf of ["b.yml", "c.yml"]) {
    const ws = after.status?.workflows.find((w) => w.name === wf);
    assert.ok(ws && !["success", "failed", "timeout", "cancelled"].includes(ws.phase), `${wf}: ${ws?.phase}`);
  }

  // destroy: idempotent, the run's SpindleSet goes with its last known workflow.
  await Promise.all([engine.destroy(runs[0]!.plan.wid), engine.destroy(runs[0]!.plan.wid)]);
  await engine.destroy(runs[1]!.plan.wid); // cancels it first, waits for the controller
  assert.equal(runs[1]!.statuses.at(-1)?.status, "cancelled");
  assert.ok(await readSpindleSet(kc, ns, name));
  await engine.destroy(runs[2]!.plan.wid);
  await engine.destroy("never-started");
  assert.equal(await readSpindleSet(kc, ns, name), undefined);
  await assert.rejects(engine.wait(runs[2]!.plan.wid), (e: unknown) => e instanceof EngineError);
  for (const r of runs) assert.equal(r.statuses.filter((s) => s.status !== "running").length, 1);
});

test("a plan the API would refuse is refused at start; a stale SpindleSet is replaced", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const kc = cluster.kubeConfig();
  await cluster.installSpindleSetCrd();
  const engine = new KubernetesEngine({ kubeConfig: kc, namespace: ns, logger: quiet, pollMs: 200 });
  t.after(() => engine.close());
  const bad = makeRun(["true"]);
  bad.plan = { ...bad.plan, architecture: "mips" };
  await assert.rejects(engine.start(bad), (e: unknown) => e instanceof EngineError && e.code === "invalid");

  // A previous process left this wid's SpindleSet behind: destroy() of the unknown wid clears it.
  const run = makeRun(["true"]);
  await engine.start(run);
  const name = spindleSetName(run.plan.pipeline);
  const oldUid = (await readSpindleSet(kc, ns, name))?.metadata.uid;
  await engine.close();
  const next = new KubernetesEngine({ kubeConfig: kc, namespace: ns, logger: quiet, pollMs: 200 });
  t.after(() => next.close());
  await next.destroy(run.plan.wid);
  assert.equal(await readSpindleSet(kc, ns, name), undefined);
  const again = makeRun(["true"], { wid: run.plan.wid });
  await next.start(again);
  const fresh = await readSpindleSet(kc, ns, name);
  assert.ok(fresh && fresh.metadata.uid !== oldUid);
});
