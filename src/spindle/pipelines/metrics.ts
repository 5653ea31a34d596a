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
  knotRowsSkipped: Counter<"reason">;
}

export function createMetrics(): SpindleMetrics {
  const registry = new Registry();
  const registers = [registry];
  return {
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
    knotRowsSkipped: new Counter({
      name: "loom_knot_rows_skipped_total",
      help: "Knot event-stream rows that could not be taken and were stepped over, by reason (oversize, undecodable, handler_failed)",
      labelNames: ["reason"],
      registers,
    }),
  };
}
