/**
 * config/monitoring/prometheus-rules.yaml: its rule groups pass `promtool check rules`, its
 * alerts fire as test/monitoring/alerts.promtest.yaml expects (`promtool test rules`: series
 * in, alerts out), and every metric an alert reads is one Loom registers, with its labels.
 * promtool is Prometheus's own, built from the Go module proxy by hack/promtool.sh
 * (`make test-deps`).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import { parse, stringify } from "yaml";
import { exportedSeries, problems } from "./promql.ts";

const run = promisify(execFile);
const root = new URL("../../", import.meta.url);
const RULES = new URL("config/monitoring/prometheus-rules.yaml", root);
const PROMTEST = new URL("test/monitoring/alerts.promtest.yaml", root);

/** The version hack/promtool.sh builds (its default), so the two never disagree. */
const version = /PROMETHEUS_MODULE_VERSION:-(v[0-9.]+)/.exec(
  readFileSync(new URL("hack/promtool.sh", root), "utf8"),
)?.[1];
const cache = process.env.LOOM_CACHE || join(homedir(), ".cache", "loom");
const promtool = join(cache, `promtool-${version}`, "promtool");

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
}
const resource = parse(readFileSync(RULES, "utf8")) as {
  apiVersion: string;
  kind: string;
  spec: { groups: { name: string; rules: Rule[] }[] };
};
const alerts = resource.spec.groups.flatMap((g) => g.rules);

const dir = mkdtempSync(join(tmpdir(), "loom-promtool-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs promtool; its exit code and output (a non-zero exit is returned, not thrown). */
async function promtoolRun(...args: string[]): Promise<{ code: number; out: string }> {
  assert.ok(existsSync(promtool), `${promtool} is missing: run make test-deps (hack/promtool.sh)`);
  try {
    const { stdout, stderr } = await run(promtool, args, { cwd: dir });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

test("prometheus-rules.yaml: a PrometheusRule with the alerts issue 16 asks for", () => {
  assert.equal(resource.apiVersion, "monitoring.coreos.com/v1");
  assert.equal(resource.kind, "PrometheusRule");
  assert.deepEqual(alerts.map((r) => r.alert).sort(), [
    "LoomControllerNotLeading",
    "LoomInfrastructureFailures",
    "LoomIntakeLagging",
    "LoomIntakeStalled",
    "LoomQueueWaitHigh",
    "LoomReconcileErrors",
  ]);
  const infra = alerts.find((r) => r.alert === "LoomInfrastructureFailures")!.expr;
  for (const reason of ["ImagePullFailed", "Unschedulable", "PodCreateFailed", "RunnerSilent"])
    assert.ok(infra.includes(reason), reason);
});

test("prometheus-rules.yaml: every alert reads series Loom exports, with their labels", async () => {
  const series = await exportedSeries();
  assert.deepEqual(
    alerts.flatMap((r) => problems(r.expr, series, r.alert ?? r.record ?? "?")),
    [],
  );
});

test("promtool check rules: the rule groups pass; a broken expression does not", async () => {
  writeFileSync(join(dir, "rules.yaml"), stringify({ groups: resource.spec.groups }));
  const ok = await promtoolRun("check", "rules", "rules.yaml");
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, new RegExp(`SUCCESS: ${alerts.length} rules found`));

  const broken = structuredClone(resource.spec.groups);
  broken[0]!.rules[0]!.expr = 'max by (job) (loom_intake_connections{source="jetstream"} < 1';
  writeFileSync(join(dir, "broken.yaml"), stringify({ groups: broken }));
  const bad = await promtoolRun("check", "rules", "broken.yaml");
  assert.notEqual(bad.code, 0);
  assert.match(bad.out, /FAILED/);
});

test("promtool test rules: series in, the expected alerts out", async () => {
  writeFileSync(join(dir, "rules.yaml"), stringify({ groups: resource.spec.groups }));
  copyFileSync(PROMTEST, join(dir, "alerts.promtest.yaml"));
  const res = await promtoolRun("test", "rules", "alerts.promtest.yaml");
  assert.equal(res.code, 0, res.out);
  assert.match(res.out, /SUCCESS/);
  const tested = new Set([...readFileSync(PROMTEST, "utf8").matchAll(/alertname: (\w+)/g)].map((m) => m[1]));
  assert.equal(tested.size, alerts.length, `alerts with unit tests: ${[...tested].join(", ")}`);
});
