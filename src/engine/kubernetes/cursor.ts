/**
 * Exactly-once reading of a pod log across reconnects, pure.
 *
 * The pod log API can only resume by time (`sinceTime`), and the apiserver passes it on to the
 * kubelet with whole-second precision, so a reconnect repeats up to a second of lines (all of
 * them, if a log source ignores sinceTime). Two layers make sure nothing is fed to the relay
 * twice and nothing is skipped:
 *
 * 1. `LogCursor`, on the container log's own timestamps (`timestamps=true`, RFC 3339 with
 *    nanoseconds, assigned by the container runtime and never decreasing within one log):
 *    after a reconnect every line older than the last one seen is dropped, and of the lines
 *    carrying exactly the last timestamp, as many as were already seen.
 * 2. `EventDeduper`, on the runner protocol: `output` events carry a per-run `seq`, and
 *    hello/step_start/step_end/result happen once per run (per step); a repeat is dropped.
 *    This also covers a log source without timestamps, and a runner line read twice after a
 *    restart of the engine.
 */

/** One line of a timestamped pod log: `2026-11-27T17:00:00.123456789Z <text>`. */
export interface PodLogLine {
  /** The runtime's timestamp, or undefined when the line has none. */
  ts: string | undefined;
  text: string;
}

const TS = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) /;

export function parsePodLogLine(line: string): PodLogLine {
  const m = TS.exec(line);
  if (!m) return { ts: undefined, text: line };
  return { ts: m[1], text: line.slice(m[0].length) };
}

/**
 * A timestamp as a fixed-width sortable key `YYYY-MM-DDTHH:MM:SS.nnnnnnnnn` (UTC), so string
 * comparison is time comparison. Offsets other than Z are converted.
 */
export function sortKey(ts: string): string {
  const m = /^(.{19})(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return ts;
  const frac = (m[2] ?? "").padEnd(9, "0");
  if (m[3] === "Z") return `${m[1]}.${frac}`;
  const utc = new Date(`${m[1]}${m[3]}`).toISOString().slice(0, 19);
  return `${utc}.${frac}`;
}

export class LogCursor {
  /** Sort key of the newest line seen. */
  #last: string | undefined;
  /** Lines seen with exactly #last. */
  #atLast = 0;
  /** Lines without a timestamp seen (for a source that has none: skip by count). */
  #untimed = 0;
  /** Per connection: lines at #last still to skip, untimed lines still to skip. */
  #skipAtLast = 0;
  #skipUntimed = 0;

  /** The `sinceTime` for the next connection: the last timestamp seen, whole seconds, or undefined. */
  sinceTime(): string | undefined {
    return this.#last === undefined ? undefined : `${this.#last.slice(0, 19)}Z`;
  }

  /** Call when a new connection starts (the source replays from sinceTime or the start). */
  reconnect(): void {
    this.#skipAtLast = this.#atLast;
    this.#skipUntimed = this.#untimed;
  }

  /** Whether a line of the current connection is new; records it when it is. */
  accept(line: PodLogLine): boolean {
    if (line.ts === undefined) {
      if (this.#skipUntimed > 0) {
        this.#skipUntimed--;
        return false;
      }
      this.#untimed++;
      return true;
    }
    const key = sortKey(line.ts);
    if (this.#last !== undefined && key < this.#last) return false;
    if (key === this.#last) {
      if (this.#skipAtLast > 0) {
        this.#skipAtLast--;
        return false;
      }
      this.#atLast++;
      return true;
    }
    this.#last = key;
    this.#atLast = 1;
    this.#skipAtLast = 0;
    return true;
  }
}

/** Drops repeated runner events (by seq, or by kind and step); passes anything it cannot read. */
export class EventDeduper {
  #maxSeq = 0;
  readonly #once = new Set<string>();

  /** Whether the runner line (one JSON event) should be relayed. */
  accept(text: string): boolean {
    let ev: { type?: unknown; seq?: unknown; step?: unknown };
    try {
      ev = JSON.parse(text) as typeof ev;
    } catch {
      return true; // the relay reports it
    }
    if (typeof ev !== "object" || ev === null) return true;
    switch (ev.type) {
      case "output": {
        if (typeof ev.seq !== "number") return true;
        if (ev.seq <= this.#maxSeq) return false;
        this.#maxSeq = ev.seq;
        return true;
      }
      case "hello":
      case "result":
      case "step_start":
      case "step_end": {
        const key = `${ev.type}:${String(ev.step ?? "")}`;
        if (this.#once.has(key)) return false;
        this.#once.add(key);
        return true;
      }
      default:
        return true;
    }
  }
}
