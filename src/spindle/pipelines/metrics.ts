/**
 * Prometheus metrics of the spindle (served on `/metrics`). One registry per server, so tests
 * can run several servers in one process. Labels are closed sets (reasons, statuses) — never a
 * DID, repo, workflow name or anything a secret could hide in.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export interface SpindleMetrics {
  registry: Registry;
  pipelines: Counter<"result" | "reason">;
  statuses: Counter<"status">;
  queueDepth: Gauge;
  runningWorkflows: Gauge;
  eventSubscribers: Gauge;
  logSubscribers: Gauge;
  slowClients: Counter<"stream">;
  logFilesRemoved: Counter;
  xrpc: Counter<"method" | "status">;
  xrpcSeconds: Histogram<"method">;
  queueWait: Histogram;
  workflowSeconds: Histogram<"arch" | "status">;
  logBytes: Counter;
  secretsMasked: Counter;
  intakeConnections: Gauge<"source">;
  intakeLag: Histogram<"source">;
  knotRowsSkipped: Counter<"reason">;
}

/** The intake's share of the metrics (src/spindle/intake takes only these). */
export type IntakeMetrics = Pick<SpindleMetrics, "intakeConnections" | "intakeLag">;

export function createMetrics(): SpindleMetrics {
  const registry = new Registry();
  const registers = [registry];
  const metrics: SpindleMetrics = {
    registry,
    pipelines: new Counter({
      name: "loom_pipelines_total",
      help: "Pipelines received (knot sh.tangled.pipeline events and Gen2 builds) by result (accepted, duplicate, ignored, overflow) and reason",
      labelNames: ["result", "reason"],
      registers,
    }),
    statuses: new Counter({
      name: "loom_workflow_status_total",
      help: "Workflow status events emitted on /events",
      labelNames: ["status"],
      registers,
    }),
    queueDepth: new Gauge({ name: "loom_queue_depth", help: "Pipelines waiting for a worker", registers }),
    runningWorkflows: new Gauge({
      name: "loom_running_workflows",
      help: "Workflows currently running on the engine",
      registers,
    }),
    eventSubscribers: new Gauge({
      name: "loom_event_subscribers",
      help: "Open /events connections",
      registers,
    }),
    logSubscribers: new Gauge({
      name: "loom_log_subscribers",
      help: "Open log streams (/logs and sh.tangled.ci.subscribePipelineLogs)",
      registers,
    }),
    slowClients: new Counter({
      name: "loom_slow_clients_total",
      help: "Stream connections closed because the client did not keep up",
      labelNames: ["stream"],
      registers,
    }),
    logFilesRemoved: new Counter({
      name: "loom_log_files_removed_total",
      help: "Workflow log files removed by the log retention (SPINDLE_SERVER_LOG_RETENTION)",
      registers,
    }),
    xrpc: new Counter({
      name: "loom_xrpc_requests_total",
      help: "XRPC requests by method and HTTP status",
      labelNames: ["method", "status"],
      registers,
    }),
    xrpcSeconds: new Histogram({
      name: "loom_xrpc_request_seconds",
      help: "XRPC request duration",
      labelNames: ["method"],
      buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10],
      registers,
    }),
    queueWait: new Histogram({
      name: "loom_queue_wait_seconds",
      help: "Time a pipeline waited in the queue, from admission until a worker claimed it",
      buckets: [0.1, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600],
      registers,
    }),
    workflowSeconds: new Histogram({
      name: "loom_workflow_duration_seconds",
      help: "Workflow run time on the engine, from start to final status, by architecture and final status",
      labelNames: ["arch", "status"],
      buckets: [5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 4 * 3600],
      registers,
    }),
    logBytes: new Counter({
      name: "loom_log_bytes_total",
      help: "Bytes of workflow log lines (masked LogLine JSON) relayed into the log files",
      registers,
    }),
    secretsMasked: new Counter({
      name: "loom_secrets_masked_total",
      help: "Secret occurrences masked in workflow output (by the runner, plus the relay's second pass)",
      registers,
    }),
    intakeConnections: new Gauge({
      name: "loom_intake_connections",
      help: "Open intake connections by source (jetstream, knot)",
      labelNames: ["source"],
      registers,
    }),
    intakeLag: new Histogram({
      name: "loom_intake_lag_seconds",
      help: "How old a Jetstream event was (its time_us) when the spindle processed it",
      labelNames: ["source"],
      buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 1800, 3600 * 6],
      registers,
    }),
    knotRowsSkipped: new Counter({
      name: "loom_knot_rows_skipped_total",
      help: "Knot event-stream rows that could not be taken and were stepped over, by reason (oversize, undecodable, handler_failed)",
      labelNames: ["reason"],
      registers,
    }),
  };
  // Both sources exist from the start, so "never connected" reads 0 (the intake alert), not absent.
  for (const source of ["jetstream", "knot"]) metrics.intakeConnections.set({ source }, 0);
  return metrics;
}
