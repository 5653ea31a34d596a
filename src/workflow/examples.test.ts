/**
 * Every example workflow from the spec (copied to testdata/) parses and plans.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { compileWorkflows } from "./compile.ts";
import { lintWorkflow } from "./lint.ts";
import { parseWorkflow } from "./parse.ts";
import { resolveWorkflow } from "./resolve.ts";
import { pushTrigger } from "./testkit.ts";

const dirs = ["upstream-core", "docs"];
const opts = { pipeline: { knot: "knot1.tangled.sh", rkey: "3lxyz2abcde22" }, secretKeys: ["TOKEN"] };

for (const dir of dirs) {
  const base = new URL(`./testdata/${dir}/`, import.meta.url);
  describe(`examples/${dir}`, () => {
    for (const name of readdirSync(base).sort()) {
      const text = readFileSync(new URL(name, base), "utf8");
      it(`${name} parses without errors`, () => {
        const parsed = parseWorkflow(name, text);
        assert.deepEqual([...parsed.errors, ...parsed.engineErrors], []);
        assert.ok(parsed.workflow);
      });
      it(`${name} compiles for a push it matches and resolves (or names its engine)`, () => {
        const parsed = parseWorkflow(name, text);
        const wantsTag = parsed.workflow!.when.every((c) => c.branch.length === 0);
        const branch = parsed.workflow!.when[0]?.branch[0] ?? "main";
        const trigger = pushTrigger(wantsTag ? "refs/tags/v1.0.0" : `refs/heads/${branch}`);
        const { record, diagnostics } = compileWorkflows([{ name, content: text }], trigger);
        assert.deepEqual(diagnostics, []);
        assert.ok(record);
        const r = resolveWorkflow(record.workflows[0]!, trigger, opts);
        assert.ok(r.ok, r.ok ? "" : r.error);
        assert.equal(r.plan.steps.filter((s) => s.kind === "user").length, parsed.workflow!.steps.length);
      });
      it(`${name} lints clean`, () => {
        // Only what Loom truly lacks is said: a Docker daemon only where the operator allows one.
        const expected = /^virtualisation:\n {2}docker: true$/m.test(text)
          ? [
              "virtualisation.docker: Loom's Kubernetes engine runs a rootless Docker daemon only where the operator allows it (microvm.docker.enabled); elsewhere the workflow fails before it starts",
            ]
          : [];
        assert.deepEqual(
          lintWorkflow(name, text).map((d) => d.message),
          expected,
        );
        assert.ok(lintWorkflow(name, text).every((d) => d.severity === "warning"));
      });
    }
  });
}

describe("upstream build.yml plan in full", () => {
  it("matches spec §2.3 and §7", () => {
    const text = readFileSync(new URL("./testdata/upstream-core/build.yml", import.meta.url), "utf8");
    const trigger = pushTrigger("refs/heads/master");
    const { record } = compileWorkflows([{ name: "build.yml", content: text }], trigger);
    const r = resolveWorkflow(record!.workflows[0]!, trigger, opts);
    assert.ok(r.ok);
    assert.equal(r.plan.image, "nixery.tangled.sh/go/gcc/bash/git/coreutils/nix");
    assert.deepEqual(
      r.plan.steps.map((s) => s.name),
      [
        "Configure Nix",
        "Clone repository into workspace",
        "patch static dir",
        "build appview",
        "build knot",
        "build spindle",
      ],
    );
    const env = r.plan.steps[3]!.env;
    assert.deepEqual(
      env.find((e) => e.name === "CGO_ENABLED"),
      { name: "CGO_ENABLED", value: "1" },
    );
    assert.equal(r.plan.steps[3]!.command, "go build -o appview.out ./cmd/appview\n");
  });
});
