/**
 * DID → where the account's records live. The Jetstream handlers need a repo owner's PDS to read
 * `sh.tangled.repo` and `sh.tangled.repo.collaborator` records (§1.2).
 *
 * Deliberate deviation from upstream: upstream resolves the full identity and silently stops the
 * repo/collaborator handler when the handle does not verify (DNS/HTTPS handle → DID round trip).
 * Loom only needs the DID document: a DID that resolves and names an `#atproto_pds` endpoint is
 * enough. A broken handle says nothing about who owns a repo, and upstream's early stop left the
 * repo's knot unsubscribed until the next restart.
 */
import { type DidResolver, getHandle, getPds, MemoryCache } from "@atproto/identity";
import { createDidResolver } from "../../net/did-resolver.ts";

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

export class IdentityError extends Error {
  override readonly name = "IdentityError";
}

export interface DidDocumentLookupOptions {
  plcUrl: string;
  /** did:web over plain http for every host (the config's `dev`). */
  dev?: boolean;
  timeoutMs?: number;
}

export function createDidDocumentLookup(opts: DidDocumentLookupOptions): IdentityLookup {
  const timeout = opts.timeoutMs ?? 5000;
  const resolver = createDidResolver({
    plcUrl: opts.plcUrl,
    dev: opts.dev ?? false,
    timeoutMs: timeout,
    cache: new MemoryCache(10 * 60_000, 60 * 60_000),
  });
  return {
    async lookup(did) {
      let doc: Awaited<ReturnType<DidResolver["resolve"]>>;
      try {
        doc = await resolver.resolve(did);
      } catch (err) {
        throw new IdentityError(`cannot resolve ${did}: ${(err as Error).message}`, { cause: err });
      }
      if (!doc) throw new IdentityError(`DID document of ${did} not found`);
      const pds = getPds(doc);
      if (!pds) throw new IdentityError(`DID document of ${did} names no #atproto_pds endpoint`);
      return { did, handle: getHandle(doc) ?? null, pds };
    },
  };
}
