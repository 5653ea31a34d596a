/**
 * Resolves an issuer DID to its atproto signing key (a `did:key`), through `@atproto/identity`:
 * did:plc via the configured PLC directory, did:web via `https://<host>/.well-known/did.json`.
 * Documents are cached in memory; `forceRefresh` bypasses the cache (used once after a bad
 * signature, so a rotated key is picked up without waiting for the cache to expire).
 *
 * Dev mode (`SPINDLE_SERVER_DEV`) fetches did:web documents over plain http for every host, so a
 * local stack on 127.0.0.1 works; `@atproto/identity` alone does that only for `localhost`.
 */
import { DidResolver, DidWebResolver, MemoryCache } from "@atproto/identity";

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

class HttpDidWebResolver extends DidWebResolver {
  override async resolveNoCheck(did: string): Promise<unknown> {
    const host = did.split(":").slice(2).join(":").split(":").map(decodeURIComponent);
    if (host.length !== 1) return super.resolveNoCheck(did); // paths: let the library refuse
    const res = await fetch(`http://${host[0]}/.well-known/did.json`, {
      redirect: "error",
      headers: { accept: "application/did+ld+json,application/json" },
      signal: AbortSignal.timeout(this.timeout),
    });
    return res.ok ? res.json() : null;
  }
}

export function createIdentityResolver(opts: IdentityResolverOptions): SigningKeyResolver {
  const timeout = opts.timeoutMs ?? 3000;
  const resolver = new DidResolver({
    plcUrl: opts.plcUrl,
    timeout,
    didCache: new MemoryCache(opts.staleTtlMs ?? 60 * 60_000, opts.maxTtlMs ?? 24 * 60 * 60_000),
  });
  if (opts.dev) resolver.methods.set("web", new HttpDidWebResolver(timeout));
  return {
    resolveSigningKey: (did, forceRefresh) => resolver.resolveAtprotoKey(did, forceRefresh),
  };
}
