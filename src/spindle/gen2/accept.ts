/**
 * Storing and queueing a pipeline the spindle built itself (gen2 §2.4, §2.7): the Gen2 twin of
 * `PipelineProcessor.acceptPipeline`, writing the same tables through the same Ledger, so the
 * scheduler, `/events`, `/logs` and the ci.* reads treat both generations alike.
 *
 * Keys: the pipeline row's `knot` column is the spindle's own hostname and `rkey` a TID from the
 * spindle's clock, so status events name `at://did:web:<spindle host>/sh.tangled.pipeline/<tid>`
 * — the same AT-URI triggerPipeline answers with (gen2 §2.7 recommendation [I]) — and
 * `/logs/<spindle host>/<tid>/<workflow>` works too. Knot pipelines keep (knot, knot TID).
 *
 * Trust: a run whose code comes from another repo (`sourceRepo` ≠ repo, a fork PR) gets no
 * secrets at all: no secret names in its plan, and a secrets scope (`untrusted:<tid>`) that no
 * `addSecret` can ever write to (scopes there are repo DIDs or `<did>/<name>`), so the scheduler
 * finds nothing to inject even after a restart.
 */
import type { Logger } from "pino";
import { PIPELINE_NSID } from "../../protocol/nsid.ts";
import { type Gen2PipelineRecord, matchTrigger } from "../../workflow/compile.ts";
import { resolveWorkflow, workflowId } from "../../workflow/resolve.ts";
import type { AdmittedWorkflow, Ledger } from "../pipelines/ledger.ts";
import type { SpindleMetrics } from "../pipelines/metrics.ts";
import type { SecretsProvider } from "../secrets/index.ts";

export interface Gen2AcceptorOptions {
  ledger: Ledger;
  secrets: SecretsProvider;
  metrics: SpindleMetrics;
  logger: Logger;
  /** The spindle's hostname: the `knot` column of every Gen2 pipeline. */
  hostname: string;
  queueSize: number;
  dev: boolean;
  nixeryHost: string;
  timeoutSeconds: number;
  onQueued: () => void;
}

export interface Gen2Accept {
  tid: string;
  record: Gen2PipelineRecord;
  /** Secrets scope key of the repo (ignored when untrusted). */
  scope: string;
  /** Code from another repo: no secrets. */
  untrusted: boolean;
  /** Clone from here instead of the repo (fork PRs: the fork). */
  cloneUrl?: string;
  /** Workflows that failed before compile (e.g. the knot was unreachable), with the reason. */
  failed?: Array<{ name: string; error: string }>;
}

export class Gen2Acceptor {
  readonly #o: Gen2AcceptorOptions;

  constructor(o: Gen2AcceptorOptions) {
    this.#o = o;
  }

  get hostname(): string {
    return this.#o.hostname;
  }

  /** Stores the pipeline, its runs and their first status events in one transaction, then queues it. */
  async accept(a: Gen2Accept): Promise<{ state: "queued" | "done" }> {
    const { ledger } = this.#o;
    const knot = this.#o.hostname;
    const rkey = a.tid;
    const secretKeys = a.untrusted ? [] : await this.#secretKeys(a.scope);
    const trigger = matchTrigger(a.record.triggerMetadata);
    const plans: AdmittedWorkflow[] = [];
    for (const f of a.failed ?? []) {
      plans.push({ name: f.name, wid: workflowId(knot, rkey, f.name), plan: null, error: f.error });
    }
    for (const wf of a.record.workflows) {
      const r = resolveWorkflow(wf, trigger, {
        pipeline: { knot, rkey },
        secretKeys,
        gen2: true,
        dev: this.#o.dev,
        nixeryHost: this.#o.nixeryHost,
        timeoutSeconds: this.#o.timeoutSeconds,
        ...(a.cloneUrl !== undefined && { cloneUrl: a.cloneUrl }),
      });
      const wid = workflowId(knot, rkey, wf.name);
      plans.push(
        r.ok ? { name: wf.name, wid, plan: r.plan } : { name: wf.name, wid, plan: null, error: r.error },
      );
    }
    if (ledger.closed) throw new Error("the spindle is shutting down");
    const scope = a.untrusted ? `untrusted:${rkey}` : a.scope;
    const admitted = ledger.admit({
      knot,
      rkey,
      recordJson: JSON.stringify(a.record),
      scope,
      workflows: plans,
      queueSize: this.#o.queueSize,
      announce: { nsid: PIPELINE_NSID },
    });
    if (!admitted) throw new Error(`pipeline ${rkey} already exists`);
    const { state, overflow } = admitted;
    this.#o.metrics.pipelines.inc({
      result: overflow ? "overflow" : "accepted",
      reason: overflow ? "queue_full" : "",
    });
    this.#o.logger.info(
      { tid: rkey, workflows: plans.length, untrusted: a.untrusted, state },
      "gen2 pipeline accepted",
    );
    if (state === "queued") this.#o.onQueued();
    return { state };
  }

  async #secretKeys(scope: string): Promise<string[]> {
    try {
      return (await this.#o.secrets.listLocked(scope)).map((s) => s.key);
    } catch (err) {
      this.#o.logger.warn({ err: (err as Error).name }, "secret keys unavailable; planning without secrets");
      return [];
    }
  }
}
