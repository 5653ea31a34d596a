/**
 * What the spindle does with a `sh.tangled.pipeline` event (spec §1.6), made durable:
 *
 *   validate ─▶ knot matches the stream ─▶ repo chose this spindle ─▶ per workflow: resolve
 *   (unknown engine / bad workflow → `failed`, else `pending`) ─▶ one transaction: pipeline row
 *   (UNIQUE (knot, rkey) = the dedupe), run rows, status events ─▶ publish ─▶ wake the queue.
 *
 * Differences from upstream, on purpose:
 * - the pipeline is in SQLite before `acceptPipeline` resolves, so a restart loses nothing;
 * - a full queue fails the workflows with a clear error instead of dropping them silently;
 * - a workflow that cannot be resolved fails alone (upstream aborts the rest of the pipeline
 *   and leaves earlier workflows `pending` forever).
 */
import type { StatementSync } from "node:sqlite";
import { isValidRecordKey } from "@atproto/syntax";
import type { Logger } from "pino";
import { resolveWorkflow, workflowId } from "../../workflow/resolve.ts";
import type { PipelineWorkflow, TriggerMetadata } from "../../workflow/types.ts";
import { repoScopeKey } from "../rbac/index.ts";
import type { SecretsProvider } from "../secrets/index.ts";
import type { PipelineIntake } from "./intake-contract.ts";
import type { AdmittedWorkflow, Ledger } from "./ledger.ts";
import type { SpindleMetrics } from "./metrics.ts";
import { checkPipelineRecord, MAX_RECORD_BYTES } from "./record.ts";

export interface ResolveSettings {
  dev: boolean;
  /** The engine runs steps on the host (local engine): dev mode keeps a `localhost` knot as is. */
  stepsOnHost?: boolean;
  nixeryHost: string;
  timeoutSeconds: number;
}

export interface PipelineProcessorOptions {
  ledger: Ledger;
  secrets: SecretsProvider;
  metrics: SpindleMetrics;
  logger: Logger;
  queueSize: number;
  resolve: ResolveSettings;
  /** Called after a pipeline was queued. */
  onQueued: () => void;
}

const KNOT_RE = /^[a-zA-Z0-9.-]{1,253}(:[0-9]{1,5})?$/;

export class PipelineProcessor implements PipelineIntake {
  readonly #o: PipelineProcessorOptions;
  readonly #repoByName: StatementSync;
  readonly #log: Logger;

  constructor(opts: PipelineProcessorOptions) {
    this.#o = opts;
    this.#repoByName = opts.ledger.db.prepare(
      "SELECT knot, owner, name, repo_did FROM repos WHERE owner = ? AND name = ?",
    );
    this.#log = opts.logger;
  }

  async acceptPipeline(knot: string, rkey: string, record: unknown): Promise<void> {
    if (typeof knot !== "string" || !KNOT_RE.test(knot)) {
      return this.#ignore(
        { knot: String(knot).slice(0, 300) },
        "invalid_knot",
        "the knot is not a host name",
      );
    }
    if (typeof rkey !== "string" || rkey.length > 64 || !isValidRecordKey(rkey)) {
      return this.#ignore(
        { knot },
        "invalid_rkey",
        `rkey ${JSON.stringify(String(rkey).slice(0, 80))} is not a record key`,
      );
    }
    const ctx = { knot, rkey };
    let recordJson: string;
    try {
      recordJson = JSON.stringify(record) ?? "null";
    } catch {
      return this.#ignore(ctx, "not_json", "the record cannot be serialised as JSON");
    }
    if (Buffer.byteLength(recordJson, "utf8") > MAX_RECORD_BYTES) {
      return this.#ignore(ctx, "too_large", `the record is larger than ${MAX_RECORD_BYTES} bytes`);
    }
    const check = checkPipelineRecord(record);
    if (!check.ok) return this.#ignore(ctx, check.reason, check.detail);
    const { triggerMetadata: trigger, workflows } = check.record;
    if (trigger.repo.knot !== knot) {
      return this.#ignore(
        ctx,
        "knot_mismatch",
        `triggerMetadata.repo.knot ${JSON.stringify(trigger.repo.knot)} is not the stream's knot`,
      );
    }
    const row = this.#repoByName.get(trigger.repo.did, trigger.repo.repo);
    const repo = row
      ? {
          knot: String(row.knot),
          owner: String(row.owner),
          name: String(row.name),
          repoDid: row.repo_did === null ? null : String(row.repo_did),
        }
      : null;
    if (!repo || repo.knot !== knot) {
      return this.#ignore(
        ctx,
        "unknown_repo",
        "the repo has not chosen this spindle (no repos row for knot, owner and name)",
      );
    }
    const { ledger } = this.#o;
    if (ledger.store.pipelineExists(knot, rkey)) return this.#duplicate(ctx);

    const scope = repoScopeKey({ ownerDid: repo.owner, name: repo.name, repoDid: repo.repoDid });
    const secretKeys = await this.#secretKeys(scope, ctx);
    const plans = this.#plan(knot, rkey, workflows, trigger, secretKeys);
    if (ledger.closed) throw new Error("the spindle is shutting down");

    const admitted = ledger.admit({
      knot,
      rkey,
      recordJson,
      scope,
      workflows: plans,
      queueSize: this.#o.queueSize,
    });
    if (!admitted) return this.#duplicate(ctx);
    const { state, overflow, transitions } = admitted;
    const result = overflow ? "overflow" : "accepted";
    this.#o.metrics.pipelines.inc({ result, reason: overflow ? "queue_full" : "" });
    const failed = transitions.filter((t) => t.status === "failed").length;
    if (overflow) {
      this.#log.warn({ ...ctx, queueSize: this.#o.queueSize }, "pipeline refused: queue full");
    } else {
      this.#log.info({ ...ctx, workflows: plans.length, failed }, "pipeline accepted");
    }
    if (state === "queued") this.#o.onQueued();
  }

  #plan(
    knot: string,
    rkey: string,
    workflows: readonly PipelineWorkflow[],
    trigger: TriggerMetadata,
    secretKeys: string[],
  ): AdmittedWorkflow[] {
    const out: AdmittedWorkflow[] = [];
    const names = new Set<string>();
    const wids = new Set<string>();
    for (const [i, wf] of workflows.entries()) {
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
      const r = resolveWorkflow(wf, trigger, {
        pipeline: { knot, rkey },
        secretKeys,
        dev: this.#o.resolve.dev,
        stepsOnHost: this.#o.resolve.stepsOnHost,
        nixeryHost: this.#o.resolve.nixeryHost,
        timeoutSeconds: this.#o.resolve.timeoutSeconds,
      });
      out.push(
        r.ok ? { name: wf.name, wid, plan: r.plan } : { name: wf.name, wid, plan: null, error: r.error },
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

  #ignore(ctx: object, reason: string, detail: string): void {
    this.#o.metrics.pipelines.inc({ result: "ignored", reason });
    this.#log.warn({ ...ctx, reason, detail }, "pipeline ignored");
  }

  #duplicate(ctx: object): void {
    this.#o.metrics.pipelines.inc({ result: "duplicate", reason: "" });
    this.#log.debug(ctx, "pipeline already accepted; replay ignored");
  }
}
