/**
 * The engine's one view of the workflow pods: a label-selected informer of the namespace's pods
 * (src/api/informer.ts), shared by every log follower. A waiting workflow looks its pod up here
 * and is woken when a pod changes, instead of listing pods every second (issue 15: N waiting
 * workflows made N pod lists a second). Pods are indexed by the workflow label, so a lookup does
 * not scan the namespace.
 */
import { CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { LABELS } from "../../api/contract/index.ts";
import { Informer, type ListResult, objectKey } from "../../api/informer.ts";
import { slimPod } from "../../api/slim.ts";

export interface PodCacheOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** Which pods to keep, e.g. Loom's managed-by label. */
  labelSelector: string;
  log: Logger;
}

export class PodCache {
  readonly #informer: Informer<V1Pod>;
  /** Workflow label value → pod keys. */
  readonly #byWorkflow = new Map<string, Set<string>>();
  /** Workflow label value (or "" for any pod) → listeners. */
  readonly #listeners = new Map<string, Set<() => void>>();
  #started: Promise<void> | undefined;
  #stopped = false;

  constructor(opts: PodCacheOptions) {
    const core = opts.kubeConfig.makeApiClient(CoreV1Api);
    const changed = (pod: V1Pod, gone = false) => {
      const wf = pod.metadata?.labels?.[LABELS.workflow];
      if (wf !== undefined) {
        const keys = this.#byWorkflow.get(wf) ?? new Set<string>();
        if (gone) keys.delete(objectKey(pod));
        else keys.add(objectKey(pod));
        if (keys.size > 0) this.#byWorkflow.set(wf, keys);
        else this.#byWorkflow.delete(wf);
      }
      for (const key of wf === undefined ? [""] : [wf, ""])
        for (const fn of this.#listeners.get(key) ?? []) fn();
    };
    this.#informer = new Informer<V1Pod>({
      kubeConfig: opts.kubeConfig,
      path: `/api/v1/namespaces/${opts.namespace}/pods`,
      labelSelector: opts.labelSelector,
      log: opts.log,
      transform: slimPod,
      list: async () =>
        (await core.listNamespacedPod({
          namespace: opts.namespace,
          labelSelector: opts.labelSelector,
        })) as ListResult<V1Pod>,
      handlers: {
        add: (pod) => changed(pod),
        update: (old, pod) => {
          if (old.metadata?.labels?.[LABELS.workflow] !== pod.metadata?.labels?.[LABELS.workflow])
            changed(old, true);
          changed(pod);
        },
        delete: (pod) => changed(pod, true),
      },
    });
  }

  /**
   * The pods carrying every one of `labels`. The first call starts the informer; a call before
   * its first list succeeded waits up to `waitMs`, then throws (the caller backs off and asks
   * again), so a follower never hangs on a pod list the API refuses.
   */
  async find(labels: Readonly<Record<string, string>>, waitMs = 5000): Promise<V1Pod[]> {
    if (this.#stopped) return [];
    this.#started ??= this.#informer.start();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("the pod cache has not listed the pods yet")), waitMs);
    });
    try {
      await Promise.race([this.#started, late]);
    } finally {
      clearTimeout(timer);
    }
    const wf = labels[LABELS.workflow];
    const candidates =
      wf === undefined
        ? this.#informer.list()
        : [...(this.#byWorkflow.get(wf) ?? [])].flatMap((k) => this.#informer.get(k) ?? []);
    return candidates.filter((pod) =>
      Object.entries(labels).every(([k, v]) => pod.metadata?.labels?.[k] === v),
    );
  }

  /**
   * Calls `fn` after a pod that may carry `labels` changed (with a workflow label: only that
   * workflow's pods); returns the unsubscribe.
   */
  onChange(labels: Readonly<Record<string, string>>, fn: () => void): () => void {
    const key = labels[LABELS.workflow] ?? "";
    const set = this.#listeners.get(key) ?? new Set();
    set.add(fn);
    this.#listeners.set(key, set);
    return () => {
      set.delete(fn);
      if (set.size === 0 && this.#listeners.get(key) === set) this.#listeners.delete(key);
    };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#listeners.clear();
    if (this.#started) await this.#informer.stop();
  }
}
