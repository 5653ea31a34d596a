/**
 * `make deploy` (config/default: CRD + RBAC + the Loom Deployment) against the real control
 * plane: the kustomization applies server-side, the Deployment becomes Available (kwok plays the
 * kubelet), the Loom pod meets Pod Security `restricted` (checked by the apiserver's own
 * admission in a namespace that enforces it, with a negative control), the service account can do
 * exactly what the engine and controller need, and the shipped config file is valid once its two
 * required keys are given.
 */
import assert from "node:assert/strict";
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

describe("make deploy on a real cluster", { skip: cluster.skip }, () => {
  const pvName = `loom-data-${process.pid}`;

  before(async () => {
    const applied = await cluster.kubectl([
      "apply",
      "--server-side",
      "--force-conflicts",
      "--field-manager=loom-deploy-test",
      "-k",
      join(root, "config/default"),
    ]);
    assert.equal(applied.code, 0, applied.stderr);
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
});
