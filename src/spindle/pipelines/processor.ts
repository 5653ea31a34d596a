/**
 * What the spindle does with a knot's `sh.tangled.pipeline` event (spec §1.6):
 *
 *   validate ─▶ knot matches the stream ─▶ repo chose this spindle ─▶ Admission (admission.ts:
 *   resolve, store, queue — the same path as the pipelines the spindle builds itself).
 *
 * A record that cannot be taken (too large, invalid workflows) but whose trigger names a repo
 * of this spindle on this knot is recorded as a pipeline whose workflows failed with the reason
 * (`refused`), so the repo's owner sees why nothing ran; one that cannot be attributed is
 * ignored (logged, counted). Either way the knot's cursor moves past it.
 */
import { isValidRecordKey } from "@atproto/syntax";
import type { Logger } from "pino";
import { PIPELINE_NSID } from "../../protocol/nsid.ts";
import { parseTriggerMetadata } from "../../workflow/index.ts";
import { workflowId } from "../../workflow/resolve.ts";
import type { TriggerMetadata } from "../../workflow/types.ts";
import type { Repos } from "../db/index.ts";
import { repoScopeKey } from "../rbac/index.ts";
import type { Admission } from "./admission.ts";
import type { PipelineIntake } from "./intake-contract.ts";
import type { SpindleMetrics } from "./metrics.ts";
import { checkPipelineRecord, MAX_RECORD_BYTES, MAX_WORKFLOWS } from "./record.ts";

/**
 * The workflow names a refused record gives (usable ones, one per workflow id), or `pipeline`.
 */
function workflowNames(knot: string, rkey: string, workflows: unknown): string[] {
  const names = new Map<string, string>();
  if (Array.isArray(workflows)) {
    for (const w of workflows) {
      const name = (w as { name?: unknown } | null)?.name;
      if (typeof name !== "string" || name.length === 0 || name.length > 256) continue;
      const wid = workflowId(knot, rkey, name);
      if (!names.has(wid)) names.set(wid, name);
      if (names.size === MAX_WORKFLOWS) break;
    }
  }
  return names.size > 0 ? [...names.values()] : ["pipeline"];
}

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
      return this.#refuse(ctx, record, "too_large", `the record is larger than ${MAX_RECORD_BYTES} bytes`);
    }
    const check = checkPipelineRecord(record);
    if (!check.ok) {
      if (check.reason === "invalid_workflows") return this.#refuse(ctx, record, check.reason, check.detail);
      return this.#ignore(ctx, check.reason, check.detail);
    }
    const { triggerMetadata: trigger, workflows } = check.record;
    const target = this.#target(ctx, trigger);
    if (!target.ok) return this.#ignore(ctx, target.reason, target.detail);
    const admitted = await this.#o.admission.admit({
      knot,
      rkey,
      recordJson,
      trigger,
      workflows,
      scope: target.scope,
      ctx,
    });
    if (admitted === null) this.#duplicate(ctx);
  }

  /** The repo a trigger names, when it is a repo of this spindle on the stream's knot. */
  #target(
    ctx: { knot: string },
    trigger: TriggerMetadata,
  ): { ok: true; scope: string } | { ok: false; reason: string; detail: string } {
    if (trigger.repo.knot !== ctx.knot) {
      return {
        ok: false,
        reason: "knot_mismatch",
        detail: `triggerMetadata.repo.knot ${JSON.stringify(trigger.repo.knot)} is not the stream's knot`,
      };
    }
    const repo = this.#o.repos.byName(trigger.repo.did, trigger.repo.repo);
    if (!repo || repo.knot !== ctx.knot) {
      return {
        ok: false,
        reason: "unknown_repo",
        detail: "the repo has not chosen this spindle (no repos row for knot, owner and name)",
      };
    }
    return {
      ok: true,
      scope: repoScopeKey({ ownerDid: repo.owner, name: repo.name, repoDid: repo.repoDid }),
    };
  }

  /**
   * A record that cannot be run: stored as a pipeline whose workflows (by the names the record
   * gives, else one named `pipeline`) failed with `detail`, when its trigger names a repo of
   * this spindle; else ignored. The stored record keeps the trigger only.
   */
  async #refuse(ctx: { knot: string; rkey: string }, record: unknown, reason: string, detail: string) {
    const rec = (record ?? {}) as { triggerMetadata?: unknown; workflows?: unknown };
    const parsed = rec.triggerMetadata == null ? null : parseTriggerMetadata(rec.triggerMetadata);
    if (parsed === null || !parsed.ok) return this.#ignore(ctx, reason, detail);
    const trigger = parsed.trigger as TriggerMetadata;
    const target = this.#target(ctx, trigger);
    if (!target.ok) return this.#ignore(ctx, reason, detail);
    const error = `the pipeline record was refused: ${detail}`;
    const admitted = await this.#o.admission.admit({
      knot: ctx.knot,
      rkey: ctx.rkey,
      recordJson: JSON.stringify({
        $type: PIPELINE_NSID,
        triggerMetadata: rec.triggerMetadata,
        workflows: [],
      }),
      trigger,
      workflows: [],
      failed: workflowNames(ctx.knot, ctx.rkey, rec.workflows).map((name) => ({ name, error })),
      scope: target.scope,
      refused: reason,
      ctx: { ...ctx, detail },
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
