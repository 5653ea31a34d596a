/**
 * Capped exponential back-off with full jitter (AWS architecture blog, "Exponential Backoff And
 * Jitter"): the n-th consecutive failure waits `random() * min(cap, base * factor^n)`, never less
 * than `minMs`. Upstream's Jetstream client reconnects in a tight loop; this is Loom's answer.
 *
 * A connection that stayed up for `healthyAfterMs` counts as healthy: `connected()` followed by a
 * `next()` after that long starts the sequence from the beginning again, so one flap after a day
 * of uptime does not inherit the long delays of an old outage.
 *
 * Pure and synchronous: `random` and `now` are injectable, so tests see exact delays.
 */

export interface BackoffOptions {
  /** The first step's ceiling (ms). */
  baseMs: number;
  /** No delay exceeds this (ms). */
  capMs: number;
  /** Growth per consecutive failure; default 2. */
  factor?: number;
  /** Lower bound of every delay (ms), so full jitter cannot produce a hot loop; default 0. */
  minMs?: number;
  /** A session that lasted at least this long resets the sequence (ms); default 60 s. */
  healthyAfterMs?: number;
  /** Uniform in [0, 1); default Math.random. */
  random?: () => number;
  /** Milliseconds clock; default Date.now. */
  now?: () => number;
}

export class Backoff {
  readonly #base: number;
  readonly #cap: number;
  readonly #factor: number;
  readonly #min: number;
  readonly #healthyAfter: number;
  readonly #random: () => number;
  readonly #now: () => number;
  #attempt = 0;
  #connectedAt: number | null = null;

  constructor(opts: BackoffOptions) {
    if (!(opts.baseMs > 0) || !(opts.capMs >= opts.baseMs))
      throw new RangeError(`backoff needs 0 < baseMs <= capMs, got ${opts.baseMs} and ${opts.capMs}`);
    this.#base = opts.baseMs;
    this.#cap = opts.capMs;
    this.#factor = opts.factor ?? 2;
    this.#min = Math.min(opts.minMs ?? 0, opts.capMs);
    this.#healthyAfter = opts.healthyAfterMs ?? 60_000;
    this.#random = opts.random ?? Math.random;
    this.#now = opts.now ?? Date.now;
  }

  /** Consecutive failures since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The ceiling the next delay is drawn under (before jitter). */
  ceiling(): number {
    // factor^attempt overflows to Infinity long after it passed the cap; min() handles that.
    return Math.min(this.#cap, this.#base * this.#factor ** this.#attempt);
  }

  /** The delay before the next attempt (ms); counts one more failure. */
  next(): number {
    if (this.#connectedAt !== null && this.#now() - this.#connectedAt >= this.#healthyAfter) this.reset();
    this.#connectedAt = null;
    const delay = Math.max(this.#min, Math.floor(this.#random() * this.ceiling()));
    this.#attempt++;
    return delay;
  }

  /** A connection was established; if it lives long enough the next failure starts afresh. */
  connected(): void {
    this.#connectedAt = this.#now();
  }

  reset(): void {
    this.#attempt = 0;
    this.#connectedAt = null;
  }
}

/** Resolves after `ms`, or at once (without throwing) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
