/** The one RFC 3339 writer of the wire: what Go's `time.RFC3339` writes for a UTC time. */

const RFC3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

/**
 * RFC 3339 at seconds precision in UTC (`2026-07-26T12:00:00Z`). A string already in UTC keeps
 * its digits (fractions dropped); any other string is parsed first.
 */
export function rfc3339Seconds(t: string | Date): string {
  if (typeof t === "string") {
    const m = RFC3339.exec(t);
    if (m !== null && m[3] === "Z") return `${m[1]}Z`;
  }
  const d = typeof t === "string" ? new Date(t) : t;
  if (Number.isNaN(d.getTime())) throw new RangeError(`not a time: ${String(t)}`);
  return `${d.toISOString().slice(0, 19)}Z`;
}
