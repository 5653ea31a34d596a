/**
 * The layers of src/ (LAYERS in .dependency-cruiser.mjs) are enforced by `make lint`, and each
 * folder's README.md states the same row. The rules are proven to bite on a fixture tree
 * (test/fixtures/layers) that breaks each of them once; the real tree must break none.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { cruise } from "dependency-cruiser";
import config, { LAYERS } from "../../.dependency-cruiser.mjs";

const root = fileURLToPath(new URL("../..", import.meta.url));

async function violations(baseDir: string): Promise<string[]> {
  const options = { ...config.options, validate: true, ruleSet: { forbidden: config.forbidden }, baseDir };
  if (baseDir !== root) delete (options as { tsConfig?: unknown }).tsConfig;
  const result = await cruise(["src"], options);
  if (typeof result.output === "string") throw new Error(result.output);
  return result.output.summary.violations.map(
    (v) =>
      `${v.rule.name}: ${v.from} → ${v.to}${v.cycle ? ` (${v.cycle.map((c) => c.name).join(" → ")})` : ""}`,
  );
}

test("layers: each rule refuses its violation in the fixture tree, and allows what it should", async () => {
  const found = await violations(fileURLToPath(new URL("../fixtures/layers", import.meta.url)));
  const has = (prefix: string) => found.some((v) => v.startsWith(prefix));
  assert.ok(has("layer-engine: src/engine/uses-controller.ts → src/controller/names.ts"), found.join("\n"));
  assert.ok(has("no-circular: src/controller/names.ts → src/controller/observe.ts"), found.join("\n"));
  assert.ok(has("packages-controller: src/controller/atproto.ts"), found.join("\n"));
  assert.ok(has("layer-protocol: src/protocol/uses-spindle.ts → src/spindle/server.ts"), found.join("\n"));
  assert.ok(!has("layer-workflow:"), `workflow → protocol is allowed:\n${found.join("\n")}`);
});

test("layers: the real src/ tree has no cycle and no forbidden import", async () => {
  assert.deepEqual(await violations(root), []);
});

test("layers: every folder of src/ has a row, and its README.md states it", () => {
  const folders = readdirSync(new URL("../../src", import.meta.url), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  assert.deepEqual(
    folders,
    Object.keys(LAYERS).sort(),
    "LAYERS in .dependency-cruiser.mjs names every folder of src/",
  );
  for (const [folder, allowed] of Object.entries(LAYERS)) {
    const readme = readFileSync(new URL(`../../src/${folder}/README.md`, import.meta.url), "utf8");
    const line = readme.split("\n").find((l) => l.startsWith("May import:"));
    assert.ok(line, `src/${folder}/README.md has a "May import:" line`);
    const named = [...line.matchAll(/`src\/([a-z0-9-]+)`/g)].map((m) => m[1]).sort();
    assert.deepEqual(named, [...allowed].sort(), `src/${folder}/README.md "May import:" matches LAYERS`);
  }
});
