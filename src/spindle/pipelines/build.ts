/**
 * Pipelines the spindle builds itself (Generation 2, gen2 §2.4–§2.7): a
 * refUpdate, a same-repo pull request and `sh.tangled.ci.triggerPipeline` all end here.
 *
 * Keys: the pipeline row's `knot` column is the spindle's own hostname and `rkey` a TID from the
 * spindle's clock, so status events name `at://did:web:<spindle host>/sh.tangled.pipeline/<tid>`
 * — the same AT-URI triggerPipeline answers with — and `/logs/<spindle host>/<tid>/<workflow>`
 * works too. Knot pipelines keep (knot, knot TID).
 */
import type { Logger } from "pino";
import { getDefaultBranch } from "../../net/knot/default-branch.ts";
import { KnotError, WorkflowsUnreadableError } from "../../net/knot/errors.ts";
import type { FetchedWorkflows, WorkflowFetcher } from "../../net/knot/workflow-fetcher.ts";
import { PIPELINE_NSID } from "../../protocol/nsid.ts";
import type { TidGenerator } from "../../protocol/tid.ts";
import type { Gen2TriggerMetadata } from "../../protocol/trigger-metadata.ts";
import {
  compileGen2,
  formatDiagnostic,
  type Gen2PipelineRecord,
  matchTrigger,
} from "../../workflow/compile.ts";
import type { KnownRepo } from "../../workflow/push.ts";
import type { RepoRecord } from "../db/index.ts";
import { type RepoRef, repoScopeKey } from "../rbac/index.ts";
import type { Admission } from "./admission.ts";

/** GUESS: the name of the one workflow a pipeline gets when its workflows could not be read. */
export const FETCH_FAILED_WORKFLOW = "fetch-workflows";

export interface PipelineBuilderOptions {
  admission: Admission;
  /** Reads `.tangled/workflows` at a commit from a knot (one, built by the server). */
  fetcher: WorkflowFetcher;
  tids: TidGenerator;
  /** The spindle's hostname: the `knot` column of every pipeline it builds. */
  hostname: string;
  /** Plain http to knots, private addresses allowed (the config's `dev`). */
  dev: boolean;
  /** Knot fetch retries before a pipeline is recorded failed (delays in ms). Default [1000, 3000]. */
  fetchRetryDelaysMs?: readonly number[];
  logger: Logger;
}

/** One trusted build request (refUpdate, same-repo pull). */
export interface TrustedBuild {
  repo: RepoRecord;
  trigger: Gen2TriggerMetadata;
  /** The commit whose `.tangled/workflows` to read and run. */
  sha: string;
  changedFiles?: string[];
  /** Log fields; `what` prefixes the log messages. */
  ctx: Record<string, unknown> & { what: string };
}

export type TrustedBuildResult =
  | { built: true; tid: string; failed: boolean }
  | { built: false; reason: string };

/** A compiled pipeline to store under a fresh TID. */
export interface BuiltPipeline {
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

export class PipelineBuilder {
  readonly fetcher: WorkflowFetcher;
  readonly #o: PipelineBuilderOptions;
  readonly #log: Logger;

  constructor(o: PipelineBuilderOptions) {
    this.#o = o;
    this.fetcher = o.fetcher;
    this.#log = o.logger;
  }

  get hostname(): string {
    return this.#o.hostname;
  }

  get dev(): boolean {
    return this.#o.dev;
  }

  nextTid(): string {
    return this.#o.tids.next();
  }

  /** Stores and queues a compiled pipeline (Admission, with the Generation 2 rules). */
  async admit(p: BuiltPipeline): Promise<{ state: "queued" | "done" }> {
    const admitted = await this.#o.admission.admit({
      knot: this.#o.hostname,
      rkey: p.tid,
      recordJson: JSON.stringify(p.record),
      trigger: matchTrigger(p.record.triggerMetadata),
      workflows: p.record.workflows,
      scope: p.scope,
      untrusted: p.untrusted,
      gen2: true,
      ...(p.cloneUrl !== undefined && { cloneUrl: p.cloneUrl }),
      ...(p.failed !== undefined && { failed: p.failed }),
      announce: { nsid: PIPELINE_NSID },
      ctx: { tid: p.tid },
    });
    if (admitted === null) throw new Error(`pipeline ${p.tid} already exists`);
    return { state: admitted.state };
  }

  /**
   * The trusted (same-repo) path shared by refUpdate and Jetstream pulls: `.tangled/workflows`
   * at `sha` from the repo's knot (with retries) → compile for `trigger` → store and queue.
   * Workflows the knot would not give are recorded as a failed pipeline (one workflow named
   * FETCH_FAILED_WORKFLOW) so the commit shows why nothing ran (GUESS: upstream only logs).
   * No matching workflow → nothing stored.
   */
  async buildTrusted(b: TrustedBuild): Promise<TrustedBuildResult> {
    const { repo, trigger, sha, ctx } = b;
    const repoDid = trigger.repo.repoDid;
    const tid = this.nextTid();
    const scope = repoScopeKey(repoRef(repo));
    let fetched: FetchedWorkflows;
    try {
      fetched = await this.#fetchWithRetry(repo.knot, repoDid, sha);
    } catch (err) {
      if (!(err instanceof KnotError)) throw err;
      const error = `could not read .tangled/workflows at ${sha} from ${repo.knot}: ${err.message}`;
      this.#log.warn({ ...ctx, sha, code: err.code, err: err.message }, `${ctx.what}: workflows unreadable`);
      await this.admit({
        tid,
        record: { $type: "", triggerMetadata: trigger, workflows: [] },
        scope,
        untrusted: false,
        failed: [{ name: FETCH_FAILED_WORKFLOW, error }],
      });
      return { built: true, tid, failed: true };
    }
    const { record, diagnostics } = compileGen2(fetched.files, trigger, {
      ...(b.changedFiles !== undefined && { changedFiles: b.changedFiles }),
    });
    if (diagnostics.length > 0) {
      // Typos (with the key they likely misspell), workflows without steps, dropped files.
      const found = diagnostics.map(formatDiagnostic);
      this.#log.warn({ ...ctx, sha, diagnostics: found }, `${ctx.what}: workflow diagnostics`);
    }
    if (record === undefined) {
      this.#log.info({ ...ctx, sha, diagnostics: diagnostics.length }, `${ctx.what}: no workflow matches`);
      return { built: false, reason: `no workflow matches at ${sha}` };
    }
    await this.admit({ tid, record, scope, untrusted: false });
    return { built: true, tid, failed: false };
  }

  /** What a trigger says about the repo, the default branch asked of its knot. */
  async knownRepo(repo: RepoRecord, repoDid: string): Promise<KnownRepo> {
    return {
      knot: repo.knot,
      ownerDid: repo.owner,
      repoDid,
      rkey: repo.rkey ?? "",
      defaultBranch: await this.defaultBranch(repo.knot, repoDid),
    };
  }

  /** The repo's default branch, or "" when its knot does not say. */
  async defaultBranch(knot: string, repoDid: string): Promise<string> {
    try {
      return (await getDefaultBranch(knot, repoDid, { dev: this.#o.dev })).name;
    } catch (err) {
      // Only `TANGLED_REPO_DEFAULT_BRANCH` and `when` on it depend on this; "" means unknown.
      this.#log.warn({ knot, repoDid, err: (err as Error).message }, "default branch unknown");
      return "";
    }
  }

  /** Workflows at `sha`, once (an XRPC caller is waiting); WorkflowsUnreadableError if not. */
  async fetchNow(knot: string, repoDid: string, sha: string): Promise<FetchedWorkflows> {
    try {
      return await this.fetcher.fetchWorkflows({ knot, repoDid, sha, dev: this.#o.dev });
    } catch (err) {
      if (err instanceof KnotError) throw new WorkflowsUnreadableError(sha, err);
      throw err;
    }
  }

  async #fetchWithRetry(knot: string, repoDid: string, sha: string): Promise<FetchedWorkflows> {
    const delays = this.#o.fetchRetryDelaysMs ?? [1000, 3000];
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.fetcher.fetchWorkflows({ knot, repoDid, sha, dev: this.#o.dev });
      } catch (err) {
        const delay = delays[attempt];
        if (!(err instanceof KnotError) || !err.transient || delay === undefined) throw err;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}

export function repoRef(repo: RepoRecord): RepoRef {
  return { ownerDid: repo.owner, name: repo.name, repoDid: repo.repoDid };
}
