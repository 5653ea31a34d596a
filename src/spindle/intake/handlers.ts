/**
 * What the spindle does with the three Jetstream collections (spec §1.2, Gen1). Each handler
 * returns an outcome with a specific reason instead of throwing for bad input; storage errors
 * do throw (the consumer logs them and moves on, as upstream does).
 *
 * Deliberate deviations from upstream, each marked `DEVIATION` below:
 * 1. Identity: only the DID document is needed (see identity.ts); no stop on an invalid handle,
 *    and the repo's knot is followed even when the owner's PDS cannot be reached.
 * 2. Collaborators listed when a repo record arrives are granted only if their record's `repo`
 *    names *this* repo (upstream grants every collaborator record the owner has, for any repo).
 *    `listRecords` is paged (upstream reads one page of 50).
 * 3. A collaborator record is honoured only when written by the repo's owner (the at-uri's DID);
 *    upstream checks the owner's `repo:invite` but not who wrote the record, so any member could
 *    add collaborators to another member's repo. Gen2 (§2.2) has the same rule as Loom.
 */

import { isValidDid } from "@atproto/syntax";
import type { Logger } from "pino";
import type { IdentityLookup } from "../../net/identity.ts";
import type { XrpcClient } from "../../net/xrpc-client.ts";
import {
  COLLABORATOR_NSID,
  GET_RECORD_NSID,
  LIST_RECORDS_NSID,
  MEMBER_NSID,
  PULL_NSID,
  PULL_STATUS_NSID,
  REPO_NSID,
} from "../../protocol/nsid.ts";
import {
  type DatabaseSync,
  type KnownDids,
  type Repos,
  type SpindleMembers,
  transaction,
} from "../db/index.ts";
import type { KnotRegistry } from "../pipelines/intake-contract.ts";
import { parseRepoAtUri, type Rbac, type RepoRef, repoObjectKeys } from "../rbac/index.ts";
import type { DidFilter } from "./did-filter.ts";
import { isValidKnotHost } from "./knot-host.ts";
import { applied, type CommitEvent, ignored, type Outcome, rejected } from "./outcome.ts";
import type { PullEventHandler } from "./pulls.ts";

export const WANTED_COLLECTIONS = [MEMBER_NSID, REPO_NSID, COLLABORATOR_NSID] as const;

export interface JetstreamHandlersOptions {
  db: DatabaseSync;
  /** `config.server.hostname`: compared with `instance` and `spindle`. */
  hostname: string;
  rbac: Rbac;
  members: SpindleMembers;
  knownDids: KnownDids;
  repos: Repos;
  filter: DidFilter;
  identity: IdentityLookup;
  xrpc: XrpcClient;
  knots: KnotRegistry;
  log: Logger;
  /** Pages of 50 collaborator records read per repo event; default 10. */
  maxCollaboratorPages?: number;
  /** Gen2 pull requests (gen2 §2.5); without it pull events are ignored. */
  pulls?: PullEventHandler;
}

const str = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);

export class JetstreamHandlers {
  readonly #o: JetstreamHandlersOptions;

  constructor(opts: JetstreamHandlersOptions) {
    this.#o = opts;
  }

  /** Dispatches one commit event (past the DID filter, or of a collection exempt from it). */
  async handle(ev: CommitEvent): Promise<Outcome> {
    const { collection, operation } = ev.commit;
    switch (collection) {
      case MEMBER_NSID:
        return operation === "delete" ? this.#memberDelete(ev) : this.#memberPut(ev);
      case REPO_NSID:
        return operation === "delete" ? ignored("repo deletes are ignored (§1.2)") : this.#repoPut(ev);
      case COLLABORATOR_NSID:
        return operation === "delete"
          ? ignored("collaborator deletes are ignored (§1.2)")
          : this.#collaboratorPut(ev);
      case PULL_NSID:
      case PULL_STATUS_NSID:
        return this.#o.pulls ? this.#o.pulls.handle(ev) : ignored("pull requests are not handled here");
      default:
        return ignored(`collection ${collection} is not handled`);
    }
  }

  // --- sh.tangled.spindle.member ---------------------------------------------------------------

  #memberPut(ev: CommitEvent): Outcome {
    const rec = ev.commit.record ?? {};
    const subject = str(rec.subject);
    const instance = str(rec.instance);
    if (subject === null || !isValidDid(subject)) return rejected("member record: subject is not a DID");
    if (instance === null) return rejected("member record: instance is missing");
    if (instance !== this.#o.hostname)
      return ignored(`member record for another spindle instance ${JSON.stringify(instance)}`);
    if (!this.#o.rbac.canInvite(ev.did))
      return rejected(`author ${ev.did} may not invite members (only the spindle owner can)`);
    transaction(this.#o.db, () => {
      this.#o.members.add({ did: ev.did, rkey: ev.commit.rkey, instance, subject });
      this.#o.rbac.addMember(subject);
      this.#o.knownDids.add(subject);
    });
    this.#o.filter.add(subject);
    return applied(`member ${subject} added`);
  }

  #memberDelete(ev: CommitEvent): Outcome {
    const removed = transaction(this.#o.db, () => {
      const m = this.#o.members.removeByRkey(ev.did, ev.commit.rkey);
      if (m === null) return null;
      this.#o.rbac.removeMember(m.subject);
      this.#o.knownDids.remove(m.subject);
      return m;
    });
    if (removed === null) return ignored(`no member record ${ev.did}/${ev.commit.rkey}`);
    this.#o.filter.remove(removed.subject);
    return applied(`member ${removed.subject} removed`);
  }

  // --- sh.tangled.repo ---------------------------------------------------------------------------

  async #repoPut(ev: CommitEvent): Promise<Outcome> {
    const rec = ev.commit.record ?? {};
    const spindle = str(rec.spindle);
    if (spindle === null) return ignored("repo record names no spindle");
    if (spindle !== this.#o.hostname)
      return ignored(`repo record for another spindle ${JSON.stringify(spindle)}`);
    const name = str(rec.name);
    const knot = str(rec.knot);
    if (name === null) return rejected("repo record: name is missing");
    if (knot === null || !isValidKnotHost(knot))
      return rejected(`repo record: knot ${JSON.stringify(rec.knot)} is not a host name`);
    const repoDid = str(rec.repoDid);
    const ref: RepoRef = { ownerDid: ev.did, name, ...(repoDid && isValidDid(repoDid) ? { repoDid } : {}) };
    try {
      repoObjectKeys(ref);
    } catch (err) {
      return rejected(`repo record: ${(err as Error).message}`);
    }
    try {
      transaction(this.#o.db, () => {
        this.#o.repos.upsert({
          knot,
          owner: ev.did,
          name,
          rkey: ev.commit.rkey,
          repoDid: ref.repoDid ?? null,
        });
        this.#o.rbac.grantRepoOwner(ev.did, ref);
      });
    } catch (err) {
      if (/another owner/.test((err as Error).message))
        return rejected(`repo record: ${(err as Error).message}`);
      throw err;
    }
    // DEVIATION 1: follow the knot before any network call, so an unreachable PDS cannot stop it.
    this.#o.knots.addKnot(knot);
    const granted = await this.#grantListedCollaborators(ev, ref);
    return applied(`repo ${ev.did}/${name} on ${knot} registered; ${granted}`);
  }

  async #grantListedCollaborators(ev: CommitEvent, ref: RepoRef): Promise<string> {
    let pds: string;
    try {
      pds = (await this.#o.identity.lookup(ev.did)).pds;
    } catch (err) {
      this.#o.log.warn(
        { did: ev.did, err: (err as Error).message },
        "repo owner identity unresolved; collaborators not read",
      );
      return "collaborators not read (owner identity unresolved)";
    }
    const thisRepo = `at://${ev.did}/${REPO_NSID}/${ev.commit.rkey}`;
    const subjects = new Set<string>();
    let cursor: string | null = null;
    const maxPages = this.#o.maxCollaboratorPages ?? 10;
    try {
      for (let page = 0; page < maxPages; page++) {
        const params: Record<string, string | number> = {
          repo: ev.did,
          collection: COLLABORATOR_NSID,
          limit: 50,
        };
        if (cursor !== null) params.cursor = cursor;
        const body = (await this.#o.xrpc.query(pds, LIST_RECORDS_NSID, params)) as {
          records?: unknown;
          cursor?: unknown;
        } | null;
        const records = Array.isArray(body?.records) ? body.records : [];
        for (const r of records) {
          const value = (r as { value?: Record<string, unknown> } | null)?.value;
          const subject = str(value?.subject);
          const repo = str(value?.repo);
          // DEVIATION 2: only records about this repo (by at-uri, or by repo DID for Gen2 records).
          const aboutThisRepo = repo === thisRepo || (ref.repoDid != null && repo === ref.repoDid);
          if (subject !== null && isValidDid(subject) && aboutThisRepo) subjects.add(subject);
        }
        cursor = str(body?.cursor);
        if (cursor === null || records.length === 0) break;
      }
    } catch (err) {
      this.#o.log.warn(
        { did: ev.did, pds, err: (err as Error).message },
        "listing collaborator records failed",
      );
      if (subjects.size === 0) return "collaborators not read (PDS error)";
    }
    transaction(this.#o.db, () => {
      for (const s of subjects) this.#o.rbac.grantCollaborator(s, ref);
    });
    return `${subjects.size} collaborator(s) granted`;
  }

  // --- sh.tangled.repo.collaborator --------------------------------------------------------------

  async #collaboratorPut(ev: CommitEvent): Promise<Outcome> {
    const rec = ev.commit.record ?? {};
    const subject = str(rec.subject);
    const repoUri = str(rec.repo);
    if (subject === null || !isValidDid(subject))
      return rejected("collaborator record: subject is not a DID");
    if (repoUri === null) return rejected("collaborator record: repo is missing");
    let uri: { did: string; rkey: string };
    try {
      uri = parseRepoAtUri(repoUri);
    } catch {
      return rejected(`collaborator record: repo ${JSON.stringify(repoUri)} is not a sh.tangled.repo at-uri`);
    }
    // DEVIATION 3: only the repo's owner may add collaborators to it.
    if (uri.did !== ev.did)
      return rejected(`collaborator record by ${ev.did} for a repo owned by ${uri.did}`);
    try {
      await this.#o.identity.lookup(subject);
    } catch (err) {
      return rejected(`collaborator subject unresolved: ${(err as Error).message}`);
    }
    let name: string | null;
    try {
      const owner = await this.#o.identity.lookup(uri.did);
      const body = (await this.#o.xrpc.query(owner.pds, GET_RECORD_NSID, {
        repo: uri.did,
        collection: REPO_NSID,
        rkey: uri.rkey,
      })) as { value?: Record<string, unknown> } | null;
      name = str(body?.value?.name);
    } catch (err) {
      return rejected(`repo record ${repoUri} could not be read: ${(err as Error).message}`);
    }
    if (name === null) return rejected(`repo record ${repoUri} has no name`);
    // The repo DID (if any) comes from our own row, which `Repos.upsert` vetted for ownership;
    // a DID claimed by the remote record alone could name somebody else's repo.
    const repoDid = this.#o.repos.byName(uri.did, name)?.repoDid ?? null;
    const ref: RepoRef = { ownerDid: uri.did, name, ...(repoDid ? { repoDid } : {}) };
    try {
      if (!this.#o.rbac.hasRepoPermission(uri.did, ref, "repo:invite"))
        return rejected(`repo ${uri.did}/${name} is not on this spindle (owner lacks repo:invite)`);
    } catch (err) {
      return rejected(`repo record ${repoUri}: ${(err as Error).message}`);
    }
    this.#o.rbac.grantCollaborator(subject, ref);
    return applied(`collaborator ${subject} granted on ${uri.did}/${name}`);
  }
}
