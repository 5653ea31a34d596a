import type { V1OwnerReference } from "@kubernetes/client-node";
import { API_VERSION, SPINDLESET } from "../v1alpha1/group.ts";

/** The parts of a stored SpindleSet its children need. */
export interface SpindleSetRef {
  name: string;
  namespace: string;
  uid: string;
}

/**
 * Children point at their SpindleSet as controller, so deleting the run (or its TTL) takes
 * Jobs, pods, Secret and ConfigMaps with it, and the Job watch maps back to the owner's key.
 * blockOwnerDeletion needs `update` on spindlesets/finalizers (config/rbac/role.yaml).
 */
export function ownerReference(owner: SpindleSetRef): V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: SPINDLESET.kind,
    name: owner.name,
    uid: owner.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}
