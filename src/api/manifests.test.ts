/** Checks the hand-written manifests in config/rbac against the code they serve. */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { parseControllerConfig } from "../controller/config.ts";
import { GROUP, SPINDLESET } from "./v1alpha1/group.ts";

type Manifest = { kind: string; metadata: { name: string; namespace?: string }; [key: string]: unknown };
type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };

const dir = new URL("../../config/rbac/", import.meta.url);
const manifests: Manifest[] = readdirSync(dir)
  .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
  .flatMap((f) => parseAllDocuments(readFileSync(new URL(f, dir), "utf8")).map((d) => d.toJS() as Manifest));
const find = (kind: string, name: string) => {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  assert.ok(found, `${kind}/${name} missing from config/rbac`);
  return found;
};
const defaults = parseControllerConfig({ images: { runner: "r" } });

function allows(rules: Rule[], group: string, resource: string, verb: string): boolean {
  return rules.some(
    (r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb),
  );
}

describe("config/rbac", () => {
  it("lets the controller do its job in its namespace", () => {
    const role = find("Role", "loom-controller");
    assert.equal(role.metadata.namespace, defaults.namespace);
    const rules = role.rules as Rule[];
    const wanted: [string, string, string[]][] = [
      [GROUP, SPINDLESET.plural, ["get", "list", "watch", "create", "delete"]],
      [GROUP, `${SPINDLESET.plural}/status`, ["update", "patch"]],
      [GROUP, `${SPINDLESET.plural}/finalizers`, ["update"]],
      ["batch", "jobs", ["get", "list", "watch", "create", "delete", "patch"]],
      ["", "pods", ["get", "list", "watch"]],
      ["", "pods/log", ["get"]],
      ["", "secrets", ["get", "create"]],
      ["", "configmaps", ["get", "create"]],
      ["", "events", ["create"]],
      ["coordination.k8s.io", "leases", ["get", "create", "update"]],
    ];
    for (const [group, resource, verbs] of wanted) {
      for (const verb of verbs)
        assert.ok(allows(rules, group, resource, verb), `${verb} ${group}/${resource}`);
    }
    assert.ok(allows(find("ClusterRole", "loom-controller-nodes").rules as Rule[], "", "nodes", "list"));
  });

  it("gives workflow pods an identity with no token and no permissions", () => {
    const sa = find("ServiceAccount", defaults.serviceAccountName);
    assert.equal(sa.automountServiceAccountToken, false);
    for (const binding of manifests.filter((m) => m.kind.endsWith("Binding"))) {
      const subjects = binding.subjects as { name: string }[];
      assert.ok(!subjects.some((s) => s.name === defaults.serviceAccountName), binding.metadata.name);
    }
  });
});
