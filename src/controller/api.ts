/**
 * The controller's writes and live reads, in the words the reconciler uses. Creates report an
 * AlreadyExists (409) as "exists" (deterministic names: a repeated create is an adoption, not an
 * error); deletes treat 404 as done. Every other API error is thrown to the work queue, which
 * retries the key with backoff.
 */
import {
  ApiException,
  BatchV1Api,
  CoreV1Api,
  type CoreV1Event,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
  type V1Job,
  type V1Node,
  type V1Pod,
  type V1Secret,
} from "@kubernetes/client-node";
import { managedSelector, selectorString } from "../api/contract/index.ts";
import { errorText, type ListResult } from "../api/informer.ts";
import { GROUP, SPINDLESET, VERSION } from "../api/v1alpha1/group.ts";
import type { SpindleSet, SpindleSetStatus } from "../api/v1alpha1/spindleset.ts";
import { ms } from "./time.ts";

const CR = { group: GROUP, version: VERSION, plural: SPINDLESET.plural };
export const FAILED_CREATE = "reason=FailedCreate";
const MERGE = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

export function statusCode(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  return (err as { code?: unknown; statusCode?: unknown })?.statusCode as number | undefined;
}

/** The API server's own words for a failed call (its Status message), else the error's text. */
export function apiMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const body: unknown = err.body;
    try {
      const status = (typeof body === "string" ? JSON.parse(body) : body) as { message?: unknown } | null;
      if (typeof status?.message === "string") return status.message;
    } catch {
      // not a Status object: fall through
    }
    return `HTTP ${err.code}`;
  }
  return errorText(err);
}

/** Why the cluster cannot host Loom's runs yet, said so that an operator knows what to do. */
export class PreflightError extends Error {
  override readonly name = "PreflightError";
}

/**
 * The message for an error of the preflight's SpindleSet list: 404 = the CRD is not installed,
 * 403 = the service account lacks the Role, anything else = the API cannot be used at all.
 */
export function preflightError(err: unknown, namespace: string): PreflightError {
  const code = statusCode(err);
  const crd = `${SPINDLESET.plural}.${GROUP}`;
  if (code === 404)
    return new PreflightError(
      `the SpindleSet CRD (${crd}, ${VERSION}) is not installed in this cluster: run \`make install\` (kubectl apply --server-side -k config/crd)`,
      { cause: err },
    );
  if (code === 403 || code === 401)
    return new PreflightError(
      `not allowed to list ${crd} in namespace ${namespace} (HTTP ${code}): apply Loom's RBAC (\`make deploy\`, config/rbac) and run as its service account`,
      { cause: err },
    );
  const why = err instanceof Error ? err.message.split("\n")[0] : String(err);
  return new PreflightError(`the Kubernetes API cannot be used: ${why}`, { cause: err });
}

/**
 * Why the job controller cannot create the pod of the Job `jobUid`, from its FailedCreate events
 * (the Job itself records nothing): the first time it happened and the latest message;
 * undefined if it has not happened.
 */
export function podCreateFailureOf(
  events: Iterable<CoreV1Event>,
  jobUid: string,
): PodCreateFailure | undefined {
  let first: number | undefined;
  let latest: { at: number; message: string } | undefined;
  for (const e of events) {
    if (e.involvedObject?.uid !== jobUid || e.reason !== "FailedCreate") continue;
    const from = ms(e.firstTimestamp ?? e.eventTime ?? e.lastTimestamp, Number.NaN);
    const to = ms(
      e.lastTimestamp ?? e.series?.lastObservedTime ?? e.eventTime ?? e.firstTimestamp,
      Number.NaN,
    );
    if (!Number.isNaN(from) && (first === undefined || from < first)) first = from;
    if (!Number.isNaN(to) && (latest === undefined || to >= latest.at))
      latest = { at: to, message: e.message ?? "" };
  }
  if (first === undefined || latest === undefined) return undefined;
  return { since: new Date(first), message: latest.message };
}

export interface PodCreateFailure {
  /** When the first attempt failed. */
  since: Date;
  /** The latest failure's message, e.g. `Error creating: pods "…" is forbidden: …`. */
  message: string;
}

export class ClusterApi {
  readonly namespace: string;
  readonly batch: BatchV1Api;
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;

  constructor(kc: KubeConfig, namespace: string) {
    this.namespace = namespace;
    this.batch = kc.makeApiClient(BatchV1Api);
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
  }

  // --- informer lists ------------------------------------------------------------------------

  paths() {
    const ns = this.namespace;
    return {
      spindleSets: `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${SPINDLESET.plural}`,
      jobs: `/apis/batch/v1/namespaces/${ns}/jobs`,
      pods: `/api/v1/namespaces/${ns}/pods`,
      nodes: "/api/v1/nodes",
      events: `/api/v1/namespaces/${ns}/events`,
    };
  }

  managedSelector(): string {
    return selectorString(managedSelector());
  }

  /** One cheap call that fails the way every later one would (see preflightError). */
  async preflight(): Promise<void> {
    try {
      await this.custom.listNamespacedCustomObject({ ...CR, namespace: this.namespace, limit: 1 });
    } catch (err) {
      throw preflightError(err, this.namespace);
    }
    // A namespaced list answers an empty list for a namespace that does not exist, and every
    // create would then fail with 404. A 403 here only means the Role does not grant reading
    // the namespace object (the list above already proved access): nothing to say then.
    try {
      await this.core.readNamespace({ name: this.namespace });
    } catch (err) {
      if (statusCode(err) === 404)
        throw new PreflightError(
          `namespace ${this.namespace} does not exist: create it (kubectl create namespace ${this.namespace}) or set kubernetes.namespace to the one Loom should use`,
          { cause: err },
        );
    }
  }

  listSpindleSets(each?: (obj: SpindleSet) => SpindleSet): Promise<ListResult<SpindleSet>> {
    return paged(
      async (page) =>
        (await this.custom.listNamespacedCustomObject({
          ...CR,
          namespace: this.namespace,
          ...page,
        })) as ListResult<SpindleSet>,
      each,
    );
  }

  listJobs(each?: (obj: V1Job) => V1Job): Promise<ListResult<V1Job>> {
    return paged(
      async (page) =>
        (await this.batch.listNamespacedJob({
          namespace: this.namespace,
          labelSelector: this.managedSelector(),
          ...page,
        })) as ListResult<V1Job>,
      each,
    );
  }

  listPods(each?: (obj: V1Pod) => V1Pod): Promise<ListResult<V1Pod>> {
    return paged(
      async (page) =>
        (await this.core.listNamespacedPod({
          namespace: this.namespace,
          labelSelector: this.managedSelector(),
          ...page,
        })) as ListResult<V1Pod>,
      each,
    );
  }

  async listNodes(): Promise<ListResult<V1Node>> {
    return (await this.core.listNode({})) as ListResult<V1Node>;
  }

  // --- reads -----------------------------------------------------------------------------------

  getJob(name: string): Promise<V1Job | undefined> {
    return orNotFound(this.batch.readNamespacedJob({ name, namespace: this.namespace }));
  }

  getSecret(name: string): Promise<V1Secret | undefined> {
    return orNotFound(this.core.readNamespacedSecret({ name, namespace: this.namespace }));
  }

  /**
   * The namespace's FailedCreate events: the job controller records there (and only there) why
   * it cannot create a Job's pod. One shared informer watches them (controller.ts) instead of a
   * list per reconcile.
   */
  async listFailedCreates(): Promise<ListResult<CoreV1Event>> {
    return (await this.core.listNamespacedEvent({
      namespace: this.namespace,
      fieldSelector: FAILED_CREATE,
    })) as ListResult<CoreV1Event>;
  }

  getSpindleSet(name: string): Promise<SpindleSet | undefined> {
    return orNotFound(this.custom.getNamespacedCustomObject({ ...CR, namespace: this.namespace, name }));
  }

  // --- writes ----------------------------------------------------------------------------------

  createJob(job: V1Job): Promise<"created" | "exists"> {
    return orExists(this.batch.createNamespacedJob({ namespace: this.namespace, body: job }));
  }

  createConfigMap(configMap: V1ConfigMap): Promise<"created" | "exists"> {
    return orExists(this.core.createNamespacedConfigMap({ namespace: this.namespace, body: configMap }));
  }

  /** Background propagation: the Job goes at once, the garbage collector takes its pods. */
  async deleteJob(name: string, uid?: string): Promise<boolean> {
    return gone(
      this.batch.deleteNamespacedJob({
        name,
        namespace: this.namespace,
        body: { propagationPolicy: "Background", ...(uid && { preconditions: { uid } }) },
      }),
    );
  }

  /** True if this call deleted it, false if it was already gone or replaced. */
  deleteKind(kind: "Pod" | "Secret" | "ConfigMap" | "Job", name: string, uid: string): Promise<boolean> {
    const args = { name, namespace: this.namespace, body: { preconditions: { uid } } };
    if (kind === "Pod") return gone(this.core.deleteNamespacedPod(args));
    if (kind === "Secret") return gone(this.core.deleteNamespacedSecret(args));
    if (kind === "ConfigMap") return gone(this.core.deleteNamespacedConfigMap(args));
    return this.deleteJob(name, uid);
  }

  deleteSpindleSet(name: string, uid: string): Promise<boolean> {
    return gone(
      this.custom.deleteNamespacedCustomObject({
        ...CR,
        namespace: this.namespace,
        name,
        propagationPolicy: "Background",
        body: { preconditions: { uid } },
      }),
    );
  }

  /**
   * Replaces the status, guarded by the resourceVersion the status was computed from: a 409
   * means someone wrote in between, and the reconcile runs again on a fresh read.
   */
  async patchStatus(name: string, resourceVersion: string, status: SpindleSetStatus): Promise<SpindleSet> {
    return (await this.custom.patchNamespacedCustomObjectStatus(
      { ...CR, namespace: this.namespace, name, body: { metadata: { resourceVersion }, status } },
      MERGE,
    )) as SpindleSet;
  }
}

/** Objects per list page: one response (and its JSON text) is never the whole namespace. */
export const LIST_PAGE = 500;

/**
 * A list in pages of LIST_PAGE (the API server's `limit`/`continue`), joined: the memory a list
 * needs at its peak is one page's response, not all of them at once — provided `each` (an
 * informer's cache transform) slims every item as its page arrives; the full objects of a
 * page are garbage before the next page is asked for. The result has the last page's
 * resourceVersion, which is the list's (the pages are one consistent snapshot).
 */
export async function paged<T>(
  list: (page: {
    limit: number;
    _continue?: string;
  }) => Promise<ListResult<T> & { metadata?: { _continue?: string; continue?: string } }>,
  each: (item: T) => T = (item) => item,
): Promise<ListResult<T>> {
  const items: T[] = [];
  let next: string | undefined;
  let resourceVersion: string | undefined;
  do {
    const page = await list({ limit: LIST_PAGE, ...(next && { _continue: next }) });
    for (const item of page.items) items.push(each(item));
    resourceVersion = page.metadata?.resourceVersion;
    // Typed lists name it `_continue`; custom objects come as plain JSON (`continue`).
    next = page.metadata?._continue || page.metadata?.continue || undefined;
  } while (next);
  return { items, ...(resourceVersion !== undefined && { metadata: { resourceVersion } }) };
}

async function orNotFound<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    if (statusCode(err) === 404) return undefined;
    throw err;
  }
}

async function orExists(call: Promise<unknown>): Promise<"created" | "exists"> {
  try {
    await call;
    return "created";
  } catch (err) {
    if (statusCode(err) === 409) return "exists";
    throw err;
  }
}

/** A delete whose object is already gone (404), or was replaced (409 precondition), is done. */
async function gone(call: Promise<unknown>): Promise<boolean> {
  try {
    await call;
    return true;
  } catch (err) {
    const code = statusCode(err);
    if (code !== 404 && code !== 409) throw err;
    return false;
  }
}
