/**
 * The SpindleSet object for a pipeline run, as the spindle's Kubernetes engine creates it:
 * deterministic name from (knot, rkey), the run's labels, knot and rkey verbatim in annotations,
 * and a spec validated (with defaults filled in) before it ever reaches the API server.
 *
 * The engine starts workflows one at a time (src/engine/engine.ts), so a run's SpindleSet may be
 * created with its first workflow and have the others added later: `spec.workflows` is a
 * list-map keyed by name, which server-side apply merges entry by entry.
 */
import { API_VERSION, SPINDLESET } from "../v1alpha1/group.ts";
import { parseSpindleSetSpec, type SpindleSet, type SpindleSetSpecInput } from "../v1alpha1/spindleset.ts";
import { BuildError } from "./errors.ts";
import { runAnnotations, runLabels } from "./labels.ts";
import { secretName, spindleSetName } from "./names.ts";

export interface SpindleSetInput {
  namespace: string;
  /** The spec; `secretRef` is filled in with the run's Secret name when `withSecrets` is set. */
  spec: Omit<SpindleSetSpecInput, "secretRef">;
  /** Whether the run has repo secrets (a Secret built by buildRunSecret). */
  withSecrets: boolean;
}

export function buildSpindleSet(input: SpindleSetInput): SpindleSet {
  const name = spindleSetName(input.spec.pipeline);
  const parsed = parseSpindleSetSpec({
    ...input.spec,
    ...(input.withSecrets && { secretRef: { name: secretName(name) } }),
  });
  if (!parsed.ok) throw new BuildError("InvalidSpec", parsed.issues.join("; "));
  return {
    apiVersion: API_VERSION,
    kind: SPINDLESET.kind,
    metadata: {
      name,
      namespace: input.namespace,
      labels: runLabels(name),
      annotations: runAnnotations(parsed.value.pipeline),
    },
    spec: parsed.value,
  };
}
