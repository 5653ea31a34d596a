/**
 * How the dashboard and the alerts are shipped: `kubectl kustomize config/monitoring` and the
 * Helm chart's monitoring templates (rendered by the real helm built by hack/control-plane.sh).
 * Both carry exactly config/monitoring's dashboard JSON and rule groups; the chart's copies of
 * those files are byte-equal to config/monitoring's; the chart renders nothing unless asked.
 *
 * The monitoring templates are rendered inside a throwaway chart holding only them and the
 * chart's values, so this test does not depend on the rest of the chart.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parse, parseAllDocuments } from "yaml";
import { locateBinaries, readConfig } from "../harness/config.ts";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CONFIG = join(ROOT, "config/monitoring");
const CHART = join(ROOT, "charts/loom");
const VALUES = join(CHART, "values.yaml");
const FILES = ["grafana-dashboard.json", "prometheus-rules.yaml"];

let bins: { helm: string; kubectl: string } | undefined;
try {
  bins = locateBinaries(readConfig().cacheDir);
} catch {
  bins = undefined;
}
const skip = bins ? false : "helm and kubectl are not built (make test-deps)";

const dashboardText = readFileSync(join(CONFIG, "grafana-dashboard.json"), "utf8");
const rules = parse(readFileSync(join(CONFIG, "prometheus-rules.yaml"), "utf8")) as { spec: unknown };

type Obj = {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  spec?: unknown;
};

function docs(text: string): Obj[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Obj | null)
    .filter((d): d is Obj => d !== null);
}

const dir = mkdtempSync(join(tmpdir(), "loom-chart-monitoring-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A chart with only the monitoring templates, files and values, rendered with `args`. */
async function helmTemplate(...args: string[]): Promise<Obj[]> {
  const chart = join(dir, "chart");
  rmSync(chart, { recursive: true, force: true });
  mkdirSync(join(chart, "templates"), { recursive: true });
  writeFileSync(join(chart, "Chart.yaml"), "apiVersion: v2\nname: loom\nversion: 0.0.0\n");
  for (const t of ["grafana-dashboard.yaml", "prometheusrule.yaml"])
    cpSync(join(CHART, "templates", t), join(chart, "templates", t));
  cpSync(join(CHART, "monitoring"), join(chart, "monitoring"), { recursive: true });
  cpSync(VALUES, join(chart, "values.yaml"));
  const { stdout } = await run(bins!.helm, ["template", "rel", chart, "--namespace", "ci", ...args]);
  return docs(stdout);
}

test("the chart's copies of the dashboard and the rules are config/monitoring's, byte for byte", () => {
  for (const f of FILES)
    assert.equal(
      readFileSync(join(CHART, "monitoring", f), "utf8"),
      readFileSync(join(CONFIG, f), "utf8"),
      `${f}: copy config/monitoring/${f} to ${join(CHART, "monitoring")}`,
    );
});

test("helm: nothing by default; when enabled, the dashboard ConfigMap for the sidecar and the PrometheusRule", {
  skip,
}, async () => {
  assert.deepEqual(await helmTemplate(), []);
  const out = await helmTemplate(
    "--set",
    "monitoring.grafanaDashboard.enabled=true",
    "--set",
    "monitoring.grafanaDashboard.annotations.grafana_folder=Loom",
    "--set",
    "monitoring.prometheusRule.enabled=true",
    "--set",
    "monitoring.prometheusRule.labels.release=kube-prometheus-stack",
  );
  assert.deepEqual(out.map((o) => o.kind).sort(), ["ConfigMap", "PrometheusRule"]);
  const cm = out.find((o) => o.kind === "ConfigMap")!;
  assert.equal(cm.metadata.namespace, "ci");
  assert.equal(cm.metadata.labels?.grafana_dashboard, "1");
  assert.equal(cm.data?.["loom.json"], dashboardText.trimEnd());
  const rule = out.find((o) => o.kind === "PrometheusRule")!;
  assert.equal(rule.metadata.labels?.release, "kube-prometheus-stack");
  assert.deepEqual(rule.spec, rules.spec);

  const elsewhere = await helmTemplate(
    "--set",
    "monitoring.grafanaDashboard.enabled=true",
    "--set",
    "monitoring.grafanaDashboard.namespace=grafana",
    "--set",
    "monitoring.grafanaDashboard.labelName=dashboards",
    "--set",
    "monitoring.grafanaDashboard.labelValue=loom",
  );
  assert.equal(elsewhere[0]?.metadata.namespace, "grafana");
  assert.equal(elsewhere[0]?.metadata.labels?.dashboards, "loom");
});

test("kustomize: config/monitoring renders the ServiceMonitor, the rules and the dashboard ConfigMap", {
  skip,
}, async () => {
  const { stdout } = await run(bins!.kubectl, ["kustomize", CONFIG]);
  const out = docs(stdout);
  assert.deepEqual(out.map((o) => o.kind).sort(), ["ConfigMap", "PrometheusRule", "ServiceMonitor"]);
  for (const o of out) assert.equal(o.metadata.namespace, "loom");
  const cm = out.find((o) => o.kind === "ConfigMap")!;
  assert.equal(cm.metadata.name, "loom-grafana-dashboard");
  assert.equal(cm.metadata.labels?.grafana_dashboard, "1");
  assert.equal(cm.data?.["loom.json"], dashboardText);
  assert.deepEqual(out.find((o) => o.kind === "PrometheusRule")!.spec, rules.spec);
});
