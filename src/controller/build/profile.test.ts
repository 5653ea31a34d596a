import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseControllerConfig } from "../config.ts";
import { type NodeLabels, profileMatchesNodes, selectProfile } from "./profile.ts";

// The homelab shape the Go Loom's users run: big arm64 nodes first, then any arm64, then amd64.
const { resourceProfiles: profiles } = parseControllerConfig({
  images: { runner: "r" },
  template: {
    resourceProfiles: [
      {
        name: "arm-large",
        architecture: "arm64",
        nodeSelector: { "node-tier": "large" },
        resources: { requests: { cpu: "2", memory: "4Gi" }, limits: { cpu: "6", memory: "12Gi" } },
      },
      { name: "arm", nodeSelector: { "kubernetes.io/arch": "arm64" }, resources: { requests: { cpu: "1" } } },
      { architecture: "amd64", tolerations: [{ key: "ci", operator: "Exists" }] },
    ],
  },
}).template;

const node = (name: string, labels: Record<string, string>): NodeLabels => ({ name, labels });
const armSmall = node("pi-1", { "kubernetes.io/arch": "arm64" });
const armLarge = node("ampere-1", { "kubernetes.io/arch": "arm64", "node-tier": "large" });
const amd = node("x86-1", { "kubernetes.io/arch": "amd64" });

describe("selectProfile", () => {
  it("takes the first profile whose architecture and node labels match", () => {
    const choice = selectProfile(profiles, "arm64", [armSmall, armLarge, amd]);
    assert.deepEqual(choice, {
      ok: true,
      profile: profiles[0],
      index: 0,
      label: "arm-large",
      nodeSelector: { "node-tier": "large", "kubernetes.io/arch": "arm64" },
    });
  });

  it("falls through to the next profile when no node carries the first one's labels", () => {
    const choice = selectProfile(profiles, "arm64", [armSmall, amd]);
    assert.ok(choice.ok);
    assert.equal(choice.label, "arm");
    assert.deepEqual(choice.nodeSelector, { "kubernetes.io/arch": "arm64" });
  });

  it("labels unnamed profiles by position", () => {
    const choice = selectProfile(profiles, "amd64", [amd]);
    assert.ok(choice.ok);
    assert.deepEqual([choice.label, choice.index], ["#2", 2]);
  });

  it("skips the node check when nodes are unknown", () => {
    const choice = selectProfile(profiles, "arm64", undefined);
    assert.ok(choice.ok && choice.label === "arm-large");
  });

  it("fails with a clear reason when no profile serves the architecture", () => {
    assert.deepEqual(selectProfile(profiles, "riscv64", [amd]), {
      ok: false,
      reason: "NoMatchingProfile",
      message:
        "no resource profile serves architecture riscv64; configured: arm-large (arm64), arm (arm64), #2 (amd64)",
    });
  });

  it("fails with a clear reason when no node has the labels", () => {
    assert.deepEqual(selectProfile(profiles, "arm64", [amd]), {
      ok: false,
      reason: "NoMatchingProfile",
      message:
        "no node matches a resource profile for arm64 (1 nodes checked): arm-large needs {node-tier=large, kubernetes.io/arch=arm64}; arm needs {kubernetes.io/arch=arm64}",
    });
  });

  it("uses a built-in default profile when none are configured, still pinning the architecture", () => {
    const ok = selectProfile([], "amd64", [amd]);
    assert.ok(ok.ok);
    assert.deepEqual(
      [ok.label, ok.index, ok.nodeSelector],
      ["default", -1, { "kubernetes.io/arch": "amd64" }],
    );
    const none = selectProfile([], "arm64", [amd]);
    assert.ok(!none.ok);
    assert.match(none.message, /default needs \{kubernetes.io\/arch=arm64\}/);
  });

  it("lists the nodes a profile can use", () => {
    assert.deepEqual(profileMatchesNodes(profiles[1]!, "arm64", [armSmall, armLarge, amd]), [
      armSmall,
      armLarge,
    ]);
  });
});
