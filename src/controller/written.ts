/**
 * The resourceVersion of the controller's own last status write, per SpindleSet, until the
 * informer delivers it. A reconcile that finds the cache still holding an older SpindleSet would
 * compute from a status it has already replaced and lose the guarded write to a 409 Conflict
 * (in the 1,000-workflow run, about one per workflow); it waits instead, and the watch event
 * that brings the written version queues the key again.
 *
 * resourceVersions are opaque: they are only compared for equality with the one written. The
 * watch delivers a key's versions in order, so "the written one was delivered" is "the cache is
 * at it or newer". Its event may also come before the write's response: the versions delivered
 * while the write is in flight are kept and looked up. A version the watch skipped (a relist
 * after a gap) is waited for at most `maxWaitMs`; then the reconcile goes ahead (its write is
 * still guarded: at worst the 409 it would have had anyway).
 */
export class WrittenVersions {
  readonly #maxWaitMs: number;
  readonly #now: () => number;
  /** Keys with a status write in flight → the versions the informer delivered meanwhile. */
  readonly #inFlight = new Map<string, Set<string>>();
  /** Keys whose written version the cache does not hold yet. */
  readonly #pending = new Map<string, { rv: string; at: number }>();
  /** Keys whose reconcile waited: queue them again when the version comes. */
  readonly #deferred = new Set<string>();

  constructor(opts: { maxWaitMs?: number; now?: () => number } = {}) {
    this.#maxWaitMs = opts.maxWaitMs ?? 5000;
    this.#now = opts.now ?? Date.now;
  }

  /** How long a waiting reconcile may wait (its requeue, in case no event comes). */
  get maxWaitMs(): number {
    return this.#maxWaitMs;
  }

  /** A status write of `key` starts. */
  writing(key: string): void {
    this.#inFlight.set(key, new Set());
  }

  /** The write of `key` ended; `rv` is what the API server returned (undefined: it failed). */
  wrote(key: string, rv: string | undefined): void {
    const seen = this.#inFlight.get(key);
    this.#inFlight.delete(key);
    if (rv === undefined || seen?.has(rv)) return;
    this.#pending.set(key, { rv, at: this.#now() });
  }

  /**
   * The informer delivered `rv` of `key` (add or update). True when a reconcile waited for this
   * version and must be queued again.
   */
  delivered(key: string, rv: string | undefined): boolean {
    if (rv === undefined) return false;
    this.#inFlight.get(key)?.add(rv);
    if (this.#pending.get(key)?.rv !== rv) return false;
    this.#pending.delete(key);
    return this.#deferred.delete(key);
  }

  /** True when the cache's `rv` of `key` predates our last write: reconcile after its event. */
  stale(key: string, rv: string | undefined): boolean {
    const pending = this.#pending.get(key);
    if (!pending) return false;
    if (pending.rv === rv || this.#now() - pending.at >= this.#maxWaitMs) {
      this.#pending.delete(key);
      this.#deferred.delete(key);
      return false;
    }
    this.#deferred.add(key);
    return true;
  }

  /** The SpindleSet is gone. */
  forget(key: string): void {
    this.#inFlight.delete(key);
    this.#pending.delete(key);
    this.#deferred.delete(key);
  }

  /** Keys waiting for their written version (tests, metrics). */
  get size(): number {
    return this.#pending.size;
  }
}
