/**
 * Keeps the engine up to date with the SpindleSets of one namespace: list, then watch from the
 * list's resourceVersion; whenever the watch ends (server timeout, error, 410 Gone, a silent
 * connection cut by client-node's inactivity timeout) list again after a backoff. Every list
 * hands over every object, so a missed event is repaired by the next relist; `timeoutSeconds`
 * makes the server end each watch regularly, which bounds how long a silently dead watch can
 * hide events.
 */
import { CustomObjectsApi, type KubeConfig, Watch } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { GROUP, SPINDLESET, VERSION } from "../../api/v1alpha1/group.ts";
import type { SpindleSet } from "../../api/v1alpha1/spindleset.ts";
import { describe } from "./logs.ts";

export interface SpindleSetWatchOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  labelSelector: string;
  /** A SpindleSet was added or changed (also called for every object of each relist). */
  onObject(ss: SpindleSet): void;
  /** A SpindleSet is gone (deleted, or missing from a relist). */
  onGone(name: string, uid: string | undefined): void;
  logger: Logger;
  /** Server-side watch timeout (default 60 s). */
  watchSeconds?: number;
}

export class SpindleSetWatch {
  readonly #o: SpindleSetWatchOptions;
  readonly #api: CustomObjectsApi;
  #stopped = false;
  #abort: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #known = new Map<string, string | undefined>();
  #ready: Promise<void>;
  #markReady!: () => void;

  constructor(opts: SpindleSetWatchOptions) {
    this.#o = opts;
    this.#api = opts.kubeConfig.makeApiClient(CustomObjectsApi);
    this.#ready = new Promise((r) => {
      this.#markReady = r;
    });
  }

  /** Starts listing and watching; resolves after the first successful list (or stop). */
  start(): Promise<void> {
    void this.#cycle();
    return this.#ready;
  }

  /** Lists again soon (e.g. after the engine wrote something it wants to see quickly). */
  resync(): void {
    this.#abort?.abort();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#abort?.abort();
    this.#markReady();
  }

  async #cycle(): Promise<void> {
    if (this.#stopped) return;
    let rv: string | undefined;
    try {
      const list = (await this.#api.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: this.#o.namespace,
        plural: SPINDLESET.plural,
        labelSelector: this.#o.labelSelector,
      })) as { metadata?: { resourceVersion?: string }; items: SpindleSet[] };
      rv = list.metadata?.resourceVersion;
      const seen = new Map<string, string | undefined>();
      for (const ss of list.items) {
        seen.set(ss.metadata.name!, ss.metadata.uid);
        this.#o.onObject(ss);
      }
      for (const [name, uid] of this.#known) if (seen.get(name) !== uid) this.#o.onGone(name, uid);
      this.#known = seen;
      this.#markReady();
    } catch (err) {
      this.#retry(err);
      return;
    }
    if (this.#stopped) return;
    const path = `/apis/${GROUP}/${VERSION}/namespaces/${this.#o.namespace}/${SPINDLESET.plural}`;
    let ended = false;
    const end = (err: unknown) => {
      if (ended) return;
      ended = true;
      this.#abort = undefined;
      // client-node ends a watch that was quiet for 30 s with a TimeoutError: a normal end.
      const quiet = err instanceof Error && err.name === "TimeoutError";
      if (err && !quiet && !this.#stopped) this.#retry(err);
      else this.#schedule(0);
    };
    try {
      this.#abort = await new Watch(this.#o.kubeConfig).watch(
        path,
        {
          labelSelector: this.#o.labelSelector,
          resourceVersion: rv,
          allowWatchBookmarks: true,
          timeoutSeconds: this.#o.watchSeconds ?? 60,
        },
        (type, obj: SpindleSet) => {
          this.#failures = 0;
          const name = obj?.metadata?.name;
          if (!name) return;
          if (type === "ADDED" || type === "MODIFIED") {
            this.#known.set(name, obj.metadata.uid);
            this.#o.onObject(obj);
          } else if (type === "DELETED") {
            this.#known.delete(name);
            this.#o.onGone(name, obj.metadata.uid);
          }
          // BOOKMARK: nothing; ERROR (410): the watch ends and the next cycle lists again.
        },
        end,
      );
      if (ended) this.#abort = undefined;
    } catch (err) {
      end(err);
    }
  }

  #retry(err: unknown): void {
    if (this.#stopped) return;
    this.#failures++;
    this.#o.logger.warn({ err: describe(err), failures: this.#failures }, "SpindleSet watch failed");
    const ms = Math.min(30_000, 250 * 2 ** Math.min(this.#failures, 7));
    this.#schedule(ms / 2 + Math.random() * (ms / 2));
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#cycle(), ms);
  }
}
