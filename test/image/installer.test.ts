/**
 * `make build-installer` (scripts/build-installer.ts): one install.yaml holding everything
 * `make deploy` applies, with Loom's image and the runner image set, and nothing else changed.
 * And the other kubebuilder image targets, as `make -n` prints them (no container engine here).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { INSTALLER_TARGETS, kustomize, renderInstaller } from "../../scripts/build-installer.ts";
import { parseControllerConfig } from "../../src/controller/config.ts";

const repo = new URL("../../", import.meta.url).pathname;
type Obj = { kind: string; metadata: { name: string }; [k: string]: unknown };
const objects = (text: string) => parseAllDocuments(text).map((d) => d.toJS() as Obj);

describe("build-installer", () => {
  const dir = mkdtempSync(join(tmpdir(), "loom-installer-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("writes config/default with both images set, and nothing else changed", () => {
    const out = join(dir, "install.yaml");
    execFileSync(
      process.execPath,
      [
        "scripts/build-installer.ts",
        "--image",
        "r.test/loom:7",
        "--runner-image",
        "r.test/loom-runner:7",
        "--out",
        out,
      ],
      { cwd: repo, stdio: "pipe" },
    );
    const text = readFileSync(out, "utf8");
    const got = objects(text);
    const base = objects(kustomize());
    assert.deepEqual(
      got.map((o) => `${o.kind}/${o.metadata.name}`),
      base.map((o) => `${o.kind}/${o.metadata.name}`),
    );
    const deployment = got.find((o) => o.kind === "Deployment") as unknown as {
      spec: { template: { spec: { containers: { name: string; image: string }[] } } };
    };
    const loom = deployment.spec.template.spec.containers.find(
      (c) => c.name === INSTALLER_TARGETS.container,
    )!;
    assert.equal(loom.image, "r.test/loom:7");
    const cm = got.find(
      (o) => o.kind === "ConfigMap" && o.metadata.name === INSTALLER_TARGETS.configMap,
    ) as unknown as {
      data: Record<string, string>;
    };
    const configText = cm.data[INSTALLER_TARGETS.configKey]!;
    const k8s = parseControllerConfig((parse(configText) as { kubernetes: unknown }).kubernetes);
    assert.equal(k8s.images.runner, "r.test/loom-runner:7");
    assert.match(configText, /# REQUIRED/, "the config's comments are kept");
    // Put the two images back: the rest is kustomize's output unchanged.
    loom.image = (
      base.find((o) => o.kind === "Deployment") as unknown as typeof deployment
    ).spec.template.spec.containers.find((c) => c.name === INSTALLER_TARGETS.container)!.image;
    const baseCm = base.find(
      (o) => o.kind === "ConfigMap" && o.metadata.name === INSTALLER_TARGETS.configMap,
    ) as unknown as typeof cm;
    assert.deepEqual(
      parse(configText.replace("r.test/loom-runner:7", k8sRunner(baseCm.data[INSTALLER_TARGETS.configKey]!))),
      parse(baseCm.data[INSTALLER_TARGETS.configKey]!),
    );
    cm.data[INSTALLER_TARGETS.configKey] = baseCm.data[INSTALLER_TARGETS.configKey]!;
    assert.deepEqual(got, base);
  });

  it("refuses output it cannot place the images in", () => {
    assert.throws(() => renderInstaller("kind: Namespace\nmetadata: {name: x}\n", {}), /no Deployment/);
  });
});

describe("Makefile image targets", () => {
  // The Makefile's own defaults, whatever the caller's environment sets.
  const env = { ...process.env };
  for (const name of ["CONTAINER_TOOL", "PLATFORMS", "IMG", "RUNNER_IMG", "MAKEFLAGS"]) delete env[name];
  const make = (...args: string[]) =>
    execFileSync("make", ["-s", "--no-print-directory", ...args], { cwd: repo, encoding: "utf8", env });

  it("docker-buildx builds and pushes both images for linux/amd64 and linux/arm64 under one tag each", () => {
    const lines = make("-n", "docker-buildx", "IMG=r.test/loom:3", "RUNNER_IMG=r.test/loom-runner:3").split(
      "\n",
    );
    const builds = lines.filter((l) => l.includes("buildx build"));
    assert.deepEqual(builds, [
      "docker buildx build --push --platform=linux/amd64,linux/arm64 --tag r.test/loom:3 .",
      "docker buildx build --push --platform=linux/amd64,linux/arm64 --target runner --tag r.test/loom-runner:3 .",
    ]);
  });

  it("docker-build and docker-push take IMG and RUNNER_IMG", () => {
    assert.equal(
      make("-n", "docker-build", "docker-push", "IMG=r.test/loom:4", "RUNNER_IMG=r.test/loom-runner:4"),
      [
        "docker build -t r.test/loom:4 .",
        "docker build --target runner -t r.test/loom-runner:4 .",
        "docker push r.test/loom:4",
        "docker push r.test/loom-runner:4",
        "",
      ].join("\n"),
    );
  });

  it("help lists the targets with their descriptions", () => {
    const help = make("help").replace(/\x1b\[[0-9;]*m/g, ""); // no colours
    for (const target of [
      "docker-build",
      "docker-push",
      "docker-buildx",
      "build-installer",
      "runner-bundles",
      "help",
    ]) {
      assert.match(help, new RegExp(`^ +${target} +\\S`, "m"), target);
    }
  });
});

function k8sRunner(configText: string): string {
  return (parse(configText) as { kubernetes: { images: { runner: string } } }).kubernetes.images.runner;
}
