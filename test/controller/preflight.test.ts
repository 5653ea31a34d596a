/**
 * The controller's preflight against the real apiserver: it passes with the CRD and access, and
 * otherwise fails once with a message that says what to install, instead of informers retrying
 * forever.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { CustomObjectsApi } from "@kubernetes/client-node";
import pino from "pino";
import { PreflightError, preflightError } from "../../src/controller/api.ts";
import { SpindleSetController } from "../../src/controller/controller.ts";
import { getTestCluster } from "../harness/index.ts";
import { installCrd, testConfig } from "./support.ts";

const cluster = await getTestCluster();
if (!cluster.skip) await installCrd(cluster);

const controllerAs = (kubeConfig: ReturnType<typeof cluster.kubeConfig>, ns: string) =>
  SpindleSetController.create({
    kubeConfig,
    config: testConfig(ns),
    log: pino({ level: "silent" }),
    leaderElection: false,
  });

test("preflight passes with the CRD installed and access to it", { skip: cluster.skip }, async (t) => {
  const ns = await cluster.namespace(t);
  await controllerAs(cluster.kubeConfig(), ns).preflight();
});

test("preflight without RBAC says to apply Loom's RBAC", { skip: cluster.skip }, async (t) => {
  const ns = await cluster.namespace(t);
  const nobody = await cluster.userKubeConfig(`nobody-${ns.slice(-6)}`, []);
  await assert.rejects(
    controllerAs(nobody, ns).preflight(),
    (err: unknown) =>
      err instanceof PreflightError &&
      err.message ===
        `not allowed to list spindlesets.loom.tangled.sh in namespace ${ns} (HTTP 403): apply Loom's RBAC (\`make deploy\`, config/rbac) and run as its service account`,
  );
});

test("preflight in a namespace that does not exist says to create it, in one sentence", {
  skip: cluster.skip,
}, async (t) => {
  const ns = `absent-${(await cluster.namespace(t)).slice(-8)}`;
  await assert.rejects(
    controllerAs(cluster.kubeConfig(), ns).preflight(),
    (err: unknown) =>
      err instanceof PreflightError &&
      err.message ===
        `namespace ${ns} does not exist: create it (kubectl create namespace ${ns}) or set kubernetes.namespace to the one Loom should use`,
  );
});

test("an API answer of 404 for the list means the CRD is missing", { skip: cluster.skip }, async (t) => {
  const ns = await cluster.namespace(t);
  // A real 404 from the apiserver for a resource nobody installed (the shared cluster keeps
  // Loom's CRD for the other tests, so the missing CRD is stood in for by a missing plural).
  const custom = cluster.kubeConfig().makeApiClient(CustomObjectsApi);
  const err = await custom
    .listNamespacedCustomObject({
      group: "loom.tangled.sh",
      version: "v1alpha1",
      namespace: ns,
      plural: "nothings",
    })
    .then(
      () => assert.fail("listed a resource that does not exist"),
      (e: unknown) => e,
    );
  assert.match(
    preflightError(err, ns).message,
    /^the SpindleSet CRD \(spindlesets\.loom\.tangled\.sh, v1alpha1\) is not installed in this cluster: run `make install`/,
  );
});

test("an API out of reach is said plainly", async () => {
  const err = new Error("connect ECONNREFUSED 127.0.0.1:1\nmore detail");
  assert.equal(
    preflightError(err, "loom").message,
    "the Kubernetes API cannot be used: connect ECONNREFUSED 127.0.0.1:1",
  );
});
