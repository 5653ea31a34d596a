/**
 * Cache transforms (controller-runtime's `cache.TransformFunc`): what Loom's informers keep of
 * each object, nothing more. A workflow pod or Job as the API server sends it is mostly the pod
 * template (containers, volumes, scripts, the RunnerSpec annotation): tens of kilobytes that no
 * reader of the cache looks at. Each function names the fields its readers use; a new reader of
 * a field adds it here (the transform tests list them).
 *
 *   Job    metadata; spec.activeDeadlineSeconds; status        (controller: observe.ts, capacity)
 *   Pod    metadata less annotations; spec.nodeName; status    (controller: observe.ts; engine:
 *                                                               logs.ts reads name and status)
 *   Event  name; involvedObject; reason, message, timestamps   (controller: podCreateFailureOf)
 *   Node   name and labels                                    (controller: the profile check)
 *
 * Every one drops `managedFields`, and the metadata keeps only what a controller reads (names,
 * uid, resourceVersion, labels, owner references, timestamps, annotations where read).
 */
import type { CoreV1Event, V1Job, V1Node, V1ObjectMeta, V1Pod } from "@kubernetes/client-node";

function meta(m: V1ObjectMeta | undefined, annotations: boolean): V1ObjectMeta {
  if (!m) return {};
  const out: V1ObjectMeta = {};
  if (m.name !== undefined) out.name = m.name;
  if (m.namespace !== undefined) out.namespace = m.namespace;
  if (m.uid !== undefined) out.uid = m.uid;
  if (m.resourceVersion !== undefined) out.resourceVersion = m.resourceVersion;
  if (m.generation !== undefined) out.generation = m.generation;
  if (m.creationTimestamp !== undefined) out.creationTimestamp = m.creationTimestamp;
  if (m.deletionTimestamp !== undefined) out.deletionTimestamp = m.deletionTimestamp;
  if (m.labels !== undefined) out.labels = m.labels;
  if (m.ownerReferences !== undefined) out.ownerReferences = m.ownerReferences;
  if (annotations && m.annotations !== undefined) out.annotations = m.annotations;
  return out;
}

export function slimJob(job: V1Job): V1Job {
  const deadline = job.spec?.activeDeadlineSeconds;
  return {
    metadata: meta(job.metadata, true),
    // The pod template is what the controller built; nobody reads it back from the cache.
    ...(deadline !== undefined && { spec: { activeDeadlineSeconds: deadline } as V1Job["spec"] }),
    ...(job.status && { status: job.status }),
  };
}

export function slimPod(pod: V1Pod): V1Pod {
  const node = pod.spec?.nodeName;
  return {
    metadata: meta(pod.metadata, false),
    ...(node !== undefined && { spec: { nodeName: node } as V1Pod["spec"] }),
    ...(pod.status && { status: pod.status }),
  };
}

export function slimEvent(e: CoreV1Event): CoreV1Event {
  const out: CoreV1Event = {
    metadata: meta(e.metadata, false),
    involvedObject: e.involvedObject,
  };
  if (e.reason !== undefined) out.reason = e.reason;
  if (e.message !== undefined) out.message = e.message;
  if (e.firstTimestamp !== undefined) out.firstTimestamp = e.firstTimestamp;
  if (e.lastTimestamp !== undefined) out.lastTimestamp = e.lastTimestamp;
  if (e.eventTime !== undefined) out.eventTime = e.eventTime;
  if (e.series !== undefined) out.series = e.series;
  return out;
}

export function slimNode(node: V1Node): V1Node {
  const out: V1ObjectMeta = {};
  if (node.metadata?.name !== undefined) out.name = node.metadata.name;
  if (node.metadata?.resourceVersion !== undefined) out.resourceVersion = node.metadata.resourceVersion;
  if (node.metadata?.labels !== undefined) out.labels = node.metadata.labels;
  return { metadata: out };
}
