/**
 * DID documents through `@atproto/identity`, with did:web documents fetched by the SSRF-guarded
 * client. A did:web names whatever host its author likes — a service token's issuer (before any
 * signature is checked), a collaborator, a pull's author — and the library fetches it with the
 * global `fetch`, so without the guard anyone could make the spindle send requests into its own
 * network (cloud metadata, the kube-apiserver, an internal PDS…).
 *
 * Dev mode (`SPINDLE_SERVER_DEV`): did:web over plain http for every host, private addresses
 * allowed, so a local stack on 127.0.0.1 works (the library alone uses http only for
 * `localhost`). did:plc documents come from the configured PLC directory: the operator's choice,
 * not a record's, so that request is not guarded.
 */
import { type DidCache, DidResolver, DidWebResolver } from "@atproto/identity";
import { guardedFetch } from "./guarded-fetch.ts";

/** A DID document is small; anything bigger is refused. */
const MAX_DOCUMENT_BYTES = 256 << 10;

export class GuardedDidWebResolver extends DidWebResolver {
  readonly #dev: boolean;

  constructor(timeout: number, dev: boolean) {
    super(timeout);
    this.#dev = dev;
  }

  override async resolveNoCheck(did: string): Promise<unknown> {
    const parts = did.split(":").slice(2).map(decodeURIComponent);
    // did:web with a path: the library refuses those (atproto does not use them), without I/O.
    if (parts.length !== 1) return super.resolveNoCheck(did);
    const url = `${this.#dev ? "http" : "https"}://${parts[0]}/.well-known/did.json`;
    const res = await guardedFetch(url, {
      allowPrivate: this.#dev,
      timeoutMs: this.timeout,
      maxBytes: MAX_DOCUMENT_BYTES,
      maxRedirects: 0,
      headers: { accept: "application/did+ld+json,application/json" },
    });
    // Positively not found (as the library: null), versus a network error (thrown).
    if (res.status < 200 || res.status >= 300) return null;
    return JSON.parse(res.body.toString("utf8"));
  }
}

export interface DidResolverOptions {
  plcUrl: string;
  dev: boolean;
  /** Per-fetch timeout (ms). */
  timeoutMs: number;
  cache?: DidCache;
}

/** A DidResolver whose did:web method is the guarded one. */
export function createDidResolver(opts: DidResolverOptions): DidResolver {
  const resolver = new DidResolver({
    plcUrl: opts.plcUrl,
    timeout: opts.timeoutMs,
    ...(opts.cache !== undefined && { didCache: opts.cache }),
  });
  resolver.methods.set("web", new GuardedDidWebResolver(opts.timeoutMs, opts.dev));
  return resolver;
}
