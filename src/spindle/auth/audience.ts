/**
 * The `aud` values a service JWT may carry to be meant for this spindle.
 *
 * Gen1 spindles compare with `did:web:<hostname>` as written (§1.1), while the appview encodes
 * the `:` of a port as `%3A` (§3.3, gen2 §2.1), and PDS service proxying addresses
 * `did:web:<host>#tangled_spindle` (gen2 §2.1). All of these name the same service, so all are
 * accepted; anything else (another host, another fragment) is not.
 */
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
