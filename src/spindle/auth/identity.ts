/**
 * Resolves an issuer DID to its atproto signing key (a `did:key`), through `@atproto/identity`:
 * did:plc via the configured PLC directory, did:web via `https://<host>/.well-known/did.json`
 * through the SSRF-guarded client (src/net/did-resolver.ts: the issuer is not trusted yet).
 * Documents are cached in memory; `forceRefresh` bypasses the cache (used once after a bad
 * signature, so a rotated key is picked up without waiting for the cache to expire).
 *
 * Dev mode (`SPINDLE_SERVER_DEV`) fetches did:web documents over plain http for every host, so a
 * local stack on 127.0.0.1 works; `@atproto/identity` alone does that only for `localhost`.
 */
import { MemoryCache } from "@atproto/identity";
import { createDidResolver } from "../../net/did-resolver.ts";

export interface SigningKeyResolver {
  /** The `did:key` of `did`'s atproto signing key; rejects when it cannot be resolved. */
  resolveSigningKey(did: string, forceRefresh: boolean): Promise<string>;
}

export interface IdentityResolverOptions {
  plcUrl: string;
  dev?: boolean;
  /** Per-fetch timeout (ms). */
  timeoutMs?: number;
  /** A cached document is re-fetched in the background after this long (ms). */
  staleTtlMs?: number;
  /** …and not used at all after this long (ms). */
  maxTtlMs?: number;
}

export function createIdentityResolver(opts: IdentityResolverOptions): SigningKeyResolver {
  const timeout = opts.timeoutMs ?? 3000;
  const resolver = createDidResolver({
    plcUrl: opts.plcUrl,
    dev: opts.dev ?? false,
    timeoutMs: timeout,
    cache: new MemoryCache(opts.staleTtlMs ?? 60 * 60_000, opts.maxTtlMs ?? 24 * 60 * 60_000),
  });
  return {
    resolveSigningKey: (did, forceRefresh) => resolver.resolveAtprotoKey(did, forceRefresh),
  };
}
