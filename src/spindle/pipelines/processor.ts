/**
 * What the spindle does with a knot's `sh.tangled.pipeline` event (spec §1.6):
 *
 *   validate ─▶ knot matches the stream ─▶ repo chose this spindle ─▶ Admission (admission.ts:
 *   resolve, store, queue — the same path as the pipelines the spindle builds itself).
 */
import { isValidRecordKey } from "@atproto/syntax";
import type { Logger } from "pino";
import type { Repos } from "../db/index.ts";
import { repoScopeKey } from "../rbac/index.ts";
import type { Admission } from "./admission.ts";
import type { PipelineIntake } from "./intake-contract.ts";
import type { SpindleMetrics } from "./metrics.ts";
import { checkPipelineRecord, MAX_RECORD_BYTES } from "./record.ts";

export interface PipelineProcessorOptions {
  admission: Admission;
  repos: Repos;
  metrics: SpindleMetrics;
  logger: Logger;
}

const KNOT_RE = /^[a-zA-Z0-9.-]{1,253}(:[0-9]{1,5})?$/;

export class PipelineProcessor implements PipelineIntake {
  readonly #o: PipelineProcessorOptions;
  readonly #log: Logger;

  constructor(opts: PipelineProcessorOptions) {
    this.#o = opts;
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
    const repo = this.#o.repos.byName(trigger.repo.did, trigger.repo.repo);
    if (!repo || repo.knot !== knot) {
      return this.#ignore(
        ctx,
        "unknown_repo",
        "the repo has not chosen this spindle (no repos row for knot, owner and name)",
      );
    }
    const scope = repoScopeKey({ ownerDid: repo.owner, name: repo.name, repoDid: repo.repoDid });
    const admitted = await this.#o.admission.admit({
      knot,
      rkey,
      recordJson,
      trigger,
      workflows,
      scope,
      ctx,
    });
    if (admitted === null) this.#duplicate(ctx);
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
