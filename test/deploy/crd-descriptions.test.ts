/**
 * `kubectl explain spindleset.spec` describes every field: each property of the generated CRD's
 * spec and status (at any depth) has a description, and the committed CRD file has them. The
 * descriptions come from `.describe()` in src/api/v1alpha1/spindleset.ts; manifests.test.ts asks
 * a real API server's `kubectl explain`.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { buildSpindleSetCrd } from "../../src/api/v1alpha1/crd.ts";

interface Schema {
  description?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
}

/** Dotted paths of every property under `node` that has no description. */
function undescribed(node: Schema, path: string): string[] {
  const missing = path && !node.description ? [path] : [];
  for (const [name, sub] of Object.entries(node.properties ?? {}))
    missing.push(...undescribed(sub, `${path}.${name}`));
  if (node.items) missing.push(...undescribed({ ...node.items, description: "(list item)" }, `${path}[]`));
  return missing;
}

const root = buildSpindleSetCrd().spec.versions[0]?.schema?.openAPIV3Schema as Schema;

describe("SpindleSet CRD descriptions", () => {
  for (const part of ["spec", "status"] as const) {
    it(`every field of ${part} has a description`, () => {
      const node = root.properties?.[part];
      assert.ok(node);
      assert.deepEqual(undescribed(node, part), []);
      assert.ok(Object.keys(node.properties ?? {}).length > 3);
    });
  }

  it("the committed config/crd file carries them (helm.test.ts compares the chart's copy)", () => {
    const committed = parse(
      readFileSync(new URL("../../config/crd/loom.tangled.sh_spindlesets.yaml", import.meta.url), "utf8"),
    );
    assert.deepEqual(committed.spec.versions[0].schema.openAPIV3Schema, root);
  });
});
