/**
 * Kubernetes Events on the SpindleSet, so `kubectl describe ss` tells a run's story: workflows
 * waiting (for capacity, a Secret), and every workflow that ended (Warning for failures); the
 * routine Scheduled and Running steps are in the status only (reconcile.ts). Best effort: an
 * Event that cannot be written is logged at debug level and forgotten. Notes carry the status
 * message, which never holds a secret value (statuses are built from names and pod states).
 */
import { randomBytes } from "node:crypto";
import { EventsV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { API_VERSION, SPINDLESET } from "../api/v1alpha1/group.ts";
import type { SpindleSet } from "../api/v1alpha1/spindleset.ts";

export const REPORTING_CONTROLLER = "loom.tangled.sh/spindleset-controller";

export interface EventInput {
  type: "Normal" | "Warning";
  reason: string;
  action: string;
  note: string;
}

export class EventRecorder {
  readonly #api: EventsV1Api;
  readonly #instance: string;
  readonly #log: Logger;

  constructor(kc: KubeConfig, instance: string, log: Logger) {
    this.#api = kc.makeApiClient(EventsV1Api);
    this.#instance = instance.slice(0, 128);
    this.#log = log;
  }

  record(ss: SpindleSet, event: EventInput): void {
    const namespace = ss.metadata.namespace!;
    const time = new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
    const body = {
      metadata: { name: `${ss.metadata.name}.${randomBytes(8).toString("hex")}`, namespace },
      eventTime: time as never,
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: this.#instance,
      action: event.action,
      reason: event.reason,
      type: event.type,
      note: event.note.slice(0, 1024),
      regarding: {
        apiVersion: API_VERSION,
        kind: SPINDLESET.kind,
        name: ss.metadata.name!,
        namespace,
        uid: ss.metadata.uid!,
      },
    };
    this.#api.createNamespacedEvent({ namespace, body }).catch((err: unknown) => {
      this.#log.debug({ spindleset: ss.metadata.name, err: String(err) }, "event not recorded");
    });
  }
}
