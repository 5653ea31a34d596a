/**
 * Prometheus metrics of the controller. A registry per controller (tests run several in one
 * process); the spindle server may merge it into its own. Labels are closed sets.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export interface ControllerMetrics {
  registry: Registry;
  reconciles: Counter<"result">;
  queueDepth: Gauge;
  activeJobs: Gauge;
  leader: Gauge;
  orphansDeleted: Counter<"kind">;
  reconcileSeconds: Histogram;
  workflowsFinished: Counter<"phase" | "reason">;
}

export function createControllerMetrics(): ControllerMetrics {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    reconciles: new Counter({
      name: "loom_controller_reconciles_total",
      help: "SpindleSet reconciles by result (ok, requeue, conflict, error; stale: skipped, the cache trailed our own status write)",
      labelNames: ["result"],
      registers,
    }),
    queueDepth: new Gauge({
      name: "loom_controller_queue_depth",
      help: "SpindleSets waiting to be reconciled",
      registers,
    }),
    activeJobs: new Gauge({
      name: "loom_controller_active_jobs",
      help: "Unfinished workflow Jobs in the namespace (what maxConcurrentJobs counts)",
      registers,
    }),
    leader: new Gauge({
      name: "loom_controller_leader",
      help: "1 while this replica holds the Lease",
      registers,
    }),
    orphansDeleted: new Counter({
      name: "loom_controller_orphans_deleted_total",
      help: "Objects deleted by the orphan sweep",
      labelNames: ["kind"],
      registers,
    }),
    reconcileSeconds: new Histogram({
      name: "loom_controller_reconcile_seconds",
      help: "Duration of one SpindleSet reconcile, whatever its result",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    workflowsFinished: new Counter({
      name: "loom_controller_workflows_finished_total",
      help: "Workflows the controller recorded as finished, by terminal phase and reason",
      labelNames: ["phase", "reason"],
      registers,
    }),
  };
}
