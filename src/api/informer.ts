/**
 * A list+watch cache of one kind, written here instead of client-node's ListWatch because that
 * one stops for good on any error but a 410 (notes/real-kubernetes-for-tests.md §5.3). This one:
 *
 * - lists, then watches from the list's resourceVersion; a 410 Gone (or an ERROR event) relists;
 * - restarts after any error (refused connection, apiserver restart, 5xx, a failed list) with a
 *   capped exponential backoff plus jitter, forever, until stop();
 * - relists every `relistMs` even when nothing failed (a watch may go silent without an error:
 *   half-open TCP, proxies); client-node's Watch also aborts a watch with no traffic for 30 s,
 *   which lands here as a quick reconnect;
 * - keeps objects by `namespace/name` and reports add/update/delete, also for differences a
 *   relist finds (an object deleted while the watch was down is reported as deleted).
 */
import { type KubeConfig, type KubernetesObject, Watch } from "@kubernetes/client-node";
import type { Logger } from "pino";

export interface ListResult<T> {
  items: T[];
  metadata?: { resourceVersion?: string };
}

export interface InformerHandlers<T> {
  add?(obj: T): void;
  update?(old: T, obj: T): void;
  delete?(obj: T): void;
}

export interface InformerOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** Collection path, e.g. `/apis/batch/v1/namespaces/loom/jobs`. */
  path: string;
  /**
   * The LIST. It is handed the informer's transform: a list in pages should apply it to each
   * page's items as the page arrives (ClusterApi's `paged`), so that a relist holds one page of
   * full objects at a time, not every page's until the last one is in. Items it returns
   * untransformed are transformed here.
   */
  list(transform: (obj: T) => T): Promise<ListResult<T>>;
  labelSelector?: string;
  fieldSelector?: string;
  log: Logger;
  handlers?: InformerHandlers<T>;
  /**
   * Applied to every object on its way into the cache (controller-runtime's cache transform):
   * drop what the reader never looks at. Default: `managedFields` go (server-side apply's
   * bookkeeping, often the largest part of an object, read by no one here).
   */
  transform?: (obj: T) => T;
  /**
   * The value(s) an object is indexed under (e.g. its owner's label), so `byIndex` answers
   * "the objects of X" without a scan of the whole cache (client-go's Indexer).
   */
  index?: (obj: T) => string | undefined;
  relistMs?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export function objectKey(obj: KubernetesObject): string {
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${obj.metadata?.name}` : (obj.metadata?.name ?? "");
}

export class Informer<T extends KubernetesObject> {
  readonly #opts: InformerOptions<T>;
  readonly #cache = new Map<string, T>();
  readonly #index = new Map<string, Map<string, T>>();
  readonly #watch: Watch;
  #rv = "";
  #relistWanted = false;
  #stopped = true;
  #failures = 0;
  #abort: AbortController | undefined;
  #wake: (() => void) | undefined;
  #relistTimer: NodeJS.Timeout | undefined;
  #synced: Promise<void>;
  #markSynced!: () => void;
  #loop: Promise<void> | undefined;

  constructor(opts: InformerOptions<T>) {
    this.#opts = opts;
    this.#watch = new Watch(opts.kubeConfig);
    this.#synced = new Promise((resolve) => {
      this.#markSynced = resolve;
    });
  }

  /** Starts the loop; resolves after the first successful list. */
  async start(): Promise<void> {
    if (!this.#stopped) return this.#synced;
    this.#stopped = false;
    this.#loop = this.#run();
    const relistMs = this.#opts.relistMs ?? 300_000;
    this.#relistTimer = setInterval(() => this.relist(), relistMs);
    this.#relistTimer.unref();
    return this.#synced;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#relistTimer);
    this.#abort?.abort();
    this.#wake?.();
    await this.#loop;
  }

  /** Drops the current watch and lists again (the periodic resync; also useful in tests). */
  relist(): void {
    this.#relistWanted = true;
    this.#abort?.abort();
  }

  get(key: string): T | undefined {
    return this.#cache.get(key);
  }

  list(): T[] {
    return [...this.#cache.values()];
  }

  /** The objects whose `index` value is `value` (empty without an `index` option). */
  byIndex(value: string): T[] {
    const hits = this.#index.get(value);
    return hits ? [...hits.values()] : [];
  }

  /** Number of objects in the cache. */
  get size(): number {
    return this.#cache.size;
  }

  #put(key: string, obj: T, old: T | undefined): void {
    this.#cache.set(key, obj);
    if (!this.#opts.index) return;
    if (old) this.#unindex(key, old);
    const value = this.#opts.index(obj);
    if (value === undefined) return;
    const hits = this.#index.get(value) ?? new Map<string, T>();
    hits.set(key, obj);
    this.#index.set(value, hits);
  }

  #remove(key: string, old: T): void {
    this.#cache.delete(key);
    this.#unindex(key, old);
  }

  #unindex(key: string, old: T): void {
    const value = this.#opts.index?.(old);
    if (value === undefined) return;
    const hits = this.#index.get(value);
    hits?.delete(key);
    if (hits?.size === 0) this.#index.delete(value);
  }

  async #run(): Promise<void> {
    const log = this.#opts.log;
    while (!this.#stopped) {
      try {
        if (!this.#rv || this.#relistWanted) await this.#list();
        const started = Date.now();
        const err = await this.#watchOnce();
        if (this.#stopped) break;
        // A relist was asked for (timer, ERROR event) or the server said 410 Gone.
        if (!this.#rv || this.#relistWanted || isGone(err)) {
          this.#rv = "";
          continue;
        }
        if (err && !isTimeout(err)) throw err;
        // A clean close or an idle timeout: reconnect from where we were, but not in a tight
        // loop if the server keeps closing at once.
        if (Date.now() - started < 1000) await this.#sleep(this.#delay());
        else this.#failures = 0;
      } catch (err) {
        if (this.#stopped) break;
        const delay = this.#delay();
        this.#failures++;
        this.#rv = "";
        log.warn(
          { err: errorText(err), path: this.#opts.path, retryInMs: delay },
          "watch failed, restarting",
        );
        await this.#sleep(delay);
      }
    }
  }

  async #list(): Promise<void> {
    this.#relistWanted = false;
    const transformed = new WeakSet<T>();
    const result = await this.#opts.list((item) => {
      const obj = this.#transform(item);
      transformed.add(obj);
      return obj;
    });
    const handlers = this.#opts.handlers ?? {};
    const seen = new Set<string>();
    for (const item of result.items) {
      const obj = transformed.has(item) ? item : this.#transform(item);
      const key = objectKey(obj);
      seen.add(key);
      const old = this.#cache.get(key);
      this.#put(key, obj, old);
      if (!old) handlers.add?.(obj);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) handlers.update?.(old, obj);
    }
    for (const [key, old] of this.#cache) {
      if (seen.has(key)) continue;
      this.#remove(key, old);
      handlers.delete?.(old);
    }
    this.#rv = result.metadata?.resourceVersion ?? "";
    this.#failures = 0;
    this.#markSynced();
  }

  /** One watch request; resolves with its end (null = closed cleanly). */
  #watchOnce(): Promise<unknown> {
    return new Promise((resolve) => {
      const params: Record<string, string | boolean> = {
        resourceVersion: this.#rv,
        allowWatchBookmarks: true,
      };
      if (this.#opts.labelSelector) params.labelSelector = this.#opts.labelSelector;
      if (this.#opts.fieldSelector) params.fieldSelector = this.#opts.fieldSelector;
      this.#watch
        .watch(
          this.#opts.path,
          params,
          (type, obj) => this.#event(type, obj),
          (err) => resolve(err),
        )
        .then(
          (abort) => {
            this.#abort = abort;
            if (this.#stopped || !this.#rv || this.#relistWanted) abort.abort();
          },
          (err) => resolve(err),
        );
    });
  }

  #transform(obj: T): T {
    if (this.#opts.transform) return this.#opts.transform(obj);
    if (obj.metadata?.managedFields) delete obj.metadata.managedFields;
    return obj;
  }

  #event(type: string, raw: T): void {
    const handlers = this.#opts.handlers ?? {};
    if (type === "ERROR") {
      // 410 Gone: our resourceVersion is too old. Any other error status: relist as well.
      this.#rv = "";
      this.#abort?.abort();
      return;
    }
    const rv = raw.metadata?.resourceVersion;
    if (rv) this.#rv = rv;
    if (type === "BOOKMARK") return;
    const obj = this.#transform(raw);
    const key = objectKey(obj);
    const old = this.#cache.get(key);
    if (type === "DELETED") {
      if (old) this.#remove(key, old);
      handlers.delete?.(obj);
    } else if (type === "ADDED" || type === "MODIFIED") {
      this.#put(key, obj, old);
      if (old) handlers.update?.(old, obj);
      else handlers.add?.(obj);
    }
  }

  #delay(): number {
    const base = this.#opts.baseDelayMs ?? 500;
    const max = this.#opts.maxDelayMs ?? 30_000;
    const exp = Math.min(max, base * 2 ** this.#failures);
    return Math.round(exp / 2 + Math.random() * (exp / 2));
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}

function isGone(err: unknown): boolean {
  const e = err as { statusCode?: number; code?: number } | null;
  return e?.statusCode === 410 || e?.code === 410;
}

function isTimeout(err: unknown): boolean {
  return (err as { name?: string } | null)?.name === "TimeoutError";
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
