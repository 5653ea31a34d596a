/**
 * What a knot's event stream carries, by NSID (the table `createIntake` hands the knot
 * consumers; nothing replaces an entry later):
 *
 * - `sh.tangled.git.refUpdate` → a push pipeline the spindle builds itself: repo served here and
 *   this knot its own → dedupe (push-dedupe.ts) → `decidePush` (skip-ci, deleted refs, …) →
 *   the trusted build (pipelines/build.ts: workflows from the knot, compile, admit);
 * - `sh.tangled.repo.collaboratorUpdate` → push grants (only from the repo's own knot);
 * - `sh.tangled.pipeline` (Generation 1, compiled by the knot) → dropped when the refUpdate of
 *   the same push was handled, else the pipeline processor.
 */
import type { Logger } from "pino";
import {
  COLLABORATOR_UPDATE_NSID,
  type KnotEnvelope,
  PIPELINE_NSID,
  parseCollaboratorUpdate,
  parseRefUpdate,
  REF_UPDATE_NSID,
  WireError,
} from "../../protocol/index.ts";
import { decidePush, type KnownRepo } from "../../workflow/push.ts";
import type { Repos } from "../db/index.ts";
import { type PipelineBuilder, repoRef } from "../pipelines/build.ts";
import type { PipelineIntake } from "../pipelines/intake-contract.ts";
import type { SpindleMetrics } from "../pipelines/metrics.ts";
import type { Rbac } from "../rbac/index.ts";
import type { KnotEventHandler } from "./knot-consumer.ts";
import type { PushDedupe, PushKey } from "./push-dedupe.ts";

export interface RefUpdateIntakeOptions {
  repos: Repos;
  rbac: Rbac;
  builder: PipelineBuilder;
  dedupe: PushDedupe;
  /** Where Generation 1 pipelines go when they are not a duplicate. */
  pipelines: PipelineIntake;
  metrics: SpindleMetrics;
  log: Logger;
}

export class RefUpdateIntake {
  readonly #o: RefUpdateIntakeOptions;
  readonly #log: Logger;

  constructor(o: RefUpdateIntakeOptions) {
    this.#o = o;
    this.#log = o.log;
  }

  /** The knot consumers' handler table. */
  handlers(): Record<string, KnotEventHandler> {
    return {
      [REF_UPDATE_NSID]: (knot, env) => this.onRefUpdate(knot, env),
      [COLLABORATOR_UPDATE_NSID]: async (knot, env) => this.onCollaboratorUpdate(knot, env),
      [PIPELINE_NSID]: (knot, env) => this.onPipeline(knot, env),
    };
  }

  /** Resolves once the pipeline is stored (or deliberately not built). */
  async onRefUpdate(knot: string, env: KnotEnvelope): Promise<void> {
    const ctx = { knot, rkey: env.rkey, created: env.created };
    if (isOlderRefUpdate(env.event)) {
      // Late-2025 knots: the Gen1 sh.tangled.pipeline event that follows runs the push.
      this.#log.debug(
        {
          ...ctx,
          reason: "older refUpdate shape (repoDid/repoName, no repo); the Gen1 pipeline event runs it",
        },
        "refUpdate ignored",
      );
      return;
    }
    let ev: ReturnType<typeof parseRefUpdate>;
    try {
      ev = parseRefUpdate(env.event);
    } catch (err) {
      if (err instanceof WireError) {
        this.#log.warn({ ...ctx, err: err.message }, "refUpdate dropped: invalid");
        return;
      }
      throw err;
    }
    const repo = this.#o.repos.byDid(ev.repo);
    if (repo === null) {
      this.#log.info({ ...ctx, repo: ev.repo }, "refUpdate ignored: repo not served by this spindle");
      return;
    }
    if (repo.knot !== knot) {
      this.#log.warn(
        { ...ctx, repo: ev.repo, repoKnot: repo.knot },
        "refUpdate ignored: not from the repo's knot",
      );
      return;
    }
    if (this.#o.dedupe.refUpdateSeen({ repoDid: ev.repo, sha: ev.newSha, ref: ev.ref })) {
      this.#o.metrics.pipelines.inc({ result: "duplicate", reason: "" });
      this.#log.info(
        { ...ctx, sha: ev.newSha, ref: ev.ref },
        "refUpdate skipped: this push already has a pipeline",
      );
      return;
    }
    const known: KnownRepo = {
      knot,
      ownerDid: repo.owner,
      repoDid: ev.repo,
      rkey: repo.rkey ?? "",
      defaultBranch: "",
    };
    const first = decidePush(ev, known);
    if (!first.build) {
      this.#log.info({ ...ctx, reason: first.reason }, "refUpdate: nothing to build");
      return;
    }
    known.defaultBranch = await this.#o.builder.defaultBranch(knot, ev.repo);
    const d = decidePush(ev, known);
    if (!d.build) return;
    await this.#o.builder.buildTrusted({
      repo,
      trigger: d.trigger,
      sha: d.sha,
      ...(d.changedFiles !== undefined && { changedFiles: d.changedFiles }),
      ctx: { ...ctx, what: "refUpdate" },
    });
  }

  /** Only from the repo's own knot; add → collaborator grants, remove → revoke. */
  onCollaboratorUpdate(knot: string, env: KnotEnvelope): void {
    let ev: ReturnType<typeof parseCollaboratorUpdate>;
    try {
      ev = parseCollaboratorUpdate(env.event);
    } catch (err) {
      if (err instanceof WireError) {
        this.#log.warn({ knot, rkey: env.rkey, err: err.message }, "collaboratorUpdate dropped: invalid");
        return;
      }
      throw err;
    }
    const repo = this.#o.repos.byDid(ev.repo);
    if (repo === null || repo.knot !== knot) {
      this.#log.info({ knot, repo: ev.repo }, "collaboratorUpdate ignored: unknown repo or not its knot");
      return;
    }
    if (ev.op === "add") this.#o.rbac.grantCollaborator(ev.subject, repoRef(repo));
    else this.#o.rbac.revokeCollaborator(ev.subject, repoRef(repo));
    this.#log.info({ knot, repo: ev.repo, subject: ev.subject, op: ev.op }, "collaborator updated");
  }

  /** The Gen1 event of a push: dropped when its refUpdate was already handled, else processed. */
  async onPipeline(knot: string, env: KnotEnvelope): Promise<void> {
    const key = this.#gen1PushKey(env.event);
    if (key !== null && this.#o.dedupe.gen1Duplicate(key)) {
      this.#o.metrics.pipelines.inc({ result: "duplicate", reason: "gen2" });
      this.#log.info(
        { knot, rkey: env.rkey, sha: key.sha, ref: key.ref },
        "Gen1 pipeline dropped: the push was handled as a Gen2 refUpdate",
      );
      return;
    }
    await this.#o.pipelines.acceptPipeline(knot, env.rkey, env.event);
  }

  #gen1PushKey(event: unknown): PushKey | null {
    const t = (event as { triggerMetadata?: Record<string, unknown> } | null)?.triggerMetadata;
    if (!t || typeof t !== "object" || t.kind !== "push") return null;
    const push = t.push as Record<string, unknown> | undefined;
    const repo = t.repo as Record<string, unknown> | undefined;
    if (!push || !repo || typeof push.newSha !== "string" || typeof push.ref !== "string") return null;
    let repoDid = typeof repo.repoDid === "string" && repo.repoDid !== "" ? repo.repoDid : null;
    if (repoDid === null && typeof repo.did === "string" && typeof repo.repo === "string") {
      repoDid = this.#o.repos.byName(repo.did, repo.repo)?.repoDid ?? null;
    }
    if (repoDid === null) return null;
    return { repoDid, sha: push.newSha, ref: push.ref };
  }
}

/**
 * The `sh.tangled.git.refUpdate` of late-2025 knots: the repo named by `repoDid` (the owner's DID)
 * and `repoName`, with no `repo`. Not Gen2's event; those knots also send the Gen1 pipeline.
 */
function isOlderRefUpdate(event: unknown): boolean {
  if (typeof event !== "object" || event === null) return false;
  const e = event as Record<string, unknown>;
  return e.repo === undefined && typeof e.repoDid === "string" && typeof e.repoName === "string";
}
