/**
 * `make deploy` (config/default: CRD + RBAC + the Loom Deployment) against the real control
 * plane, run as an operator runs it: `make deploy IMG=…` applies server-side and the Deployment
 * becomes Available (kwok plays the kubelet); a second `make deploy` with another IMG upgrades it
 * in place; `kubectl apply -k config/samples/` applies; `kubectl explain` describes every field
 * of the spec; `make undeploy` removes Loom but keeps the namespace, the data volume and the
 * secrets key, and `make undeploy PURGE=1` removes those too. Also: the Loom pod meets Pod
 * Security `restricted` (the apiserver's own admission, with a negative control), the service
 * account can do exactly what the engine and controller need, and the shipped config file is
 * valid once its two required keys are given.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { parseControllerConfig } from "../../src/controller/config.ts";
import { ConfigError, loadConfig } from "../../src/spindle/config/index.ts";
import { eventually, getTestCluster } from "../harness/index.ts";

const root = new URL("../../", import.meta.url).pathname;
const manifest = (path: string) => parse(readFileSync(join(root, path), "utf8"));
const NS = "loom";

describe("config/manager: the shipped config file", () => {
  const dir = mkdtempSync(join(tmpdir(), "loom-deploy-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const configMap = manifest("config/manager/config.yaml") as { data: Record<string, string> };
  const file = join(dir, "config.yaml");
  writeFileSync(file, configMap.data["config.yaml"] as string);
  const keyFile = join(dir, "key");
  writeFileSync(keyFile, Buffer.alloc(32, 7).toString("base64"));
  const env = { LOOM_CONFIG: file, SPINDLE_SERVER_SECRETS_KEY_FILE: keyFile };

  it("refuses to start until hostname and owner are set, naming the key", () => {
    assert.throws(
      () => loadConfig(env),
      (err: unknown) =>
        err instanceof ConfigError && /SPINDLE_SERVER_HOSTNAME.*server\.hostname/.test(err.message),
    );
  });

  it("is valid with them, runs the Kubernetes engine and keeps state on the volume", () => {
    const config = loadConfig({
      ...env,
      SPINDLE_SERVER_HOSTNAME: "spindle.example.com",
      SPINDLE_SERVER_OWNER: "did:plc:abcdefghijklmnopqrstuvwx",
    });
    assert.equal(config.server.hostname, "spindle.example.com");
    assert.equal(config.engine, "kubernetes");
    assert.match(config.server.dbPath, /^\/var\/lib\/loom\//);
    assert.match(config.server.logDir, /^\/var\/lib\/loom\//);
    assert.equal(config.server.logRetentionMs, 90 * 24 * 3_600_000, "logs do not fill the volume forever");
    // /metrics on its own port, which the container and the Service name "metrics".
    const ports = manifest("config/manager/deployment.yaml").spec.template.spec.containers[0].ports as {
      name: string;
      containerPort: number;
    }[];
    assert.equal(ports.find((p) => p.name === "http")?.containerPort, config.server.listen.port);
    assert.equal(ports.find((p) => p.name === "metrics")?.containerPort, config.server.metricsListen?.port);
    const service = manifest("config/manager/service.yaml") as { spec: { ports: { targetPort: string }[] } };
    assert.deepEqual(
      service.spec.ports.map((p) => p.targetPort),
      ["http", "metrics"],
    );
    const section = (parse(configMap.data["config.yaml"] as string) as { kubernetes: unknown }).kubernetes;
    const k8s = parseControllerConfig(section);
    assert.equal(k8s.namespace, NS);
    const jobSa = manifest("config/rbac/job_service_account.yaml") as { metadata: { name: string } };
    assert.equal(k8s.serviceAccountName, jobSa.metadata.name);
  });

  it("mounts what the config names, as the controller's service account", () => {
    const deployment = manifest("config/manager/deployment.yaml");
    const pod = deployment.spec.template.spec;
    const sa = manifest("config/rbac/service_account.yaml") as { metadata: { name: string } };
    assert.equal(pod.serviceAccountName, sa.metadata.name);
    const mounts = new Map<string, string>(
      pod.containers[0].volumeMounts.map((m: { name: string; mountPath: string }) => [m.name, m.mountPath]),
    );
    assert.equal(mounts.get("config"), "/etc/loom");
    assert.equal(mounts.get("data"), "/var/lib/loom");
    assert.equal(join(mounts.get("secrets-key") as string, "key"), "/var/run/loom/secrets-key/key");
  });
});

const cluster = await getTestCluster({ full: true });

/** `make TARGET VARS…` in the repository, against the test cluster. */
function make(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      "make",
      ["-s", ...args, `KUBECTL=${cluster.state.kubectl}`],
      { cwd: root, env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath }, timeout: 120_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const IMG_1 = "registry.example.com/loom:0.1.0";
const IMG_2 = "registry.example.com:5000/team/loom:0.2.0";
const RUNNER_IMG = "registry.example.com:5000/team/loom-runner@sha256:0123456789abcdef";

describe("make deploy on a real cluster", { skip: cluster.skip }, () => {
  const pvName = `loom-data-${process.pid}`;

  const deployedImage = async () =>
    (
      await cluster.kubectl([
        "-n",
        NS,
        "get",
        "deployment/loom",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
      ])
    ).stdout;

  before(async () => {
    const deployed = await make("deploy", `IMG=${IMG_1}`);
    assert.equal(deployed.code, 0, deployed.stderr);
    // The cluster has no storage provisioner: a volume for the claim to bind, as an admin would.
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
          hostPath: { path: "/var/lib/loom-test" },
          claimRef: { namespace: NS, name: "loom-data" },
        },
      }),
    );
    assert.equal(pv.code, 0, pv.stderr);
    const key = await cluster.kubectl([
      "-n",
      NS,
      "create",
      "secret",
      "generic",
      "loom-secrets-key",
      `--from-literal=key=${Buffer.alloc(32, 9).toString("base64")}`,
    ]);
    assert.equal(key.code, 0, key.stderr);
  });

  after(async () => {
    await cluster.kubectl(["delete", "namespace", NS, "--wait=false", "--ignore-not-found"]);
    await cluster.kubectl([
      "delete",
      "clusterrole/loom-controller-nodes",
      "clusterrolebinding/loom-controller-nodes",
      `pv/${pvName}`,
      "--ignore-not-found",
      // The volume is released only when the namespace's claim is gone: do not wait for it.
      "--wait=false",
    ]);
  });

  it("the Deployment becomes Available with its claim bound", async () => {
    await eventually(
      "deployment/loom available",
      async () => {
        const r = await cluster.kubectl(["-n", NS, "get", "deployment/loom", "-o", "json"]);
        if (r.code !== 0) return r.stderr;
        const d = JSON.parse(r.stdout) as {
          status?: { conditions?: { type: string; status: string; message?: string }[] };
        };
        const available = d.status?.conditions?.find((c) => c.type === "Available");
        return available?.status === "True" || JSON.stringify(d.status ?? {});
      },
      90_000,
    );
    const pvc = await cluster.kubectl(["-n", NS, "get", "pvc/loom-data", "-o", "jsonpath={.status.phase}"]);
    assert.equal(pvc.stdout, "Bound");
    assert.equal(await deployedImage(), IMG_1);
  });

  it("make deploy again with another IMG upgrades in place (no server-side apply conflict)", async () => {
    const again = await make("deploy", `IMG=${IMG_2}`, `RUNNER_IMG=${RUNNER_IMG}`);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await deployedImage(), IMG_2);
    // RUNNER_IMG sets the config file's runner image, and only that.
    const config = (
      await cluster.kubectl([
        "-n",
        NS,
        "get",
        "configmap/loom-config",
        "-o",
        "jsonpath={.data.config\\.yaml}",
      ])
    ).stdout;
    const shipped = (manifest("config/manager/config.yaml") as { data: Record<string, string> }).data[
      "config.yaml"
    ]!;
    assert.equal(parseControllerConfig(parse(config).kubernetes).images.runner, RUNNER_IMG);
    assert.deepEqual(
      { ...parse(config), kubernetes: { ...parse(config).kubernetes, images: {} } },
      { ...parse(shipped), kubernetes: { ...parse(shipped).kubernetes, images: {} } },
    );
    // The image belongs to the same field manager as the rest of the configuration.
    const d = JSON.parse(
      (await cluster.kubectl(["-n", NS, "get", "deployment/loom", "-o", "json", "--show-managed-fields"]))
        .stdout,
    ) as {
      metadata: { managedFields: { manager: string; operation: string; fieldsV1?: unknown }[] };
    };
    const owners = d.metadata.managedFields
      .filter((f) => JSON.stringify(f.fieldsV1 ?? {}).includes('"f:image"'))
      .map((f) => `${f.manager}/${f.operation}`);
    assert.deepEqual(owners, ["loom-deploy/Apply"]);
    await eventually(
      "the new image rolled out",
      async () => {
        const r = await cluster.kubectl([
          "-n",
          NS,
          "get",
          "pods",
          "-l",
          "app.kubernetes.io/name=loom",
          "-o",
          "json",
        ]);
        const pods = JSON.parse(r.stdout) as {
          items: { metadata: { deletionTimestamp?: string }; spec: { containers: { image: string }[] } }[];
        };
        const images = pods.items
          .filter((p) => !p.metadata.deletionTimestamp)
          .map((p) => p.spec.containers[0]?.image);
        return (images.length === 1 && images[0] === IMG_2) || `pods: ${images}`;
      },
      90_000,
    );
  });

  it("make deploy without IMG says it needs one", async () => {
    const r = await make("deploy", "IMG=");
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /make deploy needs IMG=registry\/loom:tag/);
  });

  it("kubectl apply -k config/samples/ applies: a SpindleSet with its Secret, and a buildah workflow", async () => {
    const applied = await cluster.kubectl(["apply", "-k", join(root, "config/samples")]);
    assert.equal(applied.code, 0, applied.stderr);
    const names = (
      await cluster.kubectl([
        "-n",
        NS,
        "get",
        "spindlesets",
        "-l",
        "loom.tangled.sh/hand-made=true",
        "-o",
        "name",
      ])
    ).stdout
      .trim()
      .split("\n")
      .sort();
    assert.deepEqual(names, [
      "spindleset.loom.tangled.sh/knot-example-com-3lq2abcxyz22k-7c1e6d0a",
      "spindleset.loom.tangled.sh/knot-example-com-3lq2buildah2k-5a0f3c1e",
    ]);
    const secret = await cluster.kubectl([
      "-n",
      NS,
      "get",
      "secret/knot-example-com-3lq2abcxyz22k-7c1e6d0a-secrets",
      "-o",
      "jsonpath={.data}",
    ]);
    assert.match(secret.stdout, /APP_PASSWORD/);
  });

  it("kubectl explain describes every field of spindleset.spec", async () => {
    const crd = manifest("config/crd/loom.tangled.sh_spindlesets.yaml");
    const objectPaths: string[] = [];
    const walk = (
      node: { type?: string; properties?: Record<string, unknown>; items?: unknown },
      path: string,
    ) => {
      if (node.properties) {
        objectPaths.push(path);
        for (const [k, v] of Object.entries(node.properties)) walk(v as typeof node, `${path}.${k}`);
      }
      if (node.items) walk(node.items as typeof node, path);
    };
    walk(crd.spec.versions[0].schema.openAPIV3Schema.properties.spec, "spindleset.spec");
    assert.ok(objectPaths.length >= 10, objectPaths.join(" "));
    for (const path of objectPaths) {
      const r = await cluster.kubectl(["explain", path, "--api-version=loom.tangled.sh/v1alpha1"]);
      assert.equal(r.code, 0, `${path}: ${r.stderr}`);
      assert.match(r.stdout, /FIELDS:/, path);
      assert.doesNotMatch(r.stdout, /<no description>/, `${path}:\n${r.stdout}`);
    }
  });

  it("the Loom pod meets Pod Security `restricted` (and the check can fail)", async (t) => {
    const ns = await cluster.namespace(t, { "pod-security.kubernetes.io/enforce": "restricted" });
    const deployment = manifest("config/manager/deployment.yaml");
    const pod = (spec: unknown) =>
      JSON.stringify({ apiVersion: "v1", kind: "Pod", metadata: { name: "loom", namespace: ns }, spec });
    const ok = await cluster.kubectl(
      ["create", "--dry-run=server", "-f", "-"],
      pod(deployment.spec.template.spec),
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.doesNotMatch(ok.stderr, /Warning/);
    const loosened = structuredClone(deployment.spec.template.spec);
    loosened.containers[0].securityContext.capabilities = { add: ["NET_RAW"], drop: ["ALL"] };
    const refused = await cluster.kubectl(["create", "--dry-run=server", "-f", "-"], pod(loosened));
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /violates PodSecurity "restricted/);
  });

  it("the service account may do what the engine and controller do, and no more", async () => {
    const as = "--as=system:serviceaccount:loom:loom-controller";
    const can = async (...args: string[]) =>
      (await cluster.kubectl(["auth", "can-i", as, ...args])).stdout.trim();
    for (const [verb, resource] of [
      ["create", "spindlesets.loom.tangled.sh"],
      ["patch", "spindlesets.loom.tangled.sh/status"],
      ["create", "jobs.batch"],
      ["get", "pods/log"],
      ["create", "secrets"],
      ["create", "leases.coordination.k8s.io"],
      ["list", "events"],
    ] as const) {
      assert.equal(await can(verb, resource, "-n", NS), "yes", `${verb} ${resource}`);
    }
    assert.equal(await can("list", "nodes"), "yes");
    assert.equal(await can("get", "secrets", "-n", "default"), "no");
    assert.equal(await can("create", "pods", "-n", NS), "no");
    const runner = "--as=system:serviceaccount:loom:loom-job-runner";
    assert.equal(
      (await cluster.kubectl(["auth", "can-i", runner, "get", "secrets", "-n", NS])).stdout.trim(),
      "no",
    );
  });

  it("every object of the kustomization is labelled as Loom's", () => {
    for (const path of [
      "config/manager/deployment.yaml",
      "config/manager/service.yaml",
      "config/manager/pvc.yaml",
    ]) {
      for (const doc of parseAllDocuments(readFileSync(join(root, path), "utf8"))) {
        const o = doc.toJS() as { metadata: { labels?: Record<string, string>; namespace?: string } };
        assert.equal(o.metadata.labels?.["app.kubernetes.io/name"], "loom", path);
        assert.equal(o.metadata.namespace, NS, path);
      }
    }
  });

  it("make undeploy removes Loom and keeps the namespace, the data volume and the secrets key", async () => {
    const r = await make("undeploy");
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /kept namespace loom, its data volume \(PersistentVolumeClaim loom-data\) and the secrets key/,
    );
    assert.match(r.stdout, /make undeploy PURGE=1/);
    await eventually("deployment/loom gone", async () => {
      const d = await cluster.kubectl(["-n", NS, "get", "deployment/loom"]);
      return d.code !== 0 || "still there";
    });
    assert.notEqual((await cluster.kubectl(["get", "clusterrole/loom-controller-nodes"])).code, 0);
    const kept = await cluster.kubectl([
      "-n",
      NS,
      "get",
      "pvc/loom-data",
      "secret/loom-secrets-key",
      "-o",
      "name",
    ]);
    assert.equal(kept.code, 0, kept.stderr);
    assert.deepEqual(kept.stdout.trim().split("\n"), [
      "persistentvolumeclaim/loom-data",
      "secret/loom-secrets-key",
    ]);
    const ns = await cluster.kubectl(["get", "namespace", NS, "-o", "jsonpath={.status.phase}"]);
    assert.equal(ns.stdout, "Active");
    const crd = await cluster.kubectl(["get", "crd/spindlesets.loom.tangled.sh"]);
    assert.equal(crd.code, 0, "the CRD stays (make uninstall removes it)");
    // Deploying again finds its data where it was.
    const again = await make("deploy", `IMG=${IMG_2}`);
    assert.equal(again.code, 0, again.stderr);
    const pvc = await cluster.kubectl(["-n", NS, "get", "pvc/loom-data", "-o", "jsonpath={.status.phase}"]);
    assert.equal(pvc.stdout, "Bound");
  });

  it("make undeploy PURGE=1 deletes the namespace with the volume and the key, and says so", async () => {
    const r = await make("undeploy", "PURGE=1");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /deleted namespace loom with its data volume loom-data and the secrets key/);
    await eventually("namespace loom gone or going", async () => {
      const ns = await cluster.kubectl(["get", "namespace", NS, "-o", "jsonpath={.status.phase}"]);
      return ns.code !== 0 || ns.stdout === "Terminating" || ns.stdout;
    });
  });
});
