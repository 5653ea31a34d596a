/**
 * The contract between the spindle's Kubernetes engine (src/engine/kubernetes) and the
 * SpindleSet controller (src/controller): everything both sides must agree on besides the
 * SpindleSet schema itself (../v1alpha1). Both import it from here; neither imports the other.
 *
 *   names.ts       deterministic names: SpindleSet from (knot, rkey), its Secret, Jobs, ConfigMaps
 *   labels.ts      labels and annotations on every object, and the selectors built from them
 *   pod.ts         container names and paths of a workflow's pod (the engine follows `runner`'s log)
 *   scripts.ts     the setup-user and clone-repo scripts (the local engine's container mode runs
 *                  the same clone as a pod)
 *   signals.ts     what the engine tells the controller beyond the spec (runner silence)
 *   spindleset.ts  the SpindleSet object the engine creates (validated before it is sent)
 *   secret.ts      the run's Secret (the only builder that sees secret values), owned by it
 *   owner.ts       the owner reference every child of a run carries
 *   errors.ts      BuildError: a run that cannot become Kubernetes objects, with its reason
 *
 * The engine writes `spec` (and the Secret); the controller writes `status` and the Jobs. The
 * engine finds a workflow's pod by `workflowLabels(spindleSetName(pipeline), wid)` and reads
 * `status.workflows[].jobName` to annotate a silent runner's Job (see signals.ts).
 */
export { BuildError } from "./errors.ts";
export {
  ANNOTATIONS,
  isLabelKey,
  isLabelValue,
  LABELS,
  MANAGED_BY,
  managedSelector,
  runAnnotations,
  runLabels,
  selectorString,
  workflowAnnotations,
  workflowLabels,
} from "./labels.ts";
export {
  hashedName,
  jobName,
  MAX_NAME,
  runnerSpecConfigMapName,
  secretName,
  shortHash,
  slug,
  spindleSetName,
} from "./names.ts";
export { ownerReference, type SpindleSetRef } from "./owner.ts";
export { CONTAINERS, POD_PATHS } from "./pod.ts";
export { cloneScript, RUNNER_UID, type ScriptPaths, setupScript } from "./scripts.ts";
export { buildRunSecret, type RunSecretInput, secretEnvName } from "./secret.ts";
export { RUNNER_SILENT_ANNOTATION } from "./signals.ts";
export { buildSpindleSet, type SpindleSetInput } from "./spindleset.ts";
