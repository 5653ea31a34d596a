/**
 * Repo AT-URI → repo name (spec §3.1): the `sh.tangled.repo` record named by the XRPC `repo`
 * parameter holds the name. The `repos` table usually knows it already (the Jetstream consumer
 * stores the record key); otherwise it is read from the owner's PDS: DID document →
 * `#atproto_pds` endpoint → `com.atproto.repo.getRecord`. Answers are cached briefly.
 */

import { guardedFetch } from "../../net/guarded-fetch.ts";
import type { IdentityLookup } from "../../net/identity.ts";
import { GET_RECORD_NSID, REPO_NSID } from "../../protocol/nsid.ts";
import type { Repos } from "../db/index.ts";
import { genericError } from "../errors.ts";

export interface RepoName {
  name: string;
  repoDid: string | null;
}

export interface RepoResolverOptions {
  repos: Repos;
  /** DID → PDS (the server's one IdentityResolver). */
  identity: IdentityLookup;
  /** Private PDS addresses allowed (dev stacks on loopback). */
  dev: boolean;
  timeoutMs?: number;
}

const CACHE_MS = 5 * 60_000;
const CACHE_MAX = 1000;

export class RepoResolver {
  readonly #repos: Repos;
  readonly #identity: IdentityLookup;
  readonly #dev: boolean;
  readonly #timeout: number;
  readonly #cache = new Map<string, { at: number; value: RepoName }>();

  constructor(opts: RepoResolverOptions) {
    this.#repos = opts.repos;
    this.#timeout = opts.timeoutMs ?? 5000;
    this.#identity = opts.identity;
    this.#dev = opts.dev;
  }

  async resolve(did: string, rkey: string): Promise<RepoName> {
    const known = this.#repos.byRkey(did, rkey);
    if (known?.name) return { name: known.name, repoDid: known.repoDid };
    const key = `${did}/${rkey}`;
    const hit = this.#cache.get(key);
    if (hit && Date.now() - hit.at < CACHE_MS) return this.#withDid(did, hit.value.name);
    const value = this.#withDid(did, await this.#fromPds(did, rkey));
    if (this.#cache.size >= CACHE_MAX) this.#cache.delete(this.#cache.keys().next().value as string);
    this.#cache.set(key, { at: Date.now(), value });
    return value;
  }

  /** The repo DID the repos table knows for (owner, name), so secrets land in the same scope runs read. */
  #withDid(did: string, name: string): RepoName {
    return { name, repoDid: this.#repos.byName(did, name)?.repoDid ?? null };
  }

  async #fromPds(did: string, rkey: string): Promise<string> {
    let pds: string;
    try {
      pds = (await this.#identity.lookup(did)).pds;
    } catch (err) {
      // A document without a PDS (or none at all) is told apart from a failed resolution.
      const noPds = (err as Error).message.startsWith(`DID document of ${did}`);
      throw genericError(noPds ? `no PDS endpoint for ${did}` : `failed to resolve ${did}`, { cause: err });
    }
    const url = new URL(`/xrpc/${GET_RECORD_NSID}`, pds);
    url.searchParams.set("repo", did);
    url.searchParams.set("collection", REPO_NSID);
    url.searchParams.set("rkey", rkey);
    let body: unknown;
    try {
      // The PDS is named by a DID document the caller chose: SSRF-guarded (private hosts in dev only).
      const res = await guardedFetch(url, {
        allowPrivate: this.#dev,
        timeoutMs: this.#timeout,
        maxBytes: 1 << 20,
        maxRedirects: 0,
      });
      if (res.status !== 200) throw new Error(`getRecord answered ${res.status}`);
      body = JSON.parse(res.body.toString("utf8"));
    } catch (err) {
      throw genericError("failed to fetch the repo record from its PDS", { cause: err });
    }
    const name = (body as { value?: { name?: unknown } } | null)?.value?.name;
    if (typeof name !== "string" || name === "") throw genericError("the repo record has no name");
    return name;
  }
}
