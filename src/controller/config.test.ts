import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { ControllerConfigError, microvmImage, parseControllerConfig } from "./config.ts";

function issuesOf(section: unknown): readonly string[] {
  try {
    parseControllerConfig(section);
  } catch (err) {
    assert.ok(err instanceof ControllerConfigError);
    assert.equal(err.code, "CONFIG_INVALID");
    return err.issues;
  }
  assert.fail("expected a ControllerConfigError");
}

describe("parseControllerConfig", () => {
  it("refuses a runner image for an architecture Kubernetes does not name", () => {
    assert.throws(
      () =>
        parseControllerConfig({
          images: { runner: "r/x:1", runnerByArchitecture: { aarch64: "r/x:1-arm64" } },
        }),
      /images\.runnerByArchitecture: Unrecognized key: "aarch64"/,
    );
  });

  it("bounds the reconcile workers", () => {
    assert.deepEqual(issuesOf({ images: { runner: "r/x:1" }, workers: 0 }), [
      "kubernetes.workers: Too small: expected number to be >=1",
    ]);
    assert.equal(parseControllerConfig({ images: { runner: "r/x:1" }, workers: 64 }).workers, 64);
  });

  it("fills every default around the one required field", () => {
    assert.deepEqual(parseControllerConfig({ images: { runner: "ghcr.io/example/loom-runner:1" } }), {
      namespace: "loom",
      maxConcurrentJobs: 5,
      workers: 16,
      serviceAccountName: "loom-job-runner",
      imagePullSecrets: [],
      template: { resourceProfiles: [], tolerations: [] },
      images: {
        runner: "ghcr.io/example/loom-runner:1",
        runnerByArchitecture: {},
        runnerBundlePath: "/loom-runner",
        git: "docker.io/alpine/git:v2.45.1",
        setup: "docker.io/library/busybox:1.37",
        pullPolicy: "IfNotPresent",
      },
      ttl: { spindleSetSecondsAfterFinished: 86400, jobSecondsAfterFinished: 900 },
      timeouts: {
        maxWorkflowSeconds: 21600,
        setupGraceSeconds: 600,
        imagePullGraceSeconds: 300,
        unschedulableSeconds: 900,
        podCreateFailedSeconds: 300,
        heartbeatSeconds: 10,
        runnerSilentSeconds: 120,
        terminationGraceSeconds: 30,
      },
      buildah: { images: [], seccompUnconfined: false },
      microvm: {
        images: { nixos: "docker.io/nixos/nix:2.28.3" },
        postgresqlImage: "docker.io/library/postgres:17.6",
        redisImage: "docker.io/library/redis:7.4.5",
        mariadbImage: "docker.io/library/mariadb:11.8.2",
        docker: { enabled: false, image: "docker.io/library/docker:28.3.3-dind-rootless" },
        cache: {},
      },
    });
  });

  it("microvm: images merge over the pinned nixos default; runtimeClassName is checked", () => {
    const c = parseControllerConfig({
      images: { runner: "r" },
      microvm: { images: { alpine: { arm64: "a:arm" } }, runtimeClassName: "kata-qemu" },
    });
    assert.deepEqual(c.microvm, {
      images: { nixos: "docker.io/nixos/nix:2.28.3", alpine: { arm64: "a:arm" } },
      postgresqlImage: "docker.io/library/postgres:17.6",
      redisImage: "docker.io/library/redis:7.4.5",
      mariadbImage: "docker.io/library/mariadb:11.8.2",
      docker: { enabled: false, image: "docker.io/library/docker:28.3.3-dind-rootless" },
      cache: {},
      runtimeClassName: "kata-qemu",
    });
    assert.deepEqual(microvmImage(c, "nixos", "arm64"), { ok: true, image: "docker.io/nixos/nix:2.28.3" });
    assert.deepEqual(microvmImage(c, "alpine", "arm64"), { ok: true, image: "a:arm" });
    assert.deepEqual(microvmImage(c, "constructor", "arm64"), {
      ok: false,
      message: 'microvm image "constructor" is not in microvm.images (configured: alpine, nixos)',
    });
    const own = parseControllerConfig({ images: { runner: "r" }, microvm: { images: { nixos: "mine:1" } } });
    assert.deepEqual(own.microvm.images, { nixos: "mine:1" });
    assert.deepEqual(
      issuesOf({
        images: { runner: "r" },
        microvm: { runtimeClassName: "Kata_QEMU", images: { "a b": "x" } },
      }),
      [
        'kubernetes.microvm.images["a b"]: Invalid key in record',
        "kubernetes.microvm.runtimeClassName: must be a DNS subdomain",
      ],
    );
  });

  it("returns a frozen object", () => {
    const config = parseControllerConfig({ images: { runner: "r" } });
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.template.resourceProfiles));
  });

  it("accepts resource profiles written the way people write YAML (numbers for quantities)", () => {
    const config = parseControllerConfig({
      images: { runner: "r" },
      template: {
        resourceProfiles: [
          {
            name: "large",
            architecture: "arm64",
            nodeSelector: { "node-tier": "large" },
            resources: { requests: { cpu: 2, memory: "4Gi" }, limits: { cpu: "6", memory: "12Gi" } },
            tolerations: [{ key: "dedicated", value: "ci", effect: "NoSchedule" }],
          },
        ],
      },
    });
    assert.deepEqual(config.template.resourceProfiles, [
      {
        name: "large",
        architecture: "arm64",
        nodeSelector: { "node-tier": "large" },
        resources: { requests: { cpu: "2", memory: "4Gi" }, limits: { cpu: "6", memory: "12Gi" } },
        tolerations: [{ key: "dedicated", operator: "Equal", value: "ci", effect: "NoSchedule" }],
      },
    ]);
  });

  it("names every problem by its path in the file", () => {
    const issues = issuesOf({
      maxConcurentJobs: 3,
      maxConcurrentJobs: 0,
      images: {},
      template: {
        resourceProfiles: [
          { name: "a", resources: { requests: { memory: "8Gi" }, limits: { memory: "4Gi" } } },
          { name: "a", resources: { limits: { memory: "lots" } } },
          { architecture: "arm64", nodeSelector: { "kubernetes.io/arch": "amd64" } },
        ],
        tolerations: [{ operator: "Exists", value: "x" }],
      },
      buildah: { seccompUnconfined: true },
      timeouts: { heartbeatSeconds: 100 },
    });
    assert.deepEqual([...issues].sort(), [
      "kubernetes.images.runner: Invalid input: expected string, received undefined",
      "kubernetes.maxConcurrentJobs: Too small: expected number to be >=1",
      "kubernetes.template.resourceProfiles[0].resources.limits.memory: limit 4Gi is below the request 8Gi",
      "kubernetes.template.resourceProfiles[1].resources.limits.memory: not a Kubernetes quantity (e.g. 500m, 2, 4Gi)",
      'kubernetes.template.resourceProfiles[2].nodeSelector["kubernetes.io/arch"]: amd64 contradicts architecture arm64',
      "kubernetes.template.tolerations[0].value: must be empty when operator is Exists",
      'kubernetes: Unrecognized key: "maxConcurentJobs"',
    ]);
  });

  it("checks cross-field rules once the fields themselves are valid", () => {
    const issues = issuesOf({
      images: { runner: "r" },
      template: { resourceProfiles: [{ name: "a" }, { name: "a" }] },
      buildah: { seccompUnconfined: true },
      timeouts: { heartbeatSeconds: 100 },
    });
    assert.deepEqual(issues, [
      "kubernetes.buildah.seccompUnconfined: only applies when buildah.images lists an image",
      "kubernetes.timeouts.runnerSilentSeconds: must be at least twice heartbeatSeconds (100)",
      "kubernetes.template.resourceProfiles[1].name: duplicate of resourceProfiles[0].name",
    ]);
  });

  it("refuses the old cluster-wide buildah switch, saying what replaced it", () => {
    assert.deepEqual(issuesOf({ images: { runner: "r" }, buildah: { enabled: true } }), [
      "kubernetes.buildah.enabled: replaced by buildah.images: list the buildah images workflows may opt in with",
    ]);
    assert.deepEqual(issuesOf({ images: { runner: "r" }, buildah: { images: ["quay.io/*/x*", "a b"] } }), [
      "kubernetes.buildah.images[0]: an image, or a prefix ending in *",
      "kubernetes.buildah.images[1]: an image, or a prefix ending in *",
    ]);
  });

  it("treats an absent section as empty (and so asks for the runner image)", () => {
    assert.deepEqual(issuesOf(undefined), [
      "kubernetes.images: Invalid input: expected object, received undefined",
    ]);
  });
});

describe("the sample config", () => {
  it("parses, and the profiles keep their order", () => {
    const file = parse(
      readFileSync(new URL("../../config/examples/controller-config.yaml", import.meta.url), "utf8"),
    );
    const config = parseControllerConfig(file.kubernetes);
    assert.deepEqual(
      config.template.resourceProfiles.map((p) => p.name),
      ["arm64-large", "arm64", "amd64"],
    );
    assert.equal(config.images.runner, "ghcr.io/example/loom-runner:0.1.0");
  });
});
