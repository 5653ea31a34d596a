/**
 * RFC 3339 times with nanosecond digits. Date has only milliseconds, so the sub-millisecond part
 * comes from the monotonic hrtime clock anchored once to the wall clock: times stay ordered
 * within a run even if the wall clock steps.
 */
const anchorNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

export function rfc3339Nano(ns: bigint = anchorNs + process.hrtime.bigint()): string {
  const ms = Number(ns / 1_000_000n);
  const iso = new Date(ms).toISOString(); // 2026-01-02T03:04:05.678Z
  const frac = (ns % 1_000_000_000n).toString().padStart(9, "0");
  return `${iso.slice(0, 19)}.${frac}Z`;
}

export type Clock = () => string;
