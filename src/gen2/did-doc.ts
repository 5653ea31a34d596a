/**
 * `/.well-known/did.json` for the spindle's `did:web` (gen2 §2.1). Upstream does not serve one
 * [I]; it lets a PDS proxy `atproto-proxy: did:web:<host>#tangled_spindle` calls here, as the
 * OCaml spindle does. A pure builder: the HTTP layer serves the result as `application/json`.
 */
import { didWebEncoded, SPINDLE_SERVICE_ID } from "../spindle/auth/audience.ts";

export const SPINDLE_SERVICE_TYPE = "TangledSpindle";

export interface DidWebDocument {
  "@context": string[];
  id: string;
  service: Array<{ id: string; type: string; serviceEndpoint: string }>;
}

// A DNS name (or IPv4) with an optional port: the only things a did:web host may be here.
const HOST =
  /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*(:[0-9]{1,5})?$/;

/**
 * @param hostname `host` or `host:port`, as configured (unencoded).
 * @param opts.dev the service endpoint is `http://` instead of `https://` (dev stacks).
 */
export function spindleDidDocument(hostname: string, opts: { dev?: boolean } = {}): DidWebDocument {
  if (!HOST.test(hostname))
    throw new Error(`not a host name with optional port: ${JSON.stringify(hostname)}`);
  const host = hostname.toLowerCase();
  return {
    "@context": ["https://www.w3.org/ns/did/v1"],
    id: didWebEncoded(host),
    // The fragment-only id is the form atproto's own service entries use (`#atproto_pds`);
    // resolvers match on it with or without the DID prefix.
    service: [
      {
        id: `#${SPINDLE_SERVICE_ID}`,
        type: SPINDLE_SERVICE_TYPE,
        serviceEndpoint: `${opts.dev === true ? "http" : "https"}://${host}`,
      },
    ],
  };
}
