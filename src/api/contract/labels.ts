/**
 * Labels and annotations on everything the controller creates, so every lookup is a label
 * selector: all of Loom's objects, one run's objects, one workflow's Job and pod. Values that
 * are not label-safe (knot host names with ports, long wids) are hashed into the label and kept
 * verbatim in an annotation for people to read.
 */
import { LABEL_PREFIX } from "../v1alpha1/group.ts";
import { shortHash } from "./names.ts";

export const LABELS = {
  managedBy: "app.kubernetes.io/managed-by",
  name: "app.kubernetes.io/name",
  component: "app.kubernetes.io/component",
  spindleSet: `${LABEL_PREFIX}/spindleset`,
  /** shortHash(wid): wids can be longer than 63 characters or end in "-" or ".". */
  workflow: `${LABEL_PREFIX}/workflow`,
  /** "true" on a SpindleSet made by hand (config/samples): the sweep of unknown runs keeps it. */
  handMade: `${LABEL_PREFIX}/hand-made`,
} as const;

export const ANNOTATIONS = {
  knot: `${LABEL_PREFIX}/knot`,
  rkey: `${LABEL_PREFIX}/rkey`,
  wid: `${LABEL_PREFIX}/wid`,
  workflowName: `${LABEL_PREFIX}/workflow-name`,
  /**
   * On a workflow's pod template: its RunnerSpec (JSON), which a downward API volume turns into
   * the runner's spec file. Only for specs up to INLINE_SPEC_MAX_BYTES; larger ones come in a
   * ConfigMap (runnerSpecConfigMapName). Never a secret value: steps only name secret keys.
   */
  runnerSpec: `${LABEL_PREFIX}/runner-spec`,
  /** On a workflow's Job: the resource profile the controller chose (status.workflows[].profile). */
  profile: `${LABEL_PREFIX}/profile`,
} as const;

export const MANAGED_BY = "loom";

const NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A label key: `[prefix/]name`, prefix a DNS subdomain ≤ 253, name ≤ 63. */
export function isLabelKey(key: string): boolean {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return false;
  return name.length <= 63 && NAME.test(name);
}

/** A label value: empty, or ≤ 63 of `[A-Za-z0-9_.-]` beginning and ending alphanumeric. */
export function isLabelValue(value: string): boolean {
  return value === "" || (value.length <= 63 && NAME.test(value));
}

/** Selects every object the controller manages. */
export function managedSelector(): Record<string, string> {
  return { [LABELS.managedBy]: MANAGED_BY };
}

/** Labels of one run's objects (the Secret, and the base of the per-workflow labels). */
export function runLabels(spindleSetName: string): Record<string, string> {
  return { ...managedSelector(), [LABELS.name]: "loom", [LABELS.spindleSet]: spindleSetName };
}

/** Labels of one workflow's Job, its pod template and its runner-spec ConfigMap. */
export function workflowLabels(spindleSetName: string, wid: string): Record<string, string> {
  return { ...runLabels(spindleSetName), [LABELS.component]: "workflow", [LABELS.workflow]: shortHash(wid) };
}

/** `key=value,...` for a list call's labelSelector. */
export function selectorString(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(",");
}

export function runAnnotations(pipeline: { knot: string; rkey: string }): Record<string, string> {
  return { [ANNOTATIONS.knot]: pipeline.knot, [ANNOTATIONS.rkey]: pipeline.rkey };
}

export function workflowAnnotations(
  pipeline: { knot: string; rkey: string },
  workflow: { name: string; wid: string },
): Record<string, string> {
  return {
    ...runAnnotations(pipeline),
    [ANNOTATIONS.wid]: workflow.wid,
    [ANNOTATIONS.workflowName]: workflow.name,
  };
}
