/**
 * docs/operating.md stays in step with the code: every setting of the spindle server (with its
 * file key and default, in one table row), every key and default of the `kubernetes` section,
 * every Prometheus metric Loom registers (with its type) and every workflow status reason (with
 * the phase it implies) has its row. The lists come from the code itself, never from a copy.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { phaseForReason, REASONS } from "../../src/api/v1alpha1/spindleset.ts";
import { parseControllerConfig } from "../../src/controller/config.ts";
import { createControllerMetrics } from "../../src/controller/metrics.ts";
import { FIELDS } from "../../src/spindle/config/index.ts";
import { createMetrics } from "../../src/spindle/pipelines/metrics.ts";

const doc = readFileSync(new URL("../../docs/operating.md", import.meta.url), "utf8");
const rows = doc.split("\n").filter((line) => line.startsWith("| "));

/** The table row whose first cell is `` `name` ``. */
function row(name: string): string {
  const found = rows.filter((line) => line.startsWith(`| \`${name}\` |`));
  assert.equal(found.length, 1, `docs/operating.md needs exactly one table row for \`${name}\``);
  return found[0] as string;
}

/** Dotted paths of the leaves of a parsed config (arrays are leaves). */
function leaves(value: unknown, prefix = ""): [string, unknown][] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return [[prefix, value]];
  return Object.entries(value).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
}

test("docs/operating.md: has a row for every setting of the spindle server, with its file key and default", () => {
  for (const field of Object.values(FIELDS)) {
    const line = row(field.env);
    if (field.file === null) assert.match(line, /\| env only \|/, `${field.env} is environment-only`);
    else assert.ok(line.includes(`| \`${field.file}\` |`), `${field.env}: file key ${field.file}`);
    const def = "default" in field ? field.default : undefined;
    if (def !== undefined) assert.ok(line.includes(`| \`${def}\` |`), `${field.env}: default ${def}`);
  }
});

test("docs/operating.md: has a row for every key of the kubernetes section, with its default", () => {
  const config = parseControllerConfig({ images: { runner: "example/runner:1" } });
  for (const [path, value] of leaves(config)) {
    const line = row(path);
    if (path === "images.runner") continue; // required: no default
    const shown = Array.isArray(value) ? JSON.stringify(value) : String(value);
    assert.ok(line.includes(`| \`${shown}\` |`), `kubernetes.${path}: default ${shown}`);
  }
});

test("docs/operating.md: lists every metric Loom registers, with its type", async () => {
  const registries = [createMetrics().registry, createControllerMetrics().registry];
  const metrics = (await Promise.all(registries.map((r) => r.getMetricsAsJSON()))).flat();
  assert.ok(metrics.length > 0);
  for (const metric of metrics) {
    assert.ok(row(metric.name).includes(`| ${metric.type} |`), `${metric.name} is a ${metric.type}`);
  }
});

test("docs/operating.md: explains every workflow status reason, with the phase it implies", () => {
  for (const reason of REASONS) {
    assert.ok(row(reason).includes(`| ${phaseForReason(reason)} |`), `${reason} → ${phaseForReason(reason)}`);
  }
});
