/**
 * The Kubernetes API group Loom owns. `loom.tangled.sh` names the project (Loom) under the forge
 * it serves; it is distinct from any group Tangled itself publishes and from the Go Loom's
 * `loom.j5t.io`, so both operators can share a cluster. Changing it is a breaking change: every
 * stored SpindleSet, the CRD file name and the RBAC rules follow it.
 */
export const GROUP = "loom.tangled.sh";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

export const SPINDLESET = {
  kind: "SpindleSet",
  listKind: "SpindleSetList",
  plural: "spindlesets",
  singular: "spindleset",
  shortNames: ["ss"],
  /** `kubectl get loom` lists every Loom kind. */
  categories: ["loom"],
} as const;

/** Prefix of Loom's labels and annotations; same domain as the API group. */
export const LABEL_PREFIX = GROUP;
