/**
 * `engine: microvm` workflows on a real apiserver: the Job carries the operator's RuntimeClass
 * when microvm.runtimeClassName is set and none otherwise; its pod is the microvm one (mapped
 * image, nix-store, /workspace/repo); the services' and the Docker daemon's native sidecars are
 * stored before the runner; a service Loom does not run, or virtualisation.docker where the
 * operator did not enable it, fails the workflow at once with Unsupported.
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
const microvmWorkflow = (
  extra: {
    services?: string[];
    virtualisation?: string[];
    postgresql?: PostgresqlSpec;
    redis?: { port: number };
    mysql?: {
      ensureDatabases: string[];
      ensureUsers: { name: string; ensurePermissions: { on: string; privileges: string }[] }[];
    };
  } = {},
) =>
  workflow("build.yml", {
    image: "nixos",
    microvm: {
      image: "nixos",
      services: extra.services ?? [],
      virtualisation: extra.virtualisation ?? [],
      ...(extra.postgresql && { postgresql: extra.postgresql }),
      ...(extra.redis && { redis: extra.redis }),
      ...(extra.mysql && { mysql: extra.mysql }),
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

test("services.redis and services.mariadb: the apiserver stores both native sidecars, sockets shared", {
  skip: cluster.skip,
}, async (t) => {
  const mysql = {
    ensureDatabases: ["app"],
    ensureUsers: [
      { name: "spindle-workflow", ensurePermissions: [{ on: "app.*", privileges: "ALL PRIVILEGES" }] },
    ],
  };
  const job = await microvmJob(
    t,
    {},
    microvmWorkflow({ services: ["redis", "mariadb"], redis: { port: 6379 }, mysql }),
  );
  const pod = job.spec!.template.spec!;
  assert.deepEqual(
    pod.initContainers!.filter((c) => c.restartPolicy === "Always").map((c) => [c.name, c.image]),
    [
      ["service-redis", "docker.io/library/redis:7.4.5"],
      ["service-mariadb", "docker.io/library/mariadb:11.8.2"],
    ],
  );
  const mounts = pod.containers[0]!.volumeMounts!.map((m) => m.mountPath);
  assert.ok(mounts.includes("/run/redis") && mounts.includes("/run/mysqld"), mounts.join(" "));
});

test("virtualisation.docker: Unsupported naming microvm.docker.enabled when off; a Docker sidecar when on", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  await startController(t, cluster, parkedConfig(ns));
  const run = await createRun(cluster, ns, [microvmWorkflow({ virtualisation: ["docker"] })]);
  const stored = await waitForWorkflow(cluster, ns, run.metadata.name!, "build.yml", "failed");
  const wf = stored.status!.workflows[0]!;
  assert.equal(wf.reason, "Unsupported");
  assert.equal(
    wf.message,
    "virtualisation.docker: this Loom runs no Docker daemon for microvm workflows (microvm.docker.enabled is false); the workflow was not started",
  );
  assert.deepEqual(await listJobs(cluster, ns), []);

  const job = await microvmJob(
    t,
    { microvm: { docker: { enabled: true } } },
    microvmWorkflow({ virtualisation: ["docker"] }),
  );
  const pod = job.spec!.template.spec!;
  const docker = pod.initContainers!.find((c) => c.name === "virtualisation-docker")!;
  assert.equal(docker.restartPolicy, "Always");
  assert.equal(docker.securityContext!.privileged, true);
  assert.ok(
    pod.containers[0]!.env!.some(
      (e) => e.name === "DOCKER_HOST" && e.value === "unix:///run/user/1000/docker.sock",
    ),
  );
});
