/**
 * The chart's lifecycle on the real control plane (kwok plays the kubelet), in a namespace that
 * enforces Pod Security `restricted`, from the package `helm package` makes (what `make
 * helm-push` publishes): `helm install` reaches Available; `helm upgrade` with a new
 * image and a changed setting rolls the Deployment out (new pod template, new config); `helm
 * uninstall` removes Loom and keeps the data volume, the CRD and the secrets key. Prints how
 * long each step took (figures, not assertions).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { eventually, getTestCluster } from "../harness/index.ts";
import { CHART, helm, helmBinary, root } from "./helm-support.ts";

const cluster = await getTestCluster({ full: true });
const bin = helmBinary();
const CRD = "customresourcedefinition/spindlesets.loom.tangled.sh";

interface DeploymentStatus {
  metadata: { generation: number; annotations?: Record<string, string> };
  spec: { template: { spec: { containers: { image: string }[] } } };
  status?: {
    observedGeneration?: number;
    updatedReplicas?: number;
    availableReplicas?: number;
    replicas?: number;
    conditions?: { type: string; status: string }[];
  };
}

describe("helm install, upgrade, uninstall on a real cluster", { skip: cluster.skip || bin.skip }, () => {
  const ns = `loom-helm-${process.pid}`;
  const pvName = `${ns}-data`;
  const timings: Record<string, number> = {};
  const packageDir = mkdtempSync(join(tmpdir(), "loom-chart-"));
  const { version } = parse(readFileSync(join(CHART, "Chart.yaml"), "utf8")) as { version: string };
  const chart = join(packageDir, `loom-${version}.tgz`);
  const run = async (step: string, args: string[]) => {
    const started = performance.now();
    const r = await helm([...args, "--namespace", ns, "--kubeconfig", cluster.kubeconfigPath]);
    timings[step] = Math.round(performance.now() - started);
    assert.equal(r.code, 0, `helm ${step}: ${r.stderr}${r.stdout}`);
    return r;
  };
  const kubectl = async (...args: string[]) => {
    const r = await cluster.kubectl(["-n", ns, ...args]);
    assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  const deployment = async () =>
    JSON.parse(await kubectl("get", "deployment/loom", "-o", "json")) as DeploymentStatus;
  const rolledOut = async (image: string) => {
    await eventually(
      `deployment/loom rolled out with ${image}`,
      async () => {
        const d = await deployment();
        const s = d.status ?? {};
        const available = s.conditions?.find((c) => c.type === "Available")?.status === "True";
        const done =
          d.spec.template.spec.containers[0]?.image === image &&
          s.observedGeneration === d.metadata.generation &&
          s.updatedReplicas === 1 &&
          s.replicas === 1 &&
          s.availableReplicas === 1 &&
          available;
        return done || JSON.stringify(s);
      },
      120_000,
    );
    const pods = JSON.parse(
      await kubectl("get", "pods", "-l", "app.kubernetes.io/instance=loom", "-o", "json"),
    ) as {
      items: { metadata: { deletionTimestamp?: string }; spec: { containers: { image: string }[] } }[];
    };
    const live = pods.items.filter((p) => !p.metadata.deletionTimestamp);
    assert.deepEqual(
      live.map((p) => p.spec.containers[0]?.image),
      [image],
    );
  };

  before(async () => {
    const packaged = await helm(["package", CHART, "-d", packageDir]);
    assert.equal(packaged.code, 0, packaged.stderr);
    const made = await cluster.kubectl(["create", "namespace", ns]);
    assert.equal(made.code, 0, made.stderr);
    await kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted", "--overwrite");
    await kubectl(
      "create",
      "secret",
      "generic",
      "loom-secrets-key",
      `--from-literal=key=${Buffer.alloc(32, 5).toString("base64")}`,
    );
    // No storage provisioner here: a volume for the chart's claim, as an admin would make.
    const pv = await cluster.kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "PersistentVolume",
        metadata: { name: pvName },
        spec: {
          capacity: { storage: "10Gi" },
          accessModes: ["ReadWriteOnce"],
          storageClassName: "",
          hostPath: { path: "/var/lib/loom-helm-test" },
          claimRef: { namespace: ns, name: "loom-data" },
        },
      }),
    );
    assert.equal(pv.code, 0, pv.stderr);
    // Other tests of this run may have installed the CRD already: let the release adopt it, as
    // an operator moving from `make install` to Helm would.
    if ((await cluster.kubectl(["get", CRD])).code === 0) {
      for (const args of [
        [
          "annotate",
          CRD,
          "--overwrite",
          "meta.helm.sh/release-name=loom",
          `meta.helm.sh/release-namespace=${ns}`,
        ],
        ["label", CRD, "--overwrite", "app.kubernetes.io/managed-by=Helm"],
      ]) {
        const r = await cluster.kubectl(args);
        assert.equal(r.code, 0, r.stderr);
      }
    }
  });

  after(async () => {
    console.log(`helm lifecycle (ms): ${JSON.stringify(timings)}`);
    await cluster.kubectl(["delete", "namespace", ns, "--wait=false", "--ignore-not-found"]);
    await cluster.kubectl(["delete", `pv/${pvName}`, "--ignore-not-found", "--wait=false"]);
    rmSync(packageDir, { recursive: true, force: true });
  });

  it("helm install reaches Available under restricted Pod Security", async () => {
    await run("install", [
      "install",
      "loom",
      chart,
      "-f",
      join(root, "test/deploy/testdata/helm/default.values.yaml"),
      "--set",
      "image.tag=0.1.0",
      "--wait",
      "--timeout",
      "180s",
    ]);
    await rolledOut("ghcr.io/example/loom:0.1.0");
    assert.equal(await kubectl("get", "pvc/loom-data", "-o", "jsonpath={.status.phase}"), "Bound");
    assert.match(
      await kubectl("get", "configmap/loom-config", "-o", "jsonpath={.data.config\\.yaml}"),
      /maxConcurrentJobs: 5\n/,
    );
  });

  it("helm upgrade with a new image and a changed setting rolls out", async () => {
    const before = await deployment();
    await run("upgrade", [
      "upgrade",
      "loom",
      chart,
      "--reuse-values",
      "--set",
      "image.tag=0.2.0",
      "--set",
      "kubernetes.maxConcurrentJobs=9",
      "--wait",
      "--timeout",
      "180s",
    ]);
    await rolledOut("ghcr.io/example/loom:0.2.0");
    const after = await deployment();
    assert.ok(after.metadata.generation > before.metadata.generation);
    assert.equal(after.metadata.annotations?.["deployment.kubernetes.io/revision"], "2");
    assert.match(
      await kubectl("get", "configmap/loom-config", "-o", "jsonpath={.data.config\\.yaml}"),
      /maxConcurrentJobs: 9\n/,
    );
    const history = await helm([
      "history",
      "loom",
      "-n",
      ns,
      "--kubeconfig",
      cluster.kubeconfigPath,
      "-o",
      "json",
    ]);
    const revisions = JSON.parse(history.stdout) as { revision: number; status: string }[];
    assert.deepEqual(
      revisions.map((r) => [r.revision, r.status]),
      [
        [1, "superseded"],
        [2, "deployed"],
      ],
    );
  });

  it("a second config change alone (same image) also rolls out", async () => {
    const before = await deployment();
    await run("upgrade-config", [
      "upgrade",
      "loom",
      chart,
      "--reuse-values",
      "--set",
      "server.logRetention=720h",
      "--wait",
      "--timeout",
      "180s",
    ]);
    await rolledOut("ghcr.io/example/loom:0.2.0");
    assert.ok(
      (await deployment()).metadata.generation > before.metadata.generation,
      "the pod template changed",
    );
  });

  it("helm uninstall removes Loom and keeps the data volume, the CRD and the secrets key", async () => {
    await run("uninstall", ["uninstall", "loom", "--wait", "--timeout", "120s"]);
    for (const gone of ["deployment/loom", "service/loom", "configmap/loom-config", "role/loom-controller"]) {
      const r = await cluster.kubectl(["-n", ns, "get", gone]);
      assert.notEqual(r.code, 0, `${gone} is still there`);
    }
    assert.notEqual((await cluster.kubectl(["get", `clusterrole/${ns}-loom-nodes`])).code, 0);
    assert.equal(await kubectl("get", "pvc/loom-data", "-o", "jsonpath={.status.phase}"), "Bound");
    await kubectl("get", "secret/loom-secrets-key");
    assert.equal(
      (await cluster.kubectl(["get", CRD])).code,
      0,
      "the CRD stays (helm.sh/resource-policy: keep)",
    );
  });
});
