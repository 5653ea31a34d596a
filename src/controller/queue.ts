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
 */

export interface ProcessResult {
  /** Process the key again after this many milliseconds. */
  requeueAfterMs?: number;
}

export interface WorkQueueOptions {
  process(key: string): Promise<ProcessResult | undefined>;
  /** Called for a failed key before it is retried; must not throw. */
  onError?(key: string, err: unknown, retryInMs: number): void;
  workers?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export class WorkQueue {
  readonly #opts: Required<Omit<WorkQueueOptions, "onError">> & Pick<WorkQueueOptions, "onError">;
  readonly #queue: string[] = [];
  readonly #queued = new Set<string>();
  readonly #processing = new Set<string>();
  /** Added while processing: queue again when done. */
  readonly #dirty = new Set<string>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  readonly #failures = new Map<string, number>();
  #running = 0;
  #stopped = false;
  #idle: (() => void) | undefined;

  constructor(opts: WorkQueueOptions) {
    this.#opts = { workers: 2, baseDelayMs: 500, maxDelayMs: 60_000, ...opts };
  }

  /** Keys waiting to be processed (not counting delayed or in-flight ones). */
  get depth(): number {
    return this.#queue.length;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  add(key: string): void {
    if (this.#stopped) return;
    if (this.#processing.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#queued.has(key)) return;
    this.#queued.add(key);
    this.#queue.push(key);
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
    this.#queue.length = 0;
    this.#queued.clear();
    this.#dirty.clear();
    if (this.#running === 0) return;
    await new Promise<void>((resolve) => {
      this.#idle = resolve;
    });
  }

  #pump(): void {
    while (!this.#stopped && this.#running < this.#opts.workers && this.#queue.length > 0) {
      const key = this.#queue.shift()!;
      this.#queued.delete(key);
      this.#processing.add(key);
      this.#running++;
      void this.#run(key);
    }
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
    if (this.#dirty.delete(key)) this.add(key);
    else if (retryIn !== undefined) this.addAfter(key, retryIn);
    this.#pump();
  }
}
