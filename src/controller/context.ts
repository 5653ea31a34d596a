/** What a reconcile reads and writes through: caches, the API, the clock, the limits. */
import type { CoreV1Event, V1Job, V1Node, V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { SpindleSet } from "../api/v1alpha1/spindleset.ts";
import type { ClusterApi } from "./api.ts";
import type { NodeLabels } from "./build/profile.ts";
import type { Capacity } from "./capacity.ts";
import type { ControllerConfig } from "./config.ts";
import type { EventRecorder } from "./events.ts";
import type { ControllerMetrics } from "./metrics.ts";
import type { WrittenVersions } from "./written.ts";

export interface Cache<T> {
  get(key: string): T | undefined;
  list(): T[];
  /** The objects under one index value (pods: their run's name; events: the Job's uid). */
  byIndex(value: string): T[];
}

export interface ReconcileContext {
  config: ControllerConfig;
  log: Logger;
  now(): Date;
  api: ClusterApi;
  spindleSets: Cache<SpindleSet>;
  jobs: Cache<V1Job>;
  pods: Cache<V1Pod>;
  /** The namespace's FailedCreate events (why a Job's pod cannot be created). */
  failedCreates: Cache<CoreV1Event>;
  /** Undefined: the node check of resource profiles is skipped. */
  nodes: Cache<V1Node> | undefined;
  capacity: Capacity;
  /** Kubernetes Events on the SpindleSet; absent = none. */
  events?: EventRecorder;
  /** Counts workflows finished (by phase and reason) once their status is written; absent = none. */
  metrics?: Pick<ControllerMetrics, "workflowsFinished">;
  /** Records the resourceVersion of each status write until the cache has it; absent = none. */
  written?: Pick<WrittenVersions, "writing" | "wrote">;
  /** How long a run may wait for its Secret (the engine creates it right after the run). */
  secretWaitMs: number;
  /** How long a waiting workflow sleeps before it asks for capacity again. */
  capacityRetryMs: number;
}

export function nodeLabels(nodes: Cache<V1Node> | undefined): NodeLabels[] | undefined {
  return nodes?.list().map((n) => ({ name: n.metadata?.name ?? "", labels: n.metadata?.labels ?? {} }));
}
