/**
 * The engine's writes to the cluster: SpindleSet spec (never status: that is the controller's)
 * and the per-run Secret. Every error that leaves here is a `ClusterError` carrying the HTTP
 * status and a fixed message: API error bodies can echo the object sent, and the Secret's
 * object holds secret values.
 */
import {
  ApiException,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { buildRunSecret, buildSpindleSet } from "../../api/contract/index.ts";
import { GROUP, SPINDLESET, VERSION } from "../../api/v1alpha1/group.ts";
import type { SpindleSet, SpindleSetSpecInput } from "../../api/v1alpha1/spindleset.ts";

export class ClusterError extends Error {
  override readonly name = "ClusterError";
  /** HTTP status, 0 when the API could not be reached. */
  readonly status: number;
  constructor(what: string, err: unknown) {
    const status = err instanceof ApiException ? err.code : 0;
    const why = status ? `HTTP ${status}` : err instanceof Error ? err.name : "unknown error";
    super(`${what} failed: ${why}`);
    this.status = status;
  }
}

const statusOf = (err: unknown) => (err instanceof ApiException ? err.code : 0);

type WorkflowInput = SpindleSetSpecInput["workflows"][number];

export class SpindleSetStore {
  readonly namespace: string;
  readonly #custom: CustomObjectsApi;
  readonly #core: CoreV1Api;
  readonly #batch: BatchV1Api;

  constructor(kc: KubeConfig, namespace: string) {
    this.namespace = namespace;
    this.#custom = kc.makeApiClient(CustomObjectsApi);
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#batch = kc.makeApiClient(BatchV1Api);
  }

  /** Sets one annotation on a workflow's Job (the controller's signals, src/api/contract/signals.ts). */
  async annotateJob(name: string, key: string, value: string): Promise<void> {
    try {
      await this.#batch.patchNamespacedJob(
        { name, namespace: this.namespace, body: { metadata: { annotations: { [key]: value } } } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
    } catch (err) {
      if (statusOf(err) === 404) return;
      throw new ClusterError(`annotating Job ${name}`, err);
    }
  }

  #ref(name: string) {
    return { group: GROUP, version: VERSION, namespace: this.namespace, plural: SPINDLESET.plural, name };
  }

  async get(name: string): Promise<SpindleSet | undefined> {
    try {
      return (await this.#custom.getNamespacedCustomObject(this.#ref(name))) as SpindleSet;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw new ClusterError(`reading SpindleSet ${name}`, err);
    }
  }

  /** Creates the run with its first workflow; undefined when it already exists. */
  async create(
    spec: Omit<SpindleSetSpecInput, "secretRef">,
    withSecrets: boolean,
  ): Promise<SpindleSet | undefined> {
    const body = buildSpindleSet({ namespace: this.namespace, spec, withSecrets });
    try {
      const { name: _n, ...ref } = this.#ref("");
      return (await this.#custom.createNamespacedCustomObject({ ...ref, body })) as SpindleSet;
    } catch (err) {
      if (statusOf(err) === 409) return undefined;
      throw new ClusterError(`creating SpindleSet ${body.metadata.name}`, err);
    }
  }

  /**
   * Adds a workflow to an existing run, guarded by resourceVersion: undefined on a conflict
   * (someone wrote in between: read again and retry).
   */
  async addWorkflow(
    ss: SpindleSet,
    workflow: WorkflowInput,
    secretRef: string | undefined,
  ): Promise<SpindleSet | undefined> {
    const body = {
      ...ss,
      spec: {
        ...ss.spec,
        ...(secretRef && !ss.spec.secretRef && { secretRef: { name: secretRef } }),
        workflows: [...ss.spec.workflows, workflow],
      },
    };
    try {
      return (await this.#custom.replaceNamespacedCustomObject({
        ...this.#ref(ss.metadata.name!),
        body,
      })) as SpindleSet;
    } catch (err) {
      if (statusOf(err) === 409) return undefined;
      throw new ClusterError(`adding workflow ${workflow.name} to SpindleSet ${ss.metadata.name}`, err);
    }
  }

  /** JSON merge patch of spec or metadata (never status). */
  async patch(name: string, body: object): Promise<SpindleSet | undefined> {
    try {
      return (await this.#custom.patchNamespacedCustomObject(
        { ...this.#ref(name), body },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      )) as SpindleSet;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw new ClusterError(`updating SpindleSet ${name}`, err);
    }
  }

  /** Deletes the run; owner references take its Secret, ConfigMaps, Jobs and pods with it. */
  async delete(name: string, uid?: string): Promise<void> {
    try {
      await this.#custom.deleteNamespacedCustomObject({
        ...this.#ref(name),
        propagationPolicy: "Background",
        ...(uid && { body: { preconditions: { uid } } }),
      });
    } catch (err) {
      if (statusOf(err) === 404 || statusOf(err) === 409) return;
      throw new ClusterError(`deleting SpindleSet ${name}`, err);
    }
  }

  /** Waits until the named run is gone (or has another uid); false on timeout. */
  async waitGone(name: string, uid: string | undefined, timeoutMs: number): Promise<boolean> {
    const until = performance.now() + timeoutMs;
    for (;;) {
      const ss = await this.get(name);
      if (!ss || (uid !== undefined && ss.metadata.uid !== uid)) return true;
      if (performance.now() > until) return false;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /**
   * The run's Secret, owned by the SpindleSet. Created once; an existing one is kept (a run's
   * secrets are frozen with it, and the Secret is immutable). Keys that cannot be Secret data
   * keys are left out: no step can name them anyway.
   */
  async ensureSecret(ss: SpindleSet, values: ReadonlyMap<string, string>): Promise<void> {
    const data: Record<string, string> = {};
    for (const [key, value] of values) if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) data[key] = value;
    const body = buildRunSecret({
      owner: { name: ss.metadata.name!, namespace: this.namespace, uid: ss.metadata.uid! },
      pipeline: ss.spec.pipeline,
      values: data,
    });
    try {
      await this.#core.createNamespacedSecret({ namespace: this.namespace, body });
    } catch (err) {
      if (statusOf(err) === 409) return;
      throw new ClusterError(`creating the Secret of SpindleSet ${ss.metadata.name}`, err);
    }
  }
}
