/**
 * A keyed work queue, the shape controller-runtime gives its reconcilers:
 *
 * - a key is queued at most once (adding a queued key does nothing);
 * - a key is processed by at most one worker at a time; a key added while it is being processed
 *   is processed again afterwards (the change that caused the add is not lost);
 * - a failed key comes back after a per-key exponential backoff (base · 2^failures, capped); a
 *   success forgets its failures;
 * - `addAfter` requeues after a delay (the earliest pending delay wins); waiting is a requeue,
 *   never a sleep inside a worker;
 * - `shutdown` stops taking work and resolves once the in-flight keys are done.
 * - `add(key, { first: true })` puts a key in the first lane (a run whose Job is still to be
 *   created goes ahead of status writes for runs that have theirs). A first-lane key counts as
 *   queued `firstLaneLeadMs` earlier than it was, and the key queued earliest by that count goes
 *   next: a burst of new runs gets its Jobs before their status writes, but a normal key never
 *   waits behind first-lane keys queued more than the lead after it, so a steady stream of new
 *   runs cannot starve status writes.
 */

/** How much earlier than it was a first-lane key counts as queued (the default). */
export const FIRST_LANE_LEAD_MS = 1000;

export interface AddOptions {
  /** Queue ahead of the normal lane (a key already queued there moves up). */
  first?: boolean;
}

export interface ProcessResult {
  /** Process the key again after this many milliseconds. */
  requeueAfterMs?: number;
}

export interface WorkQueueOptions {
  process(key: string): Promise<ProcessResult | undefined>;
  /** Called for a failed key before it is retried; must not throw. */
  onError?(key: string, err: unknown, retryInMs: number): void;
  workers?: number;
  /** See the module comment; FIRST_LANE_LEAD_MS by default. */
  firstLaneLeadMs?: number;
  /** The clock for lane order (ms); tests give their own. */
  now?: () => number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

interface Entry {
  key: string;
  /** When it was queued (opts.now). */
  at: number;
}

export class WorkQueue {
  readonly #opts: Required<Omit<WorkQueueOptions, "onError">> & Pick<WorkQueueOptions, "onError">;
  /**
   * Lane 0 (first) and lane 1 (normal), FIFO each, with when each key was queued. A key moved up
   * to lane 0 leaves a stale entry in lane 1; an entry counts only while `#queued` names its lane.
   */
  readonly #lanes: [Entry[], Entry[]] = [[], []];
  /** Queued keys and their lane. */
  readonly #queued = new Map<string, 0 | 1>();
  readonly #processing = new Set<string>();
  /** Added while processing: queue again when done (true: in the first lane). */
  readonly #dirty = new Map<string, boolean>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  readonly #failures = new Map<string, number>();
  #running = 0;
  #stopped = false;
  #idle: (() => void) | undefined;

  constructor(opts: WorkQueueOptions) {
    this.#opts = {
      workers: 2,
      firstLaneLeadMs: FIRST_LANE_LEAD_MS,
      now: () => performance.now(),
      baseDelayMs: 500,
      maxDelayMs: 60_000,
      ...opts,
    };
  }

  /** Keys waiting to be processed (not counting delayed or in-flight ones). */
  get depth(): number {
    return this.#queued.size;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  add(key: string, opts: AddOptions = {}): void {
    if (this.#stopped) return;
    const first = opts.first === true;
    if (this.#processing.has(key)) {
      this.#dirty.set(key, first || this.#dirty.get(key) === true);
      return;
    }
    const lane = this.#queued.get(key);
    if (lane === 0 || (lane === 1 && !first)) return;
    this.#queued.set(key, first ? 0 : 1);
    this.#lanes[first ? 0 : 1].push({ key, at: this.#opts.now() });
    this.#pump();
  }

  addAfter(key: string, ms: number): void {
    if (this.#stopped) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + ms;
    const pending = this.#timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.#timers.set(key, { at, timer });
  }

  /** Backoff of the next retry of `key`. */
  backoffMs(key: string): number {
    const n = this.#failures.get(key) ?? 0;
    return Math.min(this.#opts.maxDelayMs, this.#opts.baseDelayMs * 2 ** n);
  }

  async shutdown(): Promise<void> {
    this.#stopped = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#lanes[0].length = 0;
    this.#lanes[1].length = 0;
    this.#queued.clear();
    this.#dirty.clear();
    if (this.#running === 0) return;
    await new Promise<void>((resolve) => {
      this.#idle = resolve;
    });
  }

  #pump(): void {
    while (!this.#stopped && this.#running < this.#opts.workers) {
      const key = this.#take();
      if (key === undefined) return;
      this.#processing.add(key);
      this.#running++;
      void this.#run(key);
    }
  }

  /** The next key: the earlier queued of the lanes' heads, lane 0's counted firstLaneLeadMs earlier. */
  #take(): string | undefined {
    this.#dropStale(0);
    this.#dropStale(1);
    const [first, normal] = this.#lanes;
    let lane: 0 | 1;
    if (first.length === 0 && normal.length === 0) return undefined;
    if (first.length === 0) lane = 1;
    else if (normal.length === 0) lane = 0;
    else lane = normal[0]!.at < first[0]!.at - this.#opts.firstLaneLeadMs ? 1 : 0;
    const { key } = this.#lanes[lane].shift()!;
    this.#queued.delete(key);
    return key;
  }

  /** Removes entries at the head of a lane that no longer count (moved up, or taken). */
  #dropStale(lane: 0 | 1): void {
    const q = this.#lanes[lane];
    while (q.length > 0 && this.#queued.get(q[0]!.key) !== lane) q.shift();
  }

  async #run(key: string): Promise<void> {
    let retryIn: number | undefined;
    try {
      const result = await this.#opts.process(key);
      this.#failures.delete(key);
      retryIn = result?.requeueAfterMs;
    } catch (err) {
      retryIn = this.backoffMs(key);
      this.#failures.set(key, (this.#failures.get(key) ?? 0) + 1);
      this.#opts.onError?.(key, err, retryIn);
    } finally {
      this.#processing.delete(key);
      this.#running--;
    }
    if (this.#stopped) {
      if (this.#running === 0) this.#idle?.();
      return;
    }
    const dirty = this.#dirty.get(key);
    if (dirty !== undefined) {
      this.#dirty.delete(key);
      this.add(key, { first: dirty });
    } else if (retryIn !== undefined) this.addAfter(key, retryIn);
    this.#pump();
  }
}
