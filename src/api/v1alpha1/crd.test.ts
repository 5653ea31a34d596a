import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { buildSpindleSetCrd } from "./crd.ts";
import { renderCrdYaml } from "./render.ts";

type Node = { [key: string]: unknown };

/** Walks every schema node, calling `visit(node, path)`. */
function walk(node: Node, path: string, visit: (node: Node, path: string) => void): void {
  visit(node, path);
  for (const [name, sub] of Object.entries((node.properties ?? {}) as Record<string, Node>)) {
    walk(sub, `${path}.${name}`, visit);
  }
  if (node.items) walk(node.items as Node, `${path}[]`, visit);
  if (typeof node.additionalProperties === "object")
    walk(node.additionalProperties as Node, `${path}{}`, visit);
}

const root = buildSpindleSetCrd().spec.versions[0]?.schema?.openAPIV3Schema as Node;

describe("SpindleSet CRD", () => {
  it("matches the committed file (run `node scripts/generate-crd.ts` after changing the API)", () => {
    const committed = readFileSync(
      new URL("../../../config/crd/loom.tangled.sh_spindlesets.yaml", import.meta.url),
      "utf8",
    );
    assert.equal(committed, renderCrdYaml());
  });

  it("is structural: typed everywhere, no refs, unions only as required-lists", () => {
    walk(root, "", (node, path) => {
      assert.equal(typeof node.type, "string", `${path} has no type`);
      assert.ok(!("$ref" in node) && !("anyOf" in node) && !("allOf" in node), path);
      assert.notEqual(node.additionalProperties, false, path);
      for (const branch of (node.oneOf ?? []) as Node[])
        assert.deepEqual(Object.keys(branch), ["required"], path);
      if (node["x-kubernetes-list-type"] === "map") {
        const keys = node["x-kubernetes-list-map-keys"] as string[];
        const required = ((node.items as Node).required ?? []) as string[];
        for (const key of keys) assert.ok(required.includes(key), `${path}: map key ${key} must be required`);
      }
    });
  });

  it("keeps secrets out: the only secret-ish fields are key names and a Secret reference", () => {
    const paths: string[] = [];
    walk(root, "", (_node, path) => {
      if (/secret/i.test(path.split(".").pop() ?? "") && !path.endsWith("[]")) paths.push(path);
    });
    assert.deepEqual(paths, [
      ".spec.secretRef",
      ".spec.workflows[].secretKeys",
      ".spec.workflows[].steps[].env[].secret",
    ]);
  });

  it("answers `kubectl get` with phase, progress, reason and age", () => {
    const columns = buildSpindleSetCrd().spec.versions[0]?.additionalPrinterColumns ?? [];
    assert.deepEqual(
      columns.filter((c) => !c.priority).map((c) => `${c.name}=${c.jsonPath}`),
      [
        "Phase=.status.phase",
        "Done=.status.progress",
        "Reason=.status.reason",
        "Age=.metadata.creationTimestamp",
      ],
    );
  });
});

describe("the CRD as Kubernetes tools read it (YAML 1.1, as go-yaml in kubectl and Helm)", () => {
  const built = JSON.parse(JSON.stringify(buildSpindleSetCrd()));
  it("the committed config/crd file means the same object (no `on`/`yes` read as a boolean)", () => {
    const text = readFileSync(
      new URL("../../../config/crd/loom.tangled.sh_spindlesets.yaml", import.meta.url),
      "utf8",
    );
    assert.deepEqual(parse(text, { version: "1.1" }), built);
  });
  it("the chart's copy too", () => {
    const text = readFileSync(new URL("../../../charts/loom/templates/crd.yaml", import.meta.url), "utf8");
    const body = text
      .split("\n")
      .filter((l) => !l.startsWith("{{"))
      .join("\n");
    const crd = parse(body, { version: "1.1" }) as { metadata: { annotations?: unknown } };
    delete crd.metadata.annotations;
    assert.deepEqual(crd, built);
  });
});
