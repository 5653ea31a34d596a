/**
 * `engine: microvm` workflows on a real apiserver: the Job carries the operator's RuntimeClass
 * when microvm.runtimeClassName is set and none otherwise; its pod is the microvm one (mapped
 * image, nix-store, /workspace/repo); a service fails the workflow at once with Unsupported.
 */
import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import { NodeV1Api } from "@kubernetes/client-node";
import { getTestCluster } from "../harness/index.ts";
import {
  createRun,
  ensureNodes,
  installCrd,
  listJobs,
  parkedConfig,
  startController,
  waitForWorkflow,
  workflow,
} from "./support.ts";

const cluster = await getTestCluster();
const RUNTIME_CLASS = "loom-test-kata";
if (!cluster.skip) {
  await installCrd(cluster);
  await ensureNodes(cluster);
  // A RuntimeClass as Kata Containers installs one (the handler only matters on a real node).
  await cluster
    .kubeConfig()
    .makeApiClient(NodeV1Api)
    .createRuntimeClass({ body: { metadata: { name: RUNTIME_CLASS }, handler: "kata-qemu" } })
    .catch((err: { code?: number }) => {
      if (err.code !== 409) throw err;
    });
}

type PostgresqlSpec = {
  ensureDatabases: string[];
  ensureUsers: { name: string; ensureDBOwnership: boolean }[];
};
const microvmWorkflow = (extra: { services?: string[]; postgresql?: PostgresqlSpec } = {}) =>
  workflow("build.yml", {
    image: "nixos",
    microvm: {
      image: "nixos",
      services: extra.services ?? [],
      virtualisation: [],
      ...(extra.postgresql && { postgresql: extra.postgresql }),
    },
    steps: [
      { id: 0, name: "Set up dev shell", kind: "system", command: "nix print-dev-env --expr '…'", env: [] },
      { id: 1, name: "test", kind: "user", command: "go test ./...", env: [] },
    ],
  });

/** Starts a controller with `extra` config, creates one microvm run, returns its stored Job. */
async function microvmJob(t: TestContext, extra: Record<string, unknown>, wf = microvmWorkflow()) {
  const ns = await cluster.namespace(t);
  await startController(t, cluster, parkedConfig(ns, extra));
  const run = await createRun(cluster, ns, [wf]);
  await waitForWorkflow(cluster, ns, run.metadata.name!, "build.yml", (_p, reason) => reason === "Scheduled");
  const jobs = await listJobs(cluster, ns);
  assert.equal(jobs.length, 1);
  return jobs[0]!;
}

test("microvm.runtimeClassName: the stored Job's pod runs under it", { skip: cluster.skip }, async (t) => {
  const job = await microvmJob(t, { microvm: { runtimeClassName: RUNTIME_CLASS } });
  const pod = job.spec!.template.spec!;
  assert.equal(pod.runtimeClassName, RUNTIME_CLASS);
  const runner = pod.containers[0]!;
  assert.equal(runner.image, "docker.io/nixos/nix:2.28.3");
  assert.equal(runner.workingDir, "/workspace/repo");
  assert.deepEqual(
    pod.initContainers!.map((c) => [c.name, c.image]),
    [
      ["setup-user", "docker.io/library/busybox:1.37"],
      ["install-runner", "ghcr.io/example/loom-runner:0.1.0"],
      ["nix-store", "docker.io/nixos/nix:2.28.3"],
    ],
  );
  assert.deepEqual(
    runner.volumeMounts!.filter((m) => m.mountPath === "/nix" || m.mountPath === "/workspace/repo"),
    [
      { name: "tangled", mountPath: "/workspace/repo", subPath: "workspace" },
      { name: "nix", mountPath: "/nix" },
    ],
  );
});

test("without microvm.runtimeClassName the Job names no RuntimeClass", { skip: cluster.skip }, async (t) => {
  const job = await microvmJob(t, {});
  assert.equal(job.spec!.template.spec!.runtimeClassName, undefined);
  assert.equal(job.spec!.template.spec!.containers[0]!.image, "docker.io/nixos/nix:2.28.3");
});

test("services.postgresql: the apiserver stores the native sidecar before the runner", {
  skip: cluster.skip,
}, async (t) => {
  const postgresql = { ensureDatabases: ["app"], ensureUsers: [{ name: "app", ensureDBOwnership: true }] };
  const job = await microvmJob(t, {}, microvmWorkflow({ services: ["postgresql"], postgresql }));
  const pod = job.spec!.template.spec!;
  const sidecar = pod.initContainers!.find((c) => c.name === "service-postgresql")!;
  assert.equal(sidecar.restartPolicy, "Always");
  assert.equal(sidecar.image, "docker.io/library/postgres:17.6");
  assert.deepEqual(sidecar.startupProbe!.exec!.command, ["test", "-f", "/run/postgresql/.loom-ready"]);
  assert.ok(pod.containers[0]!.volumeMounts!.some((m) => m.mountPath === "/run/postgresql"));
});

test("a microvm service fails the workflow at once with Unsupported, and no Job", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  await startController(t, cluster, parkedConfig(ns));
  const run = await createRun(cluster, ns, [microvmWorkflow({ services: ["nginx"] })]);
  const stored = await waitForWorkflow(cluster, ns, run.metadata.name!, "build.yml", "failed");
  const wf = stored.status!.workflows[0]!;
  assert.equal(wf.reason, "Unsupported");
  assert.equal(
    wf.message,
    "services.nginx: Loom runs only postgresql, redis, mysql, mariadb; the workflow was not started",
  );
  assert.deepEqual(await listJobs(cluster, ns), []);
});
