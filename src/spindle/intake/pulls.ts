/**
 * Same-repo pull requests from Jetstream (gen2 §2.5), the handler intake calls for
 * `sh.tangled.repo.pull` and `sh.tangled.repo.pull.status` commits (exempt from the DID filter).
 *
 * - pull create → action `opened`, update → `synchronize`, delete → ignored;
 * - pull.status create → `…open` → `reopened`, `…closed` → `closed`, `…merged` → `merged`; the
 *   pull record is read from its author's PDS (`com.atproto.repo.getRecord`). Status **updates**
 *   are ignored, as upstream (it handles create only; the appview writes a new status record per
 *   change, so an update is an edit, not a transition), and so are deletes;
 * - ignored: legacy pulls without `target`, patch-based pulls (no `source`), fork-based pulls
 *   (`source.repo` another repo — those run through triggerPipeline), repos not served here;
 * - rejected (logged, nothing stored): the pull's author, or the status record's author when
 *   different, lacks push rights on the target repo; unreadable records, blobs or patches;
 * - source SHA = the latest round's `sourceRev`: its gzip `git format-patch` blob is downloaded
 *   from the author's PDS through the SSRF-guarded client (private addresses only in dev mode);
 * - then exactly what triggerPipeline does for a pullRequest trigger, but trusted: Gen2 trigger
 *   metadata of kind `pull_request` (via `triggerFromCiInput`) and the shared trusted build
 *   (pipelines/build.ts: workflows at the source SHA from the target repo's knot, compile with
 *   `when[].types`, store; an unreachable knot stores a failed pipeline, as refUpdate does).
 *
 * AT-LEAST-ONCE. Jetstream redelivers after a reconnect or restart (the cursor is saved after
 * handling), so a pipeline is not built twice for the same (pull, source SHA, action). The check
 * reads the stored pipelines (no table of its own; it survives restarts):
 *  - `opened`: any pipeline of this pull at this SHA with action opened;
 *  - `synchronize`: any pipeline of this pull at this SHA with action opened or synchronize —
 *    GUESS: a pull update that adds no round (title or body edit) has nothing new to test;
 *  - `reopened`/`closed`/`merged`: one with that action stored no earlier than the event's
 *    Jetstream time minus REDELIVERY_SKEW_MS, so a redelivered status is dropped while a later
 *    genuine close → reopen → close at the same SHA still runs. GUESS: the skew (10 min) covers
 *    clock differences between Jetstream and this host.
 * Events are handled one at a time and the pipeline is stored before the next is read, so a
 * duplicate arriving right behind the original sees its row.
 */
import type { Logger } from "pino";
import { BlobError, getBlob, sourceRevFromPatch } from "../../net/blob.ts";
import { GuardedFetchError, type GuardedFetchOptions } from "../../net/guarded-fetch.ts";
import { IdentityError, type IdentityLookup } from "../../net/identity.ts";
import { type XrpcClient, XrpcClientError } from "../../net/xrpc-client.ts";
import { GET_RECORD_NSID, PULL_NSID, PULL_STATUS_NSID } from "../../protocol/nsid.ts";
import {
  classifyPull,
  type PullRecord,
  parsePullRecord,
  parsePullStatus,
  pullAtUri,
} from "../../protocol/pull.ts";
import type { PullAction } from "../../protocol/trigger-metadata.ts";
import { WireError } from "../../protocol/zod-util.ts";
import { triggerFromCiInput } from "../../workflow/dispatch.ts";
import type { CiPipelines } from "../db/ci-pipelines.ts";
import type { Repos } from "../db/index.ts";
import type { PipelineBuilder } from "../pipelines/build.ts";
import type { Rbac, RepoRef } from "../rbac/index.ts";
import { applied, type CommitEvent, ignored, type Outcome, rejected } from "./outcome.ts";

export const PULL_COLLECTIONS = [PULL_NSID, PULL_STATUS_NSID] as const;

/** Collections handled whatever the author's DID (the filter is not consulted for them). */
export const FILTER_EXEMPT_COLLECTIONS: ReadonlySet<string> = new Set(PULL_COLLECTIONS);

/** What Jetstream hands `sh.tangled.repo.pull{,.status}` commits to (PullIntake below). */
export interface PullEventHandler {
  /**
   * One `sh.tangled.repo.pull` or `sh.tangled.repo.pull.status` commit (any operation). Should
   * answer an outcome for bad input and remote failures rather than throw; a throw is logged by
   * the consumer, which moves on.
   */
  handle(ev: CommitEvent): Promise<Outcome>;
}

export const REDELIVERY_SKEW_MS = 10 * 60 * 1000;

export interface PullIntakeOptions {
  /** Reads which pipelines were already built for a pull (the redelivery check). */
  ciPipelines: Pick<CiPipelines, "pullPipeline">;
  repos: Repos;
  rbac: Rbac;
  identity: IdentityLookup;
  /** Reads pull records from their authors' PDSes (should be SSRF-guarded). */
  xrpc: XrpcClient;
  /** For `getBlob`: `allowPrivate` only in dev mode. */
  blobFetch: GuardedFetchOptions;
  /** The spindle's hostname: the `knot` column of the pipelines it builds. */
  hostname: string;
  /** The trusted build shared with refUpdate (workflows from the target repo's knot). */
  builder: Pick<PipelineBuilder, "knownRepo" | "buildTrusted">;
  log: Logger;
}

interface PullEvent {
  /** The pull record's author and key. */
  author: string;
  rkey: string;
  record: unknown;
  action: PullAction;
  /** Who caused the event: the pull author, or the status record's author. */
  actor: string;
  timeUs: number;
}

export class PullIntake implements PullEventHandler {
  readonly #o: PullIntakeOptions;
  readonly #log: Logger;

  constructor(o: PullIntakeOptions) {
    this.#o = o;
    this.#log = o.log.child({ component: "pulls" });
  }

  async handle(ev: CommitEvent): Promise<Outcome> {
    const { collection, operation, rkey } = ev.commit;
    if (collection === PULL_NSID) {
      if (operation === "delete") return ignored("pull deletes are ignored");
      return this.#pull({
        author: ev.did,
        rkey,
        record: ev.commit.record,
        action: operation === "create" ? "opened" : "synchronize",
        actor: ev.did,
        timeUs: ev.timeUs,
      });
    }
    if (collection === PULL_STATUS_NSID) {
      if (operation !== "create")
        return ignored(`pull status ${operation}s are ignored (create only, as upstream)`);
      return this.#status(ev);
    }
    return ignored(`collection ${collection} is not a pull collection`);
  }

  async #status(ev: CommitEvent): Promise<Outcome> {
    let status: ReturnType<typeof parsePullStatus>;
    try {
      status = parsePullStatus(ev.commit.record);
    } catch (err) {
      if (err instanceof WireError) return rejected(oneLine(err.message));
      throw err;
    }
    if (status.action === null) return ignored(`unknown pull status ${JSON.stringify(status.status)}`);
    // The actor needs push rights on the pull's repo, which only the pull record (on a PDS) names:
    // an actor who can push nowhere here is turned away before any network call.
    if (!this.#o.rbac.canPushAnywhere(ev.did))
      return ignored(`${ev.did} has no push rights on any repo of this spindle`);
    let record: unknown;
    try {
      const { pds } = await this.#o.identity.lookup(status.author);
      const body = (await this.#o.xrpc.query(pds, GET_RECORD_NSID, {
        repo: status.author,
        collection: PULL_NSID,
        rkey: status.rkey,
      })) as { value?: unknown } | null;
      record = body?.value;
    } catch (err) {
      if (
        err instanceof IdentityError ||
        err instanceof XrpcClientError ||
        err instanceof GuardedFetchError
      ) {
        const why = `pull ${status.pull} could not be read: ${err.message}`;
        this.#log.warn(
          { actor: ev.did, pull: status.pull, err: err.message },
          "pull status: pull unreadable",
        );
        return rejected(why);
      }
      throw err;
    }
    return this.#pull({
      author: status.author,
      rkey: status.rkey,
      record,
      action: status.action,
      actor: ev.did,
      timeUs: ev.timeUs,
    });
  }

  async #pull(e: PullEvent): Promise<Outcome> {
    const pull = pullAtUri(e.author, e.rkey);
    const ctx = { pull, action: e.action, actor: e.actor };
    let record: PullRecord;
    try {
      record = parsePullRecord(e.record);
    } catch (err) {
      if (err instanceof WireError) return rejected(oneLine(err.message));
      throw err;
    }
    const c = classifyPull(record);
    if (!c.ci) return ignored(c.reason);
    const repo = this.#o.repos.byDid(c.repoDid);
    if (repo === null) return ignored(`target repo ${c.repoDid} is not served by this spindle`);
    const ref: RepoRef = { ownerDid: repo.owner, name: repo.name, repoDid: repo.repoDid };
    for (const who of new Set([e.author, e.actor])) {
      if (!this.#o.rbac.canPush(who, ref)) {
        const why = `${who} has no push rights on ${c.repoDid}; no pipeline for ${pull}`;
        this.#log.warn({ ...ctx, repo: c.repoDid, who }, "pull rejected: no push rights");
        return rejected(why);
      }
    }

    let sourceSha: string;
    if ("sha" in c.source) {
      sourceSha = c.source.sha;
    } else {
      try {
        sourceSha = await this.#sourceRev(e.author, c.source.blob.cid);
      } catch (err) {
        if (err instanceof IdentityError || err instanceof BlobError || err instanceof GuardedFetchError) {
          const code = (err as { code?: string }).code ?? err.name;
          this.#log.warn(
            { ...ctx, round: c.round, cid: c.source.blob.cid, code, err: err.message },
            "pull: source commit unknown (patch blob unreadable)",
          );
          return rejected(`round ${c.round} of ${pull}: ${err.message}`);
        }
        throw err;
      }
    }

    const dup = this.#duplicate(c.repoDid, sourceSha, pull, e.action, e.timeUs);
    if (dup !== null) return ignored(`already built as pipeline ${dup} (${e.action} at ${sourceSha})`);

    const known = await this.#o.builder.knownRepo(repo, c.repoDid);
    const trigger = triggerFromCiInput(
      {
        repo: c.repoDid,
        trigger: {
          $type: "sh.tangled.ci.trigger#pullRequest",
          action: e.action,
          sourceBranch: c.sourceBranch,
          targetBranch: c.targetBranch,
          sourceSha,
          pull,
        },
      },
      known,
    );
    const r = await this.#o.builder.buildTrusted({
      repo,
      trigger,
      sha: sourceSha,
      ctx: { ...ctx, what: "pull" },
    });
    if (!r.built) return ignored(r.reason);
    return applied(
      `pipeline ${r.tid} (pull_request ${e.action} at ${sourceSha}${r.failed ? ", workflows unreadable" : ""})`,
    );
  }

  async #sourceRev(author: string, cid: string): Promise<string> {
    const { pds } = await this.#o.identity.lookup(author);
    return sourceRevFromPatch(await getBlob(pds, author, cid, this.#o.blobFetch));
  }

  #duplicate(repoDid: string, sha: string, pull: string, action: PullAction, timeUs: number): string | null {
    let since = 0n;
    let also: PullAction = action;
    if (action === "synchronize") also = "opened";
    else if (action !== "opened") since = BigInt(Math.max(0, timeUs - REDELIVERY_SKEW_MS * 1000)) * 1000n;
    return this.#o.ciPipelines.pullPipeline({
      repoDid,
      sha,
      sinceNs: since,
      knot: this.#o.hostname,
      pull,
      actions: [action, also],
    });
  }
}

function oneLine(message: string): string {
  return message.replace(/\n\s*/g, "; ");
}
