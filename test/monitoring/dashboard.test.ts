/**
 * config/monitoring/grafana-dashboard.json against Grafana's own schema, and every query
 * against the metrics Loom really exports.
 *
 * The schema: @grafana/schema (Grafana's schema library, generated from the CUE schema Grafana
 * itself validates dashboards with) publishes it as TypeScript types: the dashboard model
 * (`Dashboard`, schemaVersion 41), and each panel plugin's options and field config. The test
 * writes the JSON as an object literal checked with `satisfies` against those types, and has
 * the TypeScript compiler type-check it (strict): unknown fields, wrong types and values outside
 * an enum are errors. Grafana's enums are TypeScript enums; JSON holds their values, so the
 * check reads each enum as the union of its values (`Plain` below). Prometheus query fields
 * (expr, legendFormat, …) are not in @grafana/schema (they live in Grafana's Prometheus plugin):
 * targets are checked as Grafana's `DataQuery` plus those fields, spelled out below.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { exportedSeries, problems } from "./promql.ts";

const DASHBOARD = new URL("../../config/monitoring/grafana-dashboard.json", import.meta.url);
const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as GrafanaDashboard;

interface GrafanaPanel {
  type: string;
  id: number;
  title: string;
  options?: unknown;
  fieldConfig?: { defaults: { custom?: unknown } };
  targets?: { expr: string; refId: string }[];
  panels?: GrafanaPanel[];
}
interface GrafanaDashboard {
  panels: GrafanaPanel[];
  [k: string]: unknown;
}

/** Panel types this dashboard may use, with the @grafana/schema module of their options. */
const PANEL_MODULES: Record<string, string> = {
  timeseries: "@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen",
  stat: "@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen",
};

function panelsOf(d: GrafanaDashboard): GrafanaPanel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** The TypeScript source that type-checks `d` against Grafana's schema. */
function checkSource(d: GrafanaDashboard): string {
  const lines = [
    'import type { Dashboard, DataQuery } from "@grafana/schema";',
    ...Object.entries(PANEL_MODULES).map(
      ([type, mod]) => `import type * as ${type} from ${JSON.stringify(mod)};`,
    ),
    // Enums as the values JSON holds; everything else as declared.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: TypeScript source text, not a template
    "type Plain<T> = T extends string ? (string extends T ? string : `${T}`) : T extends number ? number",
    "  : T extends boolean ? boolean : T extends readonly (infer U)[] ? Plain<U>[]",
    "  : T extends object ? { [K in keyof T]: Plain<T[K]> } : T;",
    "interface PrometheusQuery extends Plain<DataQuery> {",
    "  expr: string; legendFormat?: string; range?: boolean; instant?: boolean;",
    '  editorMode?: "code" | "builder"; format?: "time_series" | "table" | "heatmap";',
    "  interval?: string; exemplar?: boolean; intervalFactor?: number;",
    "}",
    `export const dashboard = ${JSON.stringify(d)} satisfies Plain<Dashboard>;`,
  ];
  panelsOf(d).forEach((p, i) => {
    if (p.type === "row") return;
    lines.push(
      `export const options${i} = ${JSON.stringify(p.options ?? {})} satisfies Plain<${p.type}.Options>;`,
    );
    if (p.fieldConfig?.defaults.custom !== undefined && p.type === "timeseries")
      lines.push(
        `export const custom${i} = ${JSON.stringify(p.fieldConfig.defaults.custom)} satisfies Plain<${p.type}.FieldConfig>;`,
      );
    for (const [k, t] of (p.targets ?? []).entries())
      lines.push(`export const target${i}_${k} = ${JSON.stringify(t)} satisfies PrometheusQuery;`);
  });
  return lines.join("\n");
}

/** Type-checks the source as a file in this folder (so node_modules resolves); the errors. */
function typeCheck(source: string): string[] {
  const file = fileURLToPath(new URL("./__grafana_dashboard_check__.ts", import.meta.url));
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    name === file ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
}

test("grafana-dashboard.json: type-checks against Grafana's schema (@grafana/schema): the dashboard, each panel's options, each query", () => {
  for (const p of panelsOf(dashboard))
    if (p.type !== "row") assert.ok(p.type in PANEL_MODULES, `panel "${p.title}": type ${p.type} is checked`);
  assert.deepEqual(typeCheck(checkSource(dashboard)), []);
});

test("the schema check refuses what Grafana would: an unknown field, a wrong type, a value outside an enum", () => {
  const mutated = (change: (d: GrafanaDashboard) => void) => {
    const d = structuredClone(dashboard);
    change(d);
    return typeCheck(checkSource(d)).join("\n");
  };
  assert.match(
    mutated((d) => {
      d.titel = "typo";
    }),
    /titel"?' does not exist/,
  );
  assert.match(
    mutated((d) => {
      const p = panelsOf(d).find((x) => x.type === "timeseries")!;
      (p.options as { legend: { displayMode: string } }).legend.displayMode = "sideways";
    }),
    /"sideways"' is not assignable/,
  );
  assert.match(
    mutated((d) => {
      const p = panelsOf(d).find((x) => x.type === "stat")!;
      (p as unknown as { gridPos: { w: unknown } }).gridPos.w = "wide";
    }),
    /Type 'string' is not assignable to type 'number'/,
  );
});

test("grafana-dashboard.json: every query names a series Loom exports, with its labels", async () => {
  const series = await exportedSeries();
  const errors: string[] = [];
  let queries = 0;
  for (const p of panelsOf(dashboard)) {
    for (const t of p.targets ?? []) {
      queries++;
      errors.push(...problems(t.expr, series, `panel "${p.title}" ${t.refId}`));
    }
  }
  const variables = (dashboard.templating as { list: { query?: { query?: string } | string }[] }).list;
  let labelQueries = 0;
  for (const v of variables) {
    const q = typeof v.query === "string" ? v.query : v.query?.query;
    const m = q?.match(/^label_values\((\w+),/);
    if (m) {
      labelQueries++;
      errors.push(...problems(m[1]!, series, `variable ${q}`));
    }
  }
  assert.equal(labelQueries, 1);
  assert.ok(queries >= 20, `${queries} queries`);
  assert.deepEqual(errors, []);
});

test("grafana-dashboard.json: shows what issue 16 asks for", () => {
  const exprs = panelsOf(dashboard)
    .flatMap((p) => p.targets ?? [])
    .map((t) => t.expr)
    .join("\n");
  for (const wanted of [
    /loom_pipelines_total/,
    /loom_queue_depth/,
    /loom_queue_wait_seconds_bucket/,
    /sum by \(le, arch\) \(rate\(loom_workflow_duration_seconds_bucket/,
    /loom_controller_reconciles_total/,
    /result="error"/,
    /loom_controller_reconcile_seconds_bucket/,
    /loom_xrpc_requests_total/,
    /loom_intake_lag_seconds_bucket/,
    /loom_log_bytes_total/,
    /loom_secrets_masked_total/,
  ])
    assert.match(exprs, wanted);
  const ids = panelsOf(dashboard).map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
});

test("the metric-name check catches a misspelt metric and a label the metric does not have", async () => {
  const series = await exportedSeries();
  assert.deepEqual(problems('sum(rate(loom_pipeline_total{result="accepted"}[5m]))', series, "q"), [
    "q: loom_pipeline_total is not a series Loom exports",
  ]);
  assert.deepEqual(
    problems('sum by (le) (rate(loom_queue_wait_seconds_bucket{arch="x"}[5m]))', series, "q"),
    ["q: loom_queue_wait_seconds_bucket has no label arch"],
  );
  assert.deepEqual(problems("loom_queue_wait_seconds", series, "q"), [
    "q: loom_queue_wait_seconds is not a series Loom exports",
  ]);
  assert.throws(() => problems("sum(rate(loom_queue_depth[5m]", series, "q"), /syntax error/);
});
