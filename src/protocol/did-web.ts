/**
 * did:web for this spindle: the encoding, the DID document it serves at
 * `/.well-known/did.json` (gen2 §2.1), and the audiences a service JWT
 * may name.
 *
 * The `aud` values a service JWT may carry to be meant for this spindle.
 *
 * Gen1 spindles compare with `did:web:<hostname>` as written (§1.1), while the appview encodes
 * the `:` of a port as `%3A` (§3.3, gen2 §2.1), and PDS service proxying addresses
 * `did:web:<host>#tangled_spindle` (gen2 §2.1). All of these name the same service, so all are
 * accepted; anything else (another host, another fragment) is not.
 */
import { PIPELINE_NSID } from "./nsid.ts";

export const SPINDLE_SERVICE_ID = "tangled_spindle";

/** `did:web:<hostname>` with `:` percent-encoded, the form did:web resolution expects. */
export function didWebEncoded(hostname: string): string {
  return `did:web:${hostname.replace(/:/g, "%3A")}`;
}

/**
 * Every accepted audience for `hostname` (`host` or `host:port`), without duplicates. The first is
 * the one errors name: the encoded form, the only one a PDS mints (getServiceAuth refuses
 * `did:web:host:port`, which is not a valid DID).
 */
export function serviceAudiences(hostname: string): string[] {
  const dids = new Set([
    didWebEncoded(hostname),
    `did:web:${hostname}`,
    didWebEncoded(hostname).replace(/%3A/g, "%3a"),
  ]);
  return [...dids].flatMap((d) => [d, `${d}#${SPINDLE_SERVICE_ID}`]);
}

/**
 * `/.well-known/did.json` for the spindle's `did:web`. Upstream does not serve one; it lets a
 * PDS proxy `atproto-proxy: did:web:<host>#tangled_spindle` calls here, as the OCaml spindle
 * does. A pure builder: the HTTP layer serves the result as `application/json`.
 */

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

/**
 * `at://did:web:<spindle host>/sh.tangled.pipeline/<tid>`, the AT-URI of a pipeline the spindle
 * built itself (gen2 §2.7); the appview only reads the record key.
 */
export function spindlePipelineAtUri(spindleHostname: string, tid: string): string {
  return `at://${didWebEncoded(spindleHostname)}/${PIPELINE_NSID}/${tid}`;
}
