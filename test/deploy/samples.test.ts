/**
 * config/samples/ as `kubectl apply -k` sees it, without a cluster: the kustomization lists
 * every file and each file holds Kubernetes objects only; the SpindleSets are valid, carry the
 * label that keeps them from the orphan sweep, and find every secret key they read in the
 * sample Secret; the buildah sample runs an image a buildah.images entry can allow. The apply
 * itself, on a cluster with Loom deployed, is in manifests.test.ts.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { LABELS } from "../../src/api/contract/index.ts";
import { parseSpindleSetSpec } from "../../src/api/v1alpha1/spindleset.ts";
import { buildahAllowed, parseControllerConfig } from "../../src/controller/config.ts";

const dir = new URL("../../config/samples/", import.meta.url).pathname;
const kustomization = parse(readFileSync(join(dir, "kustomization.yaml"), "utf8")) as { resources: string[] };

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: unknown;
  stringData?: Record<string, string>;
  data?: Record<string, string>;
}
const objects: Obj[] = kustomization.resources.flatMap((file) =>
  parseAllDocuments(readFileSync(join(dir, file), "utf8")).map((d) => d.toJS() as Obj),
);

describe("config/samples", () => {
  it("the kustomization lists every file, and every file holds only Kubernetes objects", () => {
    const files = readdirSync(dir).filter((f) => f !== "kustomization.yaml");
    assert.deepEqual([...kustomization.resources].sort(), files.sort());
    for (const o of objects) {
      assert.ok(o.apiVersion && o.kind && o.metadata?.name, JSON.stringify(o).slice(0, 80));
      assert.equal(o.metadata.namespace, "loom", `${o.kind} ${o.metadata.name}`);
    }
  });

  it("every SpindleSet is valid, kept by the sweep, and its Secret holds every key it reads", () => {
    const sets = objects.filter((o) => o.kind === "SpindleSet");
    assert.equal(sets.length, 2);
    for (const ss of sets) {
      const parsed = parseSpindleSetSpec(ss.spec);
      assert.ok(parsed.ok, `${ss.metadata.name}: ${!parsed.ok && parsed.issues.join("; ")}`);
      assert.equal(ss.metadata.labels?.[LABELS.handMade], "true", ss.metadata.name);
      const keys = parsed.value.workflows.flatMap((w) => w.secretKeys);
      if (keys.length === 0) continue;
      const secret = objects.find(
        (o) => o.kind === "Secret" && o.metadata.name === parsed.value.secretRef?.name,
      );
      assert.ok(secret, `${ss.metadata.name}: no sample Secret ${parsed.value.secretRef?.name}`);
      for (const key of keys) assert.ok(key in { ...secret.stringData, ...secret.data }, key);
    }
  });

  it("the buildah sample runs an image the operator can allow, and only then gets buildah", () => {
    const buildah = objects.find((o) => o.metadata.name.includes("buildah"));
    const parsed = parseSpindleSetSpec(buildah?.spec);
    assert.ok(parsed.ok);
    const image = parsed.value.workflows[0]!.image;
    const allowing = parseControllerConfig({
      images: { runner: "r" },
      buildah: { images: ["quay.io/buildah/stable"] },
    });
    assert.equal(buildahAllowed(allowing, image), true);
    assert.equal(buildahAllowed(parseControllerConfig({ images: { runner: "r" } }), image), false);
  });
});
