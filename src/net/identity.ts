/**
 * DIDs → what the spindle needs from their documents, through ONE resolver and ONE cache per
 * process (the server builds an `IdentityResolver` once and hands it to service auth, intake,
 * pull requests and the XRPC repo lookup):
 *
 * - `resolveSigningKey`: an issuer's atproto signing key (a `did:key`) for service JWTs (spec
 *   §3.3). `forceRefresh` bypasses the cache (used once after a bad signature, so a rotated key
 *   is picked up without waiting for the cache to expire).
 * - `lookup`: the account's `#atproto_pds` endpoint (and unverified handle), where its records
 *   live (spec §1.2, pull requests).
 *
 * did:plc documents come from the configured PLC directory; did:web documents through the
 * SSRF-guarded client (did-resolver.ts): the DID is not trusted yet. Dev mode fetches did:web
 * over plain http for every host, so a local stack on 127.0.0.1 works.
 *
 * Deliberate deviation from upstream: upstream resolves the full identity and silently stops the
 * repo/collaborator handler when the handle does not verify (DNS/HTTPS handle → DID round trip).
 * Loom only needs the DID document: a DID that resolves and names an `#atproto_pds` endpoint is
 * enough. A broken handle says nothing about who owns a repo, and upstream's early stop left the
 * repo's knot unsubscribed until the next restart.
 */
import { type DidResolver, getHandle, getPds, MemoryCache } from "@atproto/identity";
import { createDidResolver } from "./did-resolver.ts";

export interface ResolvedIdentity {
  did: string;
  /** From `alsoKnownAs` (unverified), or null. */
  handle: string | null;
  /** The `#atproto_pds` service endpoint. */
  pds: string;
}

export interface IdentityLookup {
  /** Rejects with `IdentityError` when the DID cannot be resolved or has no PDS. */
  lookup(did: string): Promise<ResolvedIdentity>;
}

export interface SigningKeyResolver {
  /** The `did:key` of `did`'s atproto signing key; rejects when it cannot be resolved. */
  resolveSigningKey(did: string, forceRefresh: boolean): Promise<string>;
}

export class IdentityError extends Error {
  override readonly name = "IdentityError";
}

export interface IdentityResolverOptions {
  plcUrl: string;
  /** did:web over plain http for every host, private addresses allowed (the config's `dev`). */
  dev?: boolean;
  /** Per-fetch timeout (ms). Default 5000. */
  timeoutMs?: number;
  /** A cached document is re-fetched in the background after this long (ms). Default 10 min. */
  staleTtlMs?: number;
  /** …and not used at all after this long (ms). Default 1 h. */
  maxTtlMs?: number;
}

export class IdentityResolver implements IdentityLookup, SigningKeyResolver {
  readonly #resolver: DidResolver;

  constructor(opts: IdentityResolverOptions) {
    this.#resolver = createDidResolver({
      plcUrl: opts.plcUrl,
      dev: opts.dev ?? false,
      timeoutMs: opts.timeoutMs ?? 5000,
      cache: new MemoryCache(opts.staleTtlMs ?? 10 * 60_000, opts.maxTtlMs ?? 60 * 60_000),
    });
  }

  resolveSigningKey(did: string, forceRefresh: boolean): Promise<string> {
    return this.#resolver.resolveAtprotoKey(did, forceRefresh);
  }

  async lookup(did: string): Promise<ResolvedIdentity> {
    let doc: Awaited<ReturnType<DidResolver["resolve"]>>;
    try {
      doc = await this.#resolver.resolve(did);
    } catch (err) {
      throw new IdentityError(`cannot resolve ${did}: ${(err as Error).message}`, { cause: err });
    }
    if (!doc) throw new IdentityError(`DID document of ${did} not found`);
    const pds = getPds(doc);
    if (!pds) throw new IdentityError(`DID document of ${did} names no #atproto_pds endpoint`);
    return { did, handle: getHandle(doc) ?? null, pds };
  }
}
