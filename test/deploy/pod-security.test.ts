/**
 * Pod Security, as the API server's own PodSecurity admission judges it (server-side dry-run
 * creates in namespaces labelled pod-security.kubernetes.io/enforce=<level>):
 *
 * - a default workflow pod (the controller's Job builder with the shipped config) is admitted
 *   under `restricted`;
 * - a buildah workflow (its image listed in buildah.images) is refused under `restricted` and
 *   admitted under `baseline`; with buildah.seccompUnconfined it is refused under `baseline`
 *   and admitted only under `privileged` — what docs/operating.md tells operators to allow;
 * - a microvm workflow pod with every service sidecar (PostgreSQL, Redis, MariaDB) and a Nix
 *   store cache volume is admitted under `restricted`; with virtualisation.docker (allowed by
 *   microvm.docker.enabled) its privileged rootless Docker daemon is refused under `baseline` and
 *   admitted only under `privileged`;
 * - the chart's Loom Deployment is admitted under `restricted`, and a loosened copy is refused.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";
import type { V1PodSpec } from "@kubernetes/client-node";
import { parse } from "yaml";
import { buildJob } from "../../src/controller/build/job.ts";
import { selectProfile } from "../../src/controller/build/profile.ts";
import { OWNER, spec } from "../../src/controller/build/testdata/fixtures.ts";
import { parseControllerConfig } from "../../src/controller/config.ts";
import { getTestCluster } from "../harness/index.ts";
import { helmBinary, render, root } from "./helm-support.ts";

const cluster = await getTestCluster();
type Level = "restricted" | "baseline" | "privileged";

/** The `kubernetes` section of the shipped config file, plus `extra`. */
function shippedConfig(extra: Record<string, unknown> = {}) {
  const cm = parse(readFileSync(join(root, "config/manager/config.yaml"), "utf8")) as {
    data: Record<string, string>;
  };
  const section = (parse(cm.data["config.yaml"] as string) as { kubernetes: Record<string, unknown> })
    .kubernetes;
  return parseControllerConfig({ ...section, ...extra });
}

/** The pod spec of the Job the controller builds for the sample workflow running `image`. */
function workflowPod(image: string, extra: Record<string, unknown> = {}): V1PodSpec {
  const config = shippedConfig(extra);
  const s = spec((x) => {
    x.workflows[0]!.image = image;
  });
  const profile = selectProfile(config.template.resourceProfiles, "amd64", undefined);
  assert.ok(profile.ok);
  const job = buildJob({
    owner: OWNER,
    pipeline: s.pipeline,
    workflow: s.workflows[0]!,
    secretName: s.secretRef?.name,
    profile,
    config,
  });
  return job.spec!.template.spec!;
}

/** Server-side dry-run create of a pod with `podSpec` in a fresh namespace enforcing `level`. */
async function admit(t: TestContext, level: Level, podSpec: unknown) {
  const ns = await cluster.namespace(t, { "pod-security.kubernetes.io/enforce": level });
  const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: "probe", namespace: ns }, spec: podSpec };
  return cluster.kubectl(["create", "--dry-run=server", "-f", "-"], JSON.stringify(pod));
}

async function admitted(t: TestContext, level: Level, podSpec: unknown) {
  const r = await admit(t, level, podSpec);
  assert.equal(r.code, 0, `${level}: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /Warning/);
}

async function refused(t: TestContext, level: Level, podSpec: unknown, because: RegExp) {
  const r = await admit(t, level, podSpec);
  assert.notEqual(r.code, 0, `${level} admitted what it must refuse`);
  assert.match(r.stderr, new RegExp(`violates PodSecurity "${level}:latest"`));
  assert.match(r.stderr, because);
}

/** A microvm workflow's pod (nixos image, nix-store, /workspace/repo) with the PostgreSQL sidecar. */
function microvmPod(
  microvm: Record<string, unknown> = {
    services: ["postgresql"],
    postgresql: { ensureDatabases: ["app"], ensureUsers: [{ name: "app", ensureDBOwnership: true }] },
  },
  extra: Record<string, unknown> = {},
): V1PodSpec {
  const config = shippedConfig(extra);
  const s = spec((x) => {
    x.workflows[0]!.image = "nixos";
    x.workflows[0]!.microvm = { image: "nixos", services: [], virtualisation: [], ...microvm };
  });
  const profile = selectProfile(config.template.resourceProfiles, "amd64", undefined);
  assert.ok(profile.ok);
  const job = buildJob({
    owner: OWNER,
    pipeline: s.pipeline,
    workflow: s.workflows[0]!,
    secretName: s.secretRef?.name,
    profile,
    config,
  });
  return job.spec!.template.spec!;
}

const BUILDAH = "quay.io/buildah/stable";

describe("Pod Security of workflow pods", { skip: cluster.skip }, () => {
  it("a default workflow pod is admitted under restricted", async (t) => {
    await admitted(t, "restricted", workflowPod("docker.io/library/node:24"));
  });

  it("a microvm workflow pod with its PostgreSQL sidecar is admitted under restricted", async (t) => {
    const pod = microvmPod();
    assert.ok(
      pod.initContainers!.some((c) => c.name === "service-postgresql" && c.restartPolicy === "Always"),
    );
    await admitted(t, "restricted", pod);
  });

  it("a microvm pod with every service sidecar and a Nix store cache volume is admitted under restricted", async (t) => {
    const pod = microvmPod(
      {
        services: ["postgresql", "redis", "mariadb"],
        postgresql: { ensureDatabases: [], ensureUsers: [] },
        redis: { port: 6379 },
        mysql: {
          ensureDatabases: ["app"],
          ensureUsers: [
            { name: "spindle-workflow", ensurePermissions: [{ on: "app.*", privileges: "ALL" }] },
          ],
        },
      },
      { microvm: { cache: { volumeClaimName: "nix-cache" } } },
    );
    assert.deepEqual(
      pod.initContainers!.filter((c) => c.restartPolicy === "Always").map((c) => c.name),
      ["service-postgresql", "service-redis", "service-mariadb"],
    );
    await admitted(t, "restricted", pod);
  });

  it("virtualisation.docker's rootless daemon is privileged: refused under baseline, admitted under privileged", async (t) => {
    const pod = microvmPod({ virtualisation: ["docker"] }, { microvm: { docker: { enabled: true } } });
    assert.ok(pod.initContainers!.some((c) => c.name === "virtualisation-docker"));
    await refused(t, "baseline", pod, /privileged/);
    await admitted(t, "privileged", pod);
  });

  it("a buildah workflow is refused under restricted (the negative control) and admitted under baseline", async (t) => {
    const pod = workflowPod(`${BUILDAH}:v1.38`, { buildah: { images: [BUILDAH] } });
    await refused(t, "restricted", pod, /allowPrivilegeEscalation != false.*unrestricted capabilities/s);
    await admitted(t, "baseline", pod);
  });

  it("an image the operator did not list gets the restricted pod even when buildah is allowed", async (t) => {
    await admitted(
      t,
      "restricted",
      workflowPod("docker.io/library/alpine:3.20", { buildah: { images: [BUILDAH] } }),
    );
  });

  it("buildah with seccompUnconfined needs privileged: baseline refuses it", async (t) => {
    const pod = workflowPod(`${BUILDAH}:v1.38`, { buildah: { images: [BUILDAH], seccompUnconfined: true } });
    await refused(t, "baseline", pod, /seccompProfile/);
    await admitted(t, "privileged", pod);
  });
});

const helm = helmBinary();

describe("Pod Security of the chart's Loom Deployment", { skip: cluster.skip || helm.skip }, () => {
  it("is admitted under restricted, and a loosened copy is refused", async (t) => {
    const { objects } = await render(join(root, "test/deploy/testdata/helm/default.values.yaml"));
    const deployment = objects.find((o) => o.kind === "Deployment") as unknown as {
      spec: { template: { spec: V1PodSpec } };
    };
    const podSpec = deployment.spec.template.spec;
    await admitted(t, "restricted", podSpec);
    const loosened = structuredClone(podSpec);
    loosened.containers[0]!.securityContext!.allowPrivilegeEscalation = true;
    await refused(t, "restricted", loosened, /allowPrivilegeEscalation != false/);
  });
});
