import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ControllerConfigError, parseControllerConfig } from "../../controller/config.ts";
import { ConfigError, loadConfig, loadKubernetesSection } from "./index.ts";
import { kubernetesSection } from "./kubernetes.ts";

const dir = mkdtempSync(join(tmpdir(), "loom-config-k8s-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The original Loom's README, verbatim: what its operators mount at /etc/loom/config.yaml. */
const ORIGINAL = `maxConcurrentJobs: 10
template:
  resourceProfiles:
    - nodeSelector:
        kubernetes.io/arch: amd64
      resources:
        requests: {cpu: "500m", memory: "1Gi"}
        limits: {cpu: "2", memory: "4Gi"}
`;

/** The same settings in Loom's own `kubernetes` section. */
const OWN = `kubernetes:
  maxConcurrentJobs: 10
  images: {runner: ghcr.io/example/loom-runner:1}
  template:
    resourceProfiles:
      - nodeSelector:
          kubernetes.io/arch: amd64
        resources:
          requests: {cpu: "500m", memory: "1Gi"}
          limits: {cpu: "2", memory: "4Gi"}
`;

let n = 0;
function file(text: string): string {
  const path = join(dir, `config-${n++}.yaml`);
  writeFileSync(path, text);
  return path;
}

const RUNNER = { LOOM_RUNNER_IMAGE: "ghcr.io/example/loom-runner:1" };

/** What `loom controller` does with a file. */
function controllerConfig(path: string, env: Record<string, string> = RUNNER) {
  const { kubernetes, topLevel } = loadKubernetesSection({ LOOM_CONFIG: path, ...env });
  return parseControllerConfig(kubernetes, "kubernetes", topLevel);
}

function assertConfigError(fn: () => unknown, variable: string, text: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.variable, variable);
    assert.match(err.message, text);
    return true;
  });
}

describe("the original Loom's configuration format", () => {
  it("means exactly Loom's own kubernetes section (loom controller)", () => {
    const original = controllerConfig(file(ORIGINAL));
    assert.deepEqual(original, controllerConfig(file(OWN), {}));
    assert.equal(original.maxConcurrentJobs, 10);
    assert.deepEqual(original.template.resourceProfiles, [
      {
        nodeSelector: { "kubernetes.io/arch": "amd64" },
        resources: { requests: { cpu: "500m", memory: "1Gi" }, limits: { cpu: "2", memory: "4Gi" } },
        tolerations: [],
      },
    ]);
  });

  it("is read by loom serve too, beside the spindle's own settings", () => {
    const c = loadConfig({
      LOOM_CONFIG: file(ORIGINAL),
      SPINDLE_SERVER_HOSTNAME: "spindle.example.com",
      SPINDLE_SERVER_OWNER: "did:plc:abcdefghijklmnopqrstuvwx",
      SPINDLE_SERVER_SECRETS_KEY: Buffer.alloc(32, 7).toString("base64"),
      ...RUNNER,
    });
    assert.deepEqual(c.kubernetesTopLevel, ["maxConcurrentJobs", "template.resourceProfiles"]);
    const k8s = parseControllerConfig(c.kubernetes, "kubernetes", c.kubernetesTopLevel);
    assert.deepEqual(k8s, controllerConfig(file(OWN), {}));
  });

  it("accepts a setting given in both places when they agree", () => {
    const both = `${ORIGINAL}${OWN}`;
    assert.deepEqual(controllerConfig(file(both), {}), controllerConfig(file(OWN), {}));
  });

  it("refuses a setting given in both places that disagree, naming both", () => {
    const path = file(`maxConcurrentJobs: 10\nkubernetes:\n  maxConcurrentJobs: 5\n`);
    assertConfigError(
      () => loadKubernetesSection({ LOOM_CONFIG: path }),
      `${path}: maxConcurrentJobs`,
      /disagrees with kubernetes\.maxConcurrentJobs \(10 at the top level, 5 in kubernetes\).*give it once/,
    );
    const profiles = file(`${ORIGINAL}kubernetes:\n  template:\n    resourceProfiles: []\n`);
    assertConfigError(
      () => loadKubernetesSection({ LOOM_CONFIG: profiles }),
      `${profiles}: template.resourceProfiles`,
      /disagrees with kubernetes\.template\.resourceProfiles: /,
    );
    // loom serve refuses it the same way, even with the local engine.
    assertConfigError(
      () =>
        loadConfig({
          LOOM_CONFIG: path,
          SPINDLE_SERVER_HOSTNAME: "spindle.example.com",
          SPINDLE_SERVER_OWNER: "did:plc:abcdefghijklmnopqrstuvwx",
          SPINDLE_SERVER_SECRETS_KEY: Buffer.alloc(32, 7).toString("base64"),
          SPINDLE_SERVER_ENGINE: "local",
        }),
      `${path}: maxConcurrentJobs`,
      /disagrees/,
    );
  });

  it("merges template key by key", () => {
    const path = file(
      `${ORIGINAL}kubernetes:\n  template:\n    tolerations: [{key: ci, operator: Exists}]\n`,
    );
    const c = controllerConfig(path);
    assert.equal(c.template.resourceProfiles.length, 1);
    assert.deepEqual(c.template.tolerations, [{ key: "ci", operator: "Exists" }]);
  });

  it("validates the top-level settings with the same rules, naming the place they were written", () => {
    const bad = file(ORIGINAL.replace('memory: "4Gi"', 'memory: "4Gx"').replace("10", "0"));
    assert.throws(
      () => controllerConfig(bad),
      (err: unknown) => {
        assert.ok(err instanceof ControllerConfigError);
        assert.deepEqual(err.issues, [
          "maxConcurrentJobs: Too small: expected number to be >=1",
          "template.resourceProfiles[0].resources.limits.memory: not a Kubernetes quantity (e.g. 500m, 2, 4Gi)",
        ]);
        return true;
      },
    );
    // The same mistake inside the kubernetes section keeps its kubernetes. prefix.
    const own = file(OWN.replace('memory: "4Gi"', 'memory: "4Gx"'));
    assert.throws(() => controllerConfig(own, {}), /kubernetes\.template\.resourceProfiles\[0\]/);
  });

  it("still refuses unknown top-level keys", () => {
    const path = file(`maxConcurrentJob: 10\n`);
    assertConfigError(() => loadKubernetesSection({ LOOM_CONFIG: path }), `${path}: maxConcurrentJob`, /./);
  });

  it("takes the runner image and namespace from the environment, above the file", () => {
    const path = file(`kubernetes:\n  namespace: ci\n  images: {runner: from-file, pullPolicy: Always}\n`);
    const env = { LOOM_RUNNER_IMAGE: "from-env", LOOM_NAMESPACE: "builds" };
    const c = controllerConfig(path, env);
    assert.equal(c.images.runner, "from-env");
    assert.equal(c.images.pullPolicy, "Always");
    assert.equal(c.namespace, "builds");
    assert.equal(controllerConfig(path, { LOOM_RUNNER_IMAGE: " ", LOOM_NAMESPACE: "" }).namespace, "ci");
  });

  it("leaves a file without either form untouched", () => {
    assert.deepEqual(kubernetesSection({ kubernetes: { namespace: "ci" } }, "f.yaml", {}), {
      section: { namespace: "ci" },
      topLevel: [],
    });
    assert.deepEqual(kubernetesSection({}, null, {}), { section: null, topLevel: [] });
    // Not an object: left for the controller's schema to refuse, naming `kubernetes`.
    assert.deepEqual(kubernetesSection({ kubernetes: 3, maxConcurrentJobs: 2 }, null, {}), {
      section: 3,
      topLevel: [],
    });
  });
});
