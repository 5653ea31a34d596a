/**
 * The Helm chart (charts/loom) without a cluster: `helm lint`, `helm template` golden files for
 * three sets of values (test/deploy/testdata/helm/<case>.values.yaml → <case>.golden.yaml), the
 * values reference in the chart's README against values.yaml, and what the rendered objects mean:
 * the config file Loom would read, the same Role, NetworkPolicy, Pod security and CRD as the
 * kustomize manifests in config/. The install → upgrade → uninstall lifecycle on a real control
 * plane is in helm-lifecycle.test.ts.
 *
 * After an intended change of the chart: `node test/deploy/helm.test.ts --update-golden`.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { renderReadme, valueRows } from "../../scripts/chart-values-doc.ts";
import { workflowLabels } from "../../src/api/contract/index.ts";
import { buildSpindleSetCrd } from "../../src/api/v1alpha1/crd.ts";
import { parseControllerConfig } from "../../src/controller/config.ts";
import { loadConfig } from "../../src/spindle/config/index.ts";
import { CHART, helm, helmBinary, type K8sObject, render, root } from "./helm-support.ts";

const GOLDEN_DIR = join(root, "test/deploy/testdata/helm");
const UPDATE = process.argv.includes("--update-golden");
const CASES = readdirSync(GOLDEN_DIR)
  .filter((f) => f.endsWith(".values.yaml"))
  .map((f) => f.slice(0, -".values.yaml".length))
  .sort();
const bin = helmBinary();

const manifest = (path: string) => parse(readFileSync(join(root, path), "utf8"));
const find = (objects: K8sObject[], kind: string, name?: string) => {
  const found = objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.ok(found, `no ${kind} ${name ?? ""} in the rendered chart`);
  return found;
};
// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are walked as plain JSON
type Any = any;

describe("charts/loom: values reference", () => {
  it("the README's table is the one values.yaml implies (every key, its default, its description)", () => {
    const readme = readFileSync(join(CHART, "README.md"), "utf8");
    const values = readFileSync(join(CHART, "values.yaml"), "utf8");
    assert.equal(readme, renderReadme(readme, values), "run `node scripts/chart-values-doc.ts`");
  });

  it("a value without a description is refused, so the table cannot lose a key", () => {
    const values = `${readFileSync(join(CHART, "values.yaml"), "utf8")}\nundocumented: 1\n`;
    assert.throws(() => valueRows(values), /values\.yaml: undocumented has no "# -- description" comment/);
  });
});

describe("charts/loom: helm lint and helm template", { skip: bin.skip }, () => {
  it("passes helm lint --strict with each set of values", async () => {
    for (const name of CASES) {
      const r = await helm(["lint", CHART, "--strict", "-f", join(GOLDEN_DIR, `${name}.values.yaml`)]);
      assert.equal(r.code, 0, `${name}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  it("refuses to render without server.hostname or owner, or with an unknown secrets provider", async () => {
    const none = await helm(["template", "loom", CHART]);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /server\.hostname is required/);
    const noOwner = await helm(["template", "loom", CHART, "--set", "server.hostname=a.example.com"]);
    assert.match(noOwner.stderr, /server\.owner is required/);
    const vault = await helm([
      "template",
      "loom",
      CHART,
      "-f",
      join(GOLDEN_DIR, "default.values.yaml"),
      "--set",
      "secrets.provider=vault",
    ]);
    assert.match(vault.stderr, /secrets\.provider must be sqlite or openbao, not "vault"/);
  });

  for (const name of CASES) {
    it(`renders ${name}.values.yaml exactly as ${name}.golden.yaml`, async () => {
      const out = await render(join(GOLDEN_DIR, `${name}.values.yaml`));
      const golden = join(GOLDEN_DIR, `${name}.golden.yaml`);
      if (UPDATE) writeFileSync(golden, out.text);
      assert.equal(
        out.text,
        readFileSync(golden, "utf8"),
        `${name}: run with --update-golden after a wanted change`,
      );
    });
  }
});

describe("charts/loom: what the rendered objects mean", { skip: bin.skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "loom-helm-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const keyFile = join(dir, "key");
  writeFileSync(keyFile, Buffer.alloc(32, 7).toString("base64"));
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, "s.example-token");

  /** Loom's own config loader and controller config parser on the rendered ConfigMap. */
  const loadRendered = (objects: K8sObject[]) => {
    const cm = find(objects, "ConfigMap") as Any;
    const file = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, cm.data["config.yaml"]);
    const env: Record<string, string> = { LOOM_CONFIG: file };
    const text = parse(cm.data["config.yaml"]);
    // The files the pod mounts do not exist here: the environment points at stand-ins.
    if (text.secrets.provider === "sqlite") env.SPINDLE_SERVER_SECRETS_KEY_FILE = keyFile;
    if (text.secrets.openbao?.tokenFile) env.SPINDLE_SERVER_SECRETS_OPENBAO_TOKEN_FILE = tokenFile;
    return { config: loadConfig(env), kubernetes: parseControllerConfig(text.kubernetes), text };
  };

  it("default: a config file Loom starts with, in the release's namespace, state on the volume", async () => {
    const { objects } = await render(join(GOLDEN_DIR, "default.values.yaml"));
    const { config, kubernetes, text } = loadRendered(objects);
    assert.equal(config.server.hostname, "spindle.example.com");
    assert.equal(config.engine, "kubernetes");
    assert.equal(config.server.logRetentionMs, 90 * 24 * 3_600_000);
    assert.equal(text.secrets.keyFile, "/var/run/loom/secrets-key/key");
    assert.equal(kubernetes.namespace, "loom");
    assert.equal(kubernetes.images.runner, "ghcr.io/example/loom-runner:0.1.0");
    assert.equal(
      kubernetes.serviceAccountName,
      find(objects, "ServiceAccount", "loom-job-runner").metadata.name,
    );
    const pod = (find(objects, "Deployment") as Any).spec.template.spec;
    assert.equal(pod.containers[0].image, "ghcr.io/example/loom:0.1.0");
    const mounts = new Map(pod.containers[0].volumeMounts.map((m: Any) => [m.name, m.mountPath]));
    assert.equal(mounts.get("data"), "/var/lib/loom");
    assert.match(config.server.dbPath, /^\/var\/lib\/loom\//);
    assert.equal(`${mounts.get("secrets-key")}/key`, text.secrets.keyFile);
    const keyVolume = pod.volumes.find((v: Any) => v.name === "secrets-key");
    assert.deepEqual(keyVolume.secret.items, [{ key: "key", path: "key" }]);
    assert.equal(keyVolume.secret.secretName, "loom-secrets-key");
    // The claim survives `helm uninstall`; the key Secret is never the chart's.
    assert.equal(
      (find(objects, "PersistentVolumeClaim") as Any).metadata.annotations["helm.sh/resource-policy"],
      "keep",
    );
    assert.ok(!objects.some((o) => o.kind === "Secret"), "the chart makes no Secret");
    assert.ok(!objects.some((o) => o.kind === "Ingress" || o.kind === "ServiceMonitor"));
  });

  it("full: OpenBao with a token Secret, profiles, buildah, digest image, Ingress and ServiceMonitor", async () => {
    const { objects } = await render(join(GOLDEN_DIR, "full.values.yaml"));
    const { config, kubernetes, text } = loadRendered(objects);
    assert.equal(config.secrets.provider, "openbao");
    assert.equal(text.secrets.openbao.tokenFile, "/var/run/loom/openbao-token/token");
    assert.equal(config.server.jetstreamEndpoint, "wss://jetstream.example.com/subscribe");
    assert.deepEqual(
      kubernetes.template.resourceProfiles.map((p) => [p.name, p.architecture]),
      [
        ["arm64", "arm64"],
        ["amd64", "amd64"],
      ],
    );
    assert.equal(kubernetes.maxConcurrentJobs, 20);
    assert.equal(kubernetes.ttl.jobSecondsAfterFinished, 300);
    assert.equal(kubernetes.ttl.spindleSetSecondsAfterFinished, 86400, "unset ttl keys keep Loom's defaults");
    assert.equal(kubernetes.timeouts.maxWorkflowSeconds, 7200);
    assert.deepEqual(kubernetes.buildah, { images: ["quay.io/buildah/stable"], seccompUnconfined: true });
    assert.equal(kubernetes.images.runner, "registry.example.com/loom-runner:0.2.0");
    const pod = (find(objects, "Deployment") as Any).spec.template.spec;
    assert.match(pod.containers[0].image, /^registry\.example\.com\/loom@sha256:/);
    assert.deepEqual(pod.nodeSelector, { "kubernetes.io/arch": "arm64" });
    assert.deepEqual(pod.imagePullSecrets, [{ name: "regcred" }]);
    assert.ok(!pod.volumes.some((v: Any) => v.name === "secrets-key"), "no sqlite key with OpenBao");
    const ingress = find(objects, "Ingress") as Any;
    assert.equal(ingress.spec.rules[0].host, "spindle.example.com", "the port is not part of the host");
    assert.equal(ingress.spec.rules[0].http.paths[0].backend.service.port.name, "http");
    const monitor = find(objects, "ServiceMonitor") as Any;
    assert.equal(monitor.spec.endpoints[0].port, "metrics");
    const service = find(objects, "Service") as Any;
    for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels))
      assert.equal(service.metadata.labels[k], v, `the ServiceMonitor selects the Service (${k})`);
  });

  it("microvm: defaults as Loom's own, the full values' choices reach the config, a cache volume by --set", async () => {
    const byDefault = loadRendered(
      (await render(join(GOLDEN_DIR, "default.values.yaml"))).objects,
    ).kubernetes;
    assert.deepEqual(byDefault.microvm, parseControllerConfig({ images: { runner: "r" } }).microvm);
    const full = loadRendered((await render(join(GOLDEN_DIR, "full.values.yaml"))).objects).kubernetes;
    assert.deepEqual(full.microvm.images.alpine, {
      amd64: "registry.example.com/alpine-nix:3.22-amd64",
      arm64: "registry.example.com/alpine-nix:3.22-arm64",
    });
    assert.equal(full.microvm.images.nixos, "docker.io/nixos/nix:2.28.3");
    assert.equal(full.microvm.runtimeClassName, "kata-qemu");
    assert.equal(full.microvm.docker.enabled, true);
    assert.deepEqual(full.microvm.cache, {
      url: "https://nix-cache.example.com",
      publicKey: "nix-cache.example.com-1:qZ8hS5dtGDnHe0e5XNkDYfYA1VvMSi7mRjgu6d8uq7o=",
    });
    const volume = await render(join(GOLDEN_DIR, "default.values.yaml"), [
      "kubernetes.microvm.cache.volumeClaimName=nix-cache",
    ]);
    assert.deepEqual(loadRendered(volume.objects).kubernetes.microvm.cache, { volumeClaimName: "nix-cache" });
    // Both kinds of cache: the chart renders what it is given, Loom refuses it at start-up.
    const both = await render(join(GOLDEN_DIR, "full.values.yaml"), [
      "kubernetes.microvm.cache.volumeClaimName=nix-cache",
    ]);
    assert.throws(
      () => loadRendered(both.objects),
      /microvm\.cache\.url: set volumeClaimName or url, not both/,
    );
  });

  it("a changed setting changes the pod template (so helm upgrade rolls Loom out)", async () => {
    const base = await render(join(GOLDEN_DIR, "default.values.yaml"));
    const changed = await render(join(GOLDEN_DIR, "default.values.yaml"), ["kubernetes.maxConcurrentJobs=9"]);
    const checksum = (objects: K8sObject[]) =>
      (find(objects, "Deployment") as Any).spec.template.metadata.annotations["checksum/config"];
    assert.notEqual(checksum(base.objects), checksum(changed.objects));
  });

  it("has the kustomize manifests' Role, NetworkPolicy, pod security and CRD", async () => {
    const { objects } = await render(join(GOLDEN_DIR, "default.values.yaml"));
    assert.deepEqual((find(objects, "Role") as Any).rules, manifest("config/rbac/role.yaml").rules);
    const policy = find(objects, "NetworkPolicy") as Any;
    assert.deepEqual(policy.spec, manifest("config/manager/networkpolicy.yaml").spec);
    // It selects exactly the pods the controller makes for workflows.
    const podLabels = workflowLabels("run", "knot-rkey-build.yml");
    for (const [k, v] of Object.entries(policy.spec.podSelector.matchLabels))
      assert.equal(podLabels[k], v, k);
    const ours = (find(objects, "Deployment") as Any).spec.template.spec;
    const kustomized = manifest("config/manager/deployment.yaml").spec.template.spec;
    assert.deepEqual(ours.securityContext, kustomized.securityContext);
    assert.deepEqual(ours.containers[0].securityContext, kustomized.containers[0].securityContext);
    const crd = find(objects, "CustomResourceDefinition") as Any;
    assert.deepEqual(crd.spec, buildSpindleSetCrd().spec);
    assert.equal(crd.metadata.annotations["helm.sh/resource-policy"], "keep");
  });

  it("minimal: an existing claim and key Secret, no CRD, no NetworkPolicy, names from fullnameOverride", async () => {
    const { objects } = await render(join(GOLDEN_DIR, "minimal.values.yaml"));
    assert.deepEqual(
      objects
        .map((o) => o.kind)
        .filter((k) => ["CustomResourceDefinition", "NetworkPolicy", "PersistentVolumeClaim"].includes(k)),
      [],
    );
    const pod = (find(objects, "Deployment", "ci") as Any).spec.template.spec;
    assert.equal(
      pod.volumes.find((v: Any) => v.name === "data").persistentVolumeClaim.claimName,
      "shared-data",
    );
    assert.deepEqual(pod.volumes.find((v: Any) => v.name === "secrets-key").secret.items, [
      { key: "aes", path: "key" },
    ]);
    assert.equal(pod.serviceAccountName, "ci-controller");
    const { kubernetes } = loadRendered(objects);
    assert.equal(kubernetes.serviceAccountName, "ci-job-runner");
    // The ClusterRole is per namespace and release, so two releases never share it.
    assert.equal(find(objects, "ClusterRole").metadata.name, "loom-ci-nodes");
  });
});

// Every object of every golden case parses, and is labelled as the release's.
describe("charts/loom: golden files", () => {
  for (const name of CASES) {
    it(`${name}.golden.yaml: every object names the release`, () => {
      const docs = parseAllDocuments(readFileSync(join(GOLDEN_DIR, `${name}.golden.yaml`), "utf8"));
      const objects = docs.map((d) => d.toJS() as K8sObject).filter(Boolean);
      assert.ok(objects.length >= 8, `${name}: ${objects.length} objects`);
      for (const o of objects) {
        // The CRD is cluster-wide and kept across releases: it names Loom, not one release.
        const label =
          o.kind === "CustomResourceDefinition" ? "app.kubernetes.io/name" : "app.kubernetes.io/instance";
        assert.equal(o.metadata.labels?.[label], "loom", `${o.kind}`);
      }
    });
  }
});
