/**
 * The runner image of each architecture, used as a node of that architecture would use it.
 *
 * A workflow with `architecture: arm64` (and one with amd64) goes through the real controller on
 * the real control plane: its Job must pin the pod to that architecture, and its install-runner
 * must take the runner image (one multi-arch tag: the kubelet pulls the node's platform) and
 * accept only that architecture's bundle. On the full control plane, kwok's scheduler-bound pod
 * lands on a node of that architecture.
 *
 * Then the test plays that node's kubelet, as root: the runner image's files, laid out by
 * scripts/image-layout.ts (exactly what the Dockerfile copies) on top of busybox-static of that
 * architecture, run install-runner's command from the Job verbatim; a workflow image (busybox of
 * that architecture) gets the filled runner volume, the spec from the Job's annotation and the
 * secret from the run's Secret, and runs the runner container's command verbatim. linux/arm64
 * runs under qemu-user-static (binfmt_misc).
 */
import assert from "node:assert/strict";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { CoreV1Api, type V1Container, type V1Job } from "@kubernetes/client-node";
import { ARCH_INFO, ARCHES, type BundleArch } from "../../scripts/build-runner-bundle.ts";
import { layOutRunner } from "../../scripts/image-layout.ts";
import { installRunnerCommand, WRONG_BUNDLE_EXIT } from "../../src/controller/build/runner-image.ts";
import {
  createRun,
  ensureNodes,
  installCrd,
  listJobs,
  startController,
  testConfig,
  waitForWorkflow,
  workflow,
} from "../controller/support.ts";
import { eventually, getTestCluster } from "../harness/index.ts";
import { busyboxRoot, chroot, isRoot, linkTree, ofType, text } from "../runner/chroot.ts";

const cluster = await getTestCluster();
if (!cluster.skip) {
  await installCrd(cluster);
  await ensureNodes(cluster);
}

const RUNNER_IMAGE = "registry.test/loom-runner:1.0";
const SECRET = "arch-secret-771";

const container = (job: V1Job, name: string): V1Container => {
  const pod = job.spec!.template.spec!;
  const found = [...(pod.initContainers ?? []), ...pod.containers].find((c) => c.name === name);
  assert.ok(found, `no container ${name}`);
  return found;
};

for (const arch of ARCHES) {
  test(`an architecture: ${arch} workflow gets a pod whose runner is the linux/${arch} bundle`, {
    skip: cluster.skip,
  }, async (t) => {
    const ns = await cluster.namespace(t);
    await startController(t, cluster, testConfig(ns, { images: { runner: RUNNER_IMAGE } }));
    const run = await createRun(
      cluster,
      ns,
      [
        workflow("arch.yml", {
          architecture: arch,
          secretKeys: ["TOKEN"],
          steps: [
            {
              id: 0,
              name: "where",
              kind: "user",
              command: 'echo "arch=$(uname -m) home=$HOME user=$USER pwd=$(pwd)"; echo "token=$TOKEN"',
              env: [{ name: "TOKEN", secret: "TOKEN" }],
            },
            { id: 1, name: "fails", kind: "user", command: "exit 3", env: [] },
          ],
        }),
      ],
      { secrets: { TOKEN: SECRET } },
    );
    const name = run.metadata.name!;
    await waitForWorkflow(cluster, ns, name, "arch.yml", (_p, reason) => reason !== "Pending");
    const [job] = await listJobs(cluster, ns);
    assert.ok(job, "the controller created the Job");

    // What the Job says: this architecture's nodes, the multi-arch runner image, this bundle.
    assert.equal(job.spec!.template.spec!.nodeSelector!["kubernetes.io/arch"], arch);
    const install = container(job, "install-runner");
    assert.equal(install.image, RUNNER_IMAGE);
    assert.deepEqual(install.command!.slice(3), ["install-runner", "/loom-runner", arch, "/loom/runner"]);

    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    if (cluster.full) {
      // kwok's nodes include both architectures: the pod is bound to one of this architecture.
      let nodeName = "";
      await eventually(
        "the workflow pod bound to a node",
        async () => {
          const pods = await core.listNamespacedPod({
            namespace: ns,
            labelSelector: `job-name=${job.metadata!.name}`,
          });
          nodeName = pods.items[0]?.spec?.nodeName ?? "";
          return nodeName !== "" || "not bound yet";
        },
        30_000,
      );
      const node = await core.readNode({ name: nodeName });
      assert.equal(node.metadata!.labels!["kubernetes.io/arch"], arch, `pod on ${nodeName}`);
    }

    if (!isRoot) {
      t.diagnostic("not root: the kubelet's part (chroot) is left out");
      return;
    }
    // --- the kubelet of a linux/<arch> node -----------------------------------------------------
    // The spec volume as the kubelet fills it: a downward API file of the pod's annotation (the
    // pod template's), for a spec that fits one.
    const field = job.spec!.template.spec!.volumes!.find((v) => v.name === "spec")!.downwardAPI!.items![0]!
      .fieldRef!.fieldPath;
    const key = /^metadata\.annotations\['(.+)'\]$/.exec(field)![1]!;
    const spec = job.spec!.template.metadata!.annotations![key]!;
    const secret = await core.readNamespacedSecret({ name: `${name}-secrets`, namespace: ns });
    const runnerImage = await busyboxRoot(arch);
    const workflowImage = await busyboxRoot(arch);
    t.after(() => {
      rmSync(runnerImage, { recursive: true, force: true });
      rmSync(workflowImage, { recursive: true, force: true });
    });
    await layOutRunner(arch, runnerImage);
    mkdirSync(join(runnerImage, "loom", "runner"), { recursive: true }); // the emptyDir
    const installed = await chroot(runnerImage, install.command!, { PATH: "/bin" });
    assert.equal(installed.code, 0, installed.stderr);

    const main = container(job, "runner");
    linkTree(join(runnerImage, "loom", "runner"), join(workflowImage, "loom", "runner"));
    mkdirSync(join(workflowImage, "loom", "spec"), { recursive: true });
    writeFileSync(join(workflowImage, "loom", "spec", "spec.json"), spec);
    // setup-user's part: the home and workspace folders.
    for (const dir of ["home", "workspace"])
      mkdirSync(join(workflowImage, "tangled", dir), { recursive: true });
    const env: Record<string, string> = { PATH: "/bin" };
    for (const e of main.env ?? []) {
      const ref = e.valueFrom?.secretKeyRef;
      env[e.name] = ref ? Buffer.from(secret.data![ref.key]!, "base64").toString("utf8") : e.value!;
    }
    const ran = await chroot(
      workflowImage,
      ["/bin/sh", "-c", 'cd "$0" && exec "$@"', main.workingDir!, ...main.command!],
      env,
    );
    assert.equal(ran.code, 3, ran.stderr);
    assert.equal(ofType(ran.events, "hello")[0]?.shell, "/bin/sh");
    assert.equal(
      text(ran.events, 0, "stdout"),
      `arch=${ARCH_INFO[arch].uname} home=/tangled/home user=runner pwd=/tangled/workspace\ntoken=***\n`,
    );
    const result = ofType(ran.events, "result")[0];
    assert.deepEqual([result?.status, result?.exitCode, result?.failedStep], ["failed", 3, 1]);
    assert.ok(!ran.stdout.includes(SECRET), "the secret is masked");
  });
}

test("a single-platform runner image of the other architecture stops install-runner with a sentence", {
  skip: isRoot ? false : "chroot needs root",
}, async (t) => {
  // An arm64 workflow whose images.runner names an amd64-only image: the kubelet pulls amd64.
  const arch: BundleArch = "arm64";
  const runnerImage = await busyboxRoot("amd64");
  t.after(() => rmSync(runnerImage, { recursive: true, force: true }));
  await layOutRunner("amd64", runnerImage);
  mkdirSync(join(runnerImage, "loom", "runner"), { recursive: true });
  const ran = await chroot(runnerImage, installRunnerCommand("/loom-runner", arch, "/loom/runner"), {
    PATH: "/bin",
  });
  assert.equal(ran.code, WRONG_BUNDLE_EXIT);
  assert.match(ran.stderr, /holds the linux\/amd64 bundle, but the workflow runs on linux\/arm64/);
});
