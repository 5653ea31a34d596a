/**
 * Admission: the one path by which a pipeline becomes durable work, whoever compiled it — a
 * knot's Generation 1 `sh.tangled.pipeline` event (processor.ts validates it first) or a
 * pipeline the spindle built itself from a refUpdate, a pull request or triggerPipeline
 * (build.ts). Per workflow: resolve into a RunPlan (unknown engine / bad workflow → `failed`,
 * else `pending`) → one transaction: pipeline row (UNIQUE (knot, rkey) = the dedupe), run rows,
 * status events → publish → wake the queue.
 *
 * Differences from upstream, on purpose:
 * - the pipeline is in SQLite before `admit` resolves, so a restart loses nothing;
 * - a full queue fails the workflows with a clear error instead of dropping them silently;
 * - a workflow that cannot be resolved fails alone (upstream aborts the rest of the pipeline
 *   and leaves earlier workflows `pending` forever).
 *
 * Trust: a run whose code comes from another repo (`untrusted`: a fork pull request) gets no
 * secrets at all: no secret names in its plan, and a secrets scope (`untrusted:<rkey>`) that no
 * `addSecret` can ever write to (scopes there are repo DIDs or `<did>/<name>`), so the scheduler
 * finds nothing to inject even after a restart.
 */
import type { Logger } from "pino";
import type { RunTracer } from "../../telemetry/index.ts";
import { resolveWorkflow, workflowId } from "../../workflow/resolve.ts";
import type { PipelineWorkflow, TriggerMetadata } from "../../workflow/types.ts";
import { batchedWrite } from "../db/write-batch.ts";
import type { SecretsProvider } from "../secrets/index.ts";
import type { AdmittedWorkflow, Ledger } from "./ledger.ts";
import type { SpindleMetrics } from "./metrics.ts";

/**
 * Most steps a workflow may have. Upstream's own workflows have a handful; each step is a row of
 * the plan the spindle stores, sends to the runner and reports on, so a 10,000-step file fails
 * at admission with this number in its error instead of becoming a 10,000-step run.
 */
export const MAX_STEPS = 1000;

export interface ResolveSettings {
  dev: boolean;
  /** The engine runs steps on the host (local engine): dev mode keeps a `localhost` knot as is. */
  stepsOnHost?: boolean;
  nixeryHost: string;
  timeoutSeconds: number;
}

export interface AdmissionOptions {
  ledger: Ledger;
  secrets: SecretsProvider;
  metrics: SpindleMetrics;
  logger: Logger;
  queueSize: number;
  resolve: ResolveSettings;
  /** Called after a pipeline was queued. */
  onQueued: () => void;
  /** Traces (src/telemetry); undefined when tracing is off. */
  tracer?: RunTracer | undefined;
}

export interface AdmitRequest {
  /** The pipeline's key: (knot, knot TID) for knot pipelines, (spindle hostname, TID) for built ones. */
  knot: string;
  rkey: string;
  /** The record as stored (and served by the ci.* reads). */
  recordJson: string;
  /** What the workflows resolve against. */
  trigger: TriggerMetadata;
  workflows: readonly PipelineWorkflow[];
  /** Secrets scope key of the repo (replaced by `untrusted:<rkey>` when untrusted). */
  scope: string;
  /** Code from another repo: no secrets. */
  untrusted?: boolean;
  /** Resolve with the Generation 2 rules (clone URL, environment). */
  gen2?: boolean;
  /** Clone from here instead of the repo (fork pull requests: the fork). */
  cloneUrl?: string;
  /** Workflows that failed before compile (e.g. the knot was unreachable), with the reason. */
  failed?: ReadonlyArray<{ name: string; error: string }>;
  /**
   * The record itself was refused (this reason, a metric label): every workflow is in `failed`.
   * Counted as `refused` instead of `accepted`.
   */
  refused?: string;
  /** Also publish the pipeline record itself on `/events` under this NSID. */
  announce?: { nsid: string };
  /** Log fields. */
  ctx: Record<string, unknown>;
}

export class Admission {
  readonly #o: AdmissionOptions;
  readonly #log: Logger;

  constructor(o: AdmissionOptions) {
    this.#o = o;
    this.#log = o.logger;
  }

  get ledger(): Ledger {
    return this.#o.ledger;
  }

  /**
   * Stores the pipeline, its runs and their first status events in one transaction, then
   * queues it. Null when (knot, rkey) was already stored: nothing was written.
   */
  admit(a: AdmitRequest): Promise<{ state: "queued" | "done"; overflow: boolean } | null> {
    return this.#o.tracer
      ? this.#o.tracer.traceAdmission(a.knot, a.rkey, () => this.#admit(a))
      : this.#admit(a);
  }

  async #admit(a: AdmitRequest): Promise<{ state: "queued" | "done"; overflow: boolean } | null> {
    const { ledger } = this.#o;
    if (ledger.store.pipelineExists(a.knot, a.rkey)) return null;
    const untrusted = a.untrusted === true;
    const secretKeys = untrusted ? [] : await this.#secretKeys(a.scope, a.ctx);
    const plans = this.#plan(a, secretKeys);
    const rows = {
      knot: a.knot,
      rkey: a.rkey,
      recordJson: a.recordJson,
      scope: untrusted ? `untrusted:${a.rkey}` : a.scope,
      workflows: plans,
      queueSize: this.#o.queueSize,
      ...(a.announce !== undefined && { announce: a.announce }),
    };
    // Inside a knot consumer's batch this joins its one transaction (db/write-batch.ts).
    const admitted = await batchedWrite(
      ledger.db,
      () => {
        if (ledger.closed) throw new Error("the spindle is shutting down");
        return ledger.admitRows(rows);
      },
      () => ledger.store.recount(),
    );
    if (!admitted) return null;
    ledger.publish(admitted.events, admitted.transitions);
    const { state, overflow, transitions } = admitted;
    this.#o.metrics.pipelines.inc(
      a.refused !== undefined
        ? { result: "refused", reason: a.refused }
        : { result: overflow ? "overflow" : "accepted", reason: overflow ? "queue_full" : "" },
    );
    const failed = transitions.filter((t) => t.status === "failed").length;
    if (a.refused !== undefined) {
      this.#log.warn(
        { ...a.ctx, reason: a.refused, workflows: plans.length },
        "pipeline refused; recorded as failed",
      );
    } else if (overflow) {
      this.#log.warn({ ...a.ctx, queueSize: this.#o.queueSize }, "pipeline refused: queue full");
    } else {
      this.#log.info({ ...a.ctx, workflows: plans.length, failed, untrusted, state }, "pipeline accepted");
    }
    if (state === "queued") this.#o.onQueued();
    return { state, overflow };
  }

  #plan(a: AdmitRequest, secretKeys: string[]): AdmittedWorkflow[] {
    const { knot, rkey } = a;
    const out: AdmittedWorkflow[] = [];
    for (const f of a.failed ?? []) {
      out.push({ name: f.name, wid: workflowId(knot, rkey, f.name), plan: null, error: f.error });
    }
    const names = new Set<string>();
    const wids = new Set<string>();
    for (const [i, wf] of a.workflows.entries()) {
      if (names.has(wf.name)) {
        this.#log.warn({ knot, rkey, workflow: wf.name }, "duplicate workflow name in pipeline skipped");
        continue;
      }
      names.add(wf.name);
      const wid = workflowId(knot, rkey, wf.name);
      if (wids.has(wid) || this.#o.ledger.store.widExists(wid)) {
        out.push({
          name: wf.name,
          wid: `${wid}~${i}`,
          plan: null,
          error: `workflow id ${wid} is already used by another workflow`,
        });
        continue;
      }
      wids.add(wid);
      const r = resolveWorkflow(wf, a.trigger, {
        pipeline: { knot, rkey },
        secretKeys,
        ...(a.gen2 === true && { gen2: true }),
        dev: this.#o.resolve.dev,
        stepsOnHost: this.#o.resolve.stepsOnHost,
        nixeryHost: this.#o.resolve.nixeryHost,
        timeoutSeconds: this.#o.resolve.timeoutSeconds,
        ...(a.cloneUrl !== undefined && { cloneUrl: a.cloneUrl }),
      });
      const steps = r.ok ? r.plan.steps.filter((s) => s.kind === "user").length : 0;
      out.push(
        !r.ok
          ? { name: wf.name, wid, plan: null, error: r.error }
          : steps > MAX_STEPS
            ? {
                name: wf.name,
                wid,
                plan: null,
                error: `the workflow has ${steps} steps; the limit is ${MAX_STEPS}`,
              }
            : { name: wf.name, wid, plan: r.plan },
      );
    }
    return out;
  }

  async #secretKeys(scope: string, ctx: object): Promise<string[]> {
    try {
      return (await this.#o.secrets.listLocked(scope)).map((s) => s.key);
    } catch (err) {
      // Upstream swallows secret fetch errors too: the run proceeds without secrets.
      this.#log.warn(
        { ...ctx, err: (err as Error).name },
        "secret keys unavailable; planning without secrets",
      );
      return [];
    }
  }
}
