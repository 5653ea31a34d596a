/**
 * The original Loom's configuration file, verbatim (its README mounts it at
 * /etc/loom/config.yaml): `loom controller` and `loom serve` with the Kubernetes engine start
 * with it, and a workflow's Job gets the profile's resources and node selector. The file has no
 * key for the namespace or the runner image: LOOM_NAMESPACE and LOOM_RUNNER_IMAGE give them.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { CoreV1Api, type V1Job } from "@kubernetes/client-node";
import { eventually, FAKE_NODES, getTestCluster } from "../harness/index.ts";
import {
  ALICE,
  addRepo,
  bootServer,
  KNOT,
  pipelineRecord,
  workflow as serverWorkflow,
} from "../spindle/server-kit.ts";
import { createRun, installCrd, listJobs, plain, waitForWorkflow, workflow } from "./support.ts";

const ORIGINAL = `maxConcurrentJobs: 10
template:
  resourceProfiles:
    - nodeSelector:
        kubernetes.io/arch: amd64
      resources:
        requests: {cpu: "500m", memory: "1Gi"}
        limits: {cpu: "2", memory: "4Gi"}
`;

const PROFILE_RESOURCES = { requests: { cpu: "500m", memory: "1Gi" }, limits: { cpu: "2", memory: "4Gi" } };
const RUNNER_IMAGE = "example.invalid/loom-runner:test";

const cluster = await getTestCluster({ full: true });
if (!cluster.skip) await installCrd(cluster);

const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;

/** The Job's pod asks for the profile's resources (every container) and lands on an amd64 node. */
async function assertProfileApplied(ns: string, job: V1Job): Promise<void> {
  const pod = job.spec!.template.spec!;
  assert.equal(pod.nodeSelector?.["kubernetes.io/arch"], "amd64");
  for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
    assert.deepEqual(c.resources, PROFILE_RESOURCES, `container ${c.name}`);
  }
  const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  await eventually("the pod is scheduled", async () => {
    const pods = plain(
      (await core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${job.metadata!.name}` }))
        .items,
    );
    const node = pods[0]?.spec?.nodeName;
    if (!node) return "not scheduled yet";
    assert.equal(FAKE_NODES.find((n) => n.name === node)?.arch, "amd64", `scheduled on ${node}`);
    return true;
  });
}

test("loom controller starts with the original Loom's file as written and schedules by its profiles", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const dir = await mkdtemp(join(tmpdir(), "loom-original-config-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const configPath = join(dir, "config.yaml");
  await writeFile(configPath, ORIGINAL);
  const child = spawn(process.execPath, [MAIN, "controller", "--identity", "original-config"], {
    env: {
      PATH: process.env.PATH,
      KUBECONFIG: cluster.kubeconfigPath,
      LOOM_CONFIG: configPath,
      LOOM_NAMESPACE: ns,
      LOOM_RUNNER_IMAGE: RUNNER_IMAGE,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  t.after(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  await eventually("controller started", async () => out.includes("controller started") || out.slice(-300));

  const run = await createRun(cluster, ns, [
    workflow("amd.yml"),
    workflow("arm.yml", { architecture: "arm64" }),
  ]);
  const name = run.metadata.name!;
  // The only profile pins amd64: an arm64 workflow has none and fails at once, with no Job.
  const done = await waitForWorkflow(cluster, ns, name, "arm.yml", (_p, r) => r === "NoMatchingProfile");
  assert.equal(done.status?.workflows.find((w) => w.name === "arm.yml")?.phase, "failed");
  await waitForWorkflow(cluster, ns, name, "amd.yml", (p) => p !== "pending");
  const jobs = await listJobs(cluster, ns);
  assert.equal(jobs.length, 1, "one Job: amd.yml's");
  const job = jobs[0]!;
  assert.equal(job.spec!.template.spec!.containers[0]!.name, "runner");
  assert.equal(job.spec!.template.spec!.initContainers!.at(-1)!.image, RUNNER_IMAGE);
  await assertProfileApplied(ns, job);

  child.kill("SIGTERM");
  const [code] = await once(child, "exit");
  assert.equal(code, 0, out.slice(-2000));
});

test("loom serve with the Kubernetes engine starts with the original Loom's file as written", {
  skip: cluster.skip,
}, async (t) => {
  const ns = await cluster.namespace(t);
  const dir = await mkdtemp(join(tmpdir(), "loom-original-serve-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const configPath = join(dir, "config.yaml");
  await writeFile(configPath, ORIGINAL);
  const previous = process.env.KUBECONFIG;
  process.env.KUBECONFIG = cluster.kubeconfigPath;
  t.after(() => {
    if (previous === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = previous;
  });
  const booted = await bootServer({
    dir,
    env: {
      SPINDLE_SERVER_ENGINE: "kubernetes",
      LOOM_CONFIG: configPath,
      LOOM_NAMESPACE: ns,
      LOOM_RUNNER_IMAGE: RUNNER_IMAGE,
    },
  });
  t.after(() => booted.stop());
  assert.equal(booted.server.engine.name, "kubernetes");
  addRepo(booted.server, ALICE, "loom");
  await booted.server.pipelines.acceptPipeline(
    KNOT,
    "3originalcfg01",
    pipelineRecord([serverWorkflow("build.yml", [{ name: "hello", command: "echo hi" }])]),
  );
  let job: V1Job | undefined;
  await eventually(
    "the workflow's Job",
    async () => {
      job = (await listJobs(cluster, ns))[0];
      return job !== undefined || "no Job yet";
    },
    60_000,
  );
  await assertProfileApplied(ns, job!);
});
