/**
 * Resource profiles: an ordered list in the config; the first profile that serves the
 * workflow's architecture *and* matches the labels of at least one existing node wins. When none
 * does, the workflow fails at once with NoMatchingProfile and a message saying what was looked
 * for, instead of a pod that stays Pending until some timeout (the multi-arch lesson of the
 * peer systems: Woodpecker #1736, Drone #94).
 */
import type { Architecture } from "../../api/v1alpha1/spindleset.ts";
import type { ResourceProfile } from "../config.ts";

export const ARCH_LABEL = "kubernetes.io/arch";

/** With no profiles configured, one that asks for nothing and only pins the architecture. */
const DEFAULT_PROFILE: ResourceProfile = {
  name: "default",
  nodeSelector: {},
  resources: { requests: {}, limits: {} },
  tolerations: [],
};

/** What profile matching needs of a Node: its name (for messages) and labels. */
export interface NodeLabels {
  name: string;
  labels: Readonly<Record<string, string>>;
}

export type ProfileChoice =
  | {
      ok: true;
      profile: ResourceProfile;
      /** Position in the config, -1 for the built-in default. */
      index: number;
      /** The profile's name, or `#<index>`, for status and logs. */
      label: string;
      /** The profile's nodeSelector plus `kubernetes.io/arch`: what the pod will ask for. */
      nodeSelector: Record<string, string>;
    }
  | { ok: false; reason: "NoMatchingProfile"; message: string };

export function profileLabel(profile: ResourceProfile, index: number): string {
  return profile.name ?? `#${index}`;
}

/** The architecture a profile serves, if it names one (directly or in its nodeSelector). */
export function profileArchitecture(profile: ResourceProfile): string | undefined {
  return profile.architecture ?? profile.nodeSelector[ARCH_LABEL];
}

/** The full node selector a profile implies for a workflow of `architecture`. */
export function effectiveNodeSelector(
  profile: ResourceProfile,
  architecture: Architecture,
): Record<string, string> {
  return { ...profile.nodeSelector, [ARCH_LABEL]: architecture };
}

/** Nodes whose labels include every entry of the profile's effective selector. */
export function profileMatchesNodes(
  profile: ResourceProfile,
  architecture: Architecture,
  nodes: readonly NodeLabels[],
): NodeLabels[] {
  const selector = Object.entries(effectiveNodeSelector(profile, architecture));
  return nodes.filter((node) => selector.every(([key, value]) => node.labels[key] === value));
}

/**
 * Picks the profile for a workflow. `nodes` are the cluster's nodes; pass `undefined` to skip
 * the node check (no permission to list nodes, or a plan made without a cluster).
 */
export function selectProfile(
  profiles: readonly ResourceProfile[],
  architecture: Architecture,
  nodes: readonly NodeLabels[] | undefined,
): ProfileChoice {
  const list =
    profiles.length > 0 ? profiles.map((p, i) => [p, i] as const) : [[DEFAULT_PROFILE, -1] as const];
  const candidates = list.filter(([p]) => {
    const arch = profileArchitecture(p);
    return arch === undefined || arch === architecture;
  });
  if (candidates.length === 0) {
    const offered = list.map(([p, i]) => `${profileLabel(p, i)} (${profileArchitecture(p)})`).join(", ");
    return {
      ok: false,
      reason: "NoMatchingProfile",
      message: `no resource profile serves architecture ${architecture}; configured: ${offered}`,
    };
  }
  for (const [profile, index] of candidates) {
    if (nodes === undefined || profileMatchesNodes(profile, architecture, nodes).length > 0) {
      return {
        ok: true,
        profile,
        index,
        label: profileLabel(profile, index),
        nodeSelector: effectiveNodeSelector(profile, architecture),
      };
    }
  }
  const wanted = candidates
    .map(([p, i]) => `${profileLabel(p, i)} needs ${formatSelector(effectiveNodeSelector(p, architecture))}`)
    .join("; ");
  return {
    ok: false,
    reason: "NoMatchingProfile",
    message: `no node matches a resource profile for ${architecture} (${nodes?.length ?? 0} nodes checked): ${wanted}`,
  };
}

function formatSelector(selector: Record<string, string>): string {
  return `{${Object.entries(selector)
    .map(([k, v]) => `${k}=${v}`)
    .join(", ")}}`;
}
