/**
 * The metric names Loom really exports, from its registries built as the server and the
 * controller build them, and the metric names (and label matchers) a PromQL expression reads,
 * from Prometheus's own PromQL grammar (@prometheus-io/lezer-promql).
 */
import { parser } from "@prometheus-io/lezer-promql";
import { createControllerMetrics } from "../../src/controller/metrics.ts";
import { createMetrics } from "../../src/spindle/pipelines/metrics.ts";

export interface ExportedSeries {
  /** The registered metric this series name belongs to. */
  metric: string;
  type: string;
  labels: readonly string[];
}

/**
 * Every series name on `/metrics` → its metric: counters and gauges under their name,
 * histograms as `_bucket` (with `le`), `_sum` and `_count`.
 */
export async function exportedSeries(): Promise<Map<string, ExportedSeries>> {
  const registries = [createMetrics().registry, createControllerMetrics().registry];
  const out = new Map<string, ExportedSeries>();
  for (const registry of registries) {
    for (const metric of await registry.getMetricsAsJSON()) {
      const name = metric.name;
      const type = String(metric.type);
      // prom-client keeps a metric's label names on it (not in its JSON).
      const { labelNames } = registry.getSingleMetric(name) as unknown as { labelNames: readonly string[] };
      if (type === "histogram") {
        out.set(`${name}_bucket`, { metric: name, type, labels: [...labelNames, "le"] });
        out.set(`${name}_sum`, { metric: name, type, labels: labelNames });
        out.set(`${name}_count`, { metric: name, type, labels: labelNames });
      } else {
        out.set(name, { metric: name, type, labels: labelNames });
      }
    }
  }
  return out;
}

/** Grafana's built-in interval variables as a duration Prometheus accepts, for parsing only. */
export function withoutGrafanaVariables(expr: string): string {
  return expr.replace(/\$__(rate_interval|interval|range)\b/g, "5m");
}

export interface Selector {
  /** The metric name, or null for a selector without one (`{__name__=~...}`). */
  name: string | null;
  /** Label names matched in the braces. */
  labels: string[];
}

/** The vector selectors of a PromQL expression; throws on a syntax error, with where it is. */
export function selectors(expr: string): Selector[] {
  const tree = parser.parse(expr);
  const found: Selector[] = [];
  let error: number | null = null;
  tree.iterate({
    enter(node) {
      if (node.type.isError && error === null) error = node.from;
      if (node.name !== "VectorSelector") return;
      let name: string | null = null;
      const labels: string[] = [];
      node.node.cursor().iterate((child) => {
        if (child.name === "Identifier" && child.node.parent?.name === "VectorSelector")
          name = expr.slice(child.from, child.to);
        if (child.name === "LabelName" && child.node.parent?.name === "UnquotedLabelMatcher")
          labels.push(expr.slice(child.from, child.to));
      });
      found.push({ name, labels });
    },
  });
  if (error !== null) throw new Error(`PromQL syntax error at ${error}: ${expr}`);
  return found;
}

/**
 * What is wrong with the metric names and label matchers of `expr` against Loom's series; empty
 * when every selector names a series Loom exports and matches only its labels (or the ones
 * Prometheus adds when it scrapes).
 */
export function problems(expr: string, series: Map<string, ExportedSeries>, where: string): string[] {
  const added = new Set(["job", "instance", "namespace", "pod", "service", "container", "endpoint"]);
  const out: string[] = [];
  for (const s of selectors(withoutGrafanaVariables(expr))) {
    if (s.name === null) {
      out.push(`${where}: a selector without a metric name`);
      continue;
    }
    const known = series.get(s.name);
    if (!known) {
      out.push(`${where}: ${s.name} is not a series Loom exports`);
      continue;
    }
    for (const l of s.labels)
      if (!known.labels.includes(l) && !added.has(l)) out.push(`${where}: ${s.name} has no label ${l}`);
  }
  return out;
}
