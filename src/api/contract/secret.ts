/**
 * The per-run Secret with the repo's secret values. This is the only builder that ever sees a
 * secret value: the spindle's Kubernetes engine calls it with the values it unlocked from its
 * vault, after creating the SpindleSet (whose uid the owner reference needs). Everything else
 * (the SpindleSet spec, the RunnerSpec ConfigMap, the Job) names keys only.
 *
 * Data keys are the secret keys themselves (`APP_PASSWORD`); the Job maps each to the runner's
 * `LOOM_SECRET_<KEY>` variable with a secretKeyRef, so `kubectl describe secret` shows what a
 * workflow can read.
 */
import type { V1Secret } from "@kubernetes/client-node";
import { RUNNER_ENV } from "../../runner/protocol.ts";
import { SECRET_KEY_PATTERN } from "../v1alpha1/spindleset.ts";
import { BuildError } from "./errors.ts";
import { runAnnotations, runLabels } from "./labels.ts";
import { secretName } from "./names.ts";
import { ownerReference, type SpindleSetRef } from "./owner.ts";

const KEY = new RegExp(SECRET_KEY_PATTERN);

/** The runner's environment variable for a secret key. */
export function secretEnvName(key: string): string {
  return `${RUNNER_ENV.secretPrefix}${key}`;
}

export interface RunSecretInput {
  owner: SpindleSetRef;
  pipeline: { knot: string; rkey: string };
  /** key → value, as unlocked from the vault. */
  values: Readonly<Record<string, string>>;
}

export function buildRunSecret(input: RunSecretInput): V1Secret {
  const data: Record<string, string> = {};
  for (const key of Object.keys(input.values).sort()) {
    if (!KEY.test(key))
      throw new BuildError("InvalidSpec", `secret key ${JSON.stringify(key)} is not a valid name`);
    data[key] = Buffer.from(input.values[key]!, "utf8").toString("base64");
  }
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: secretName(input.owner.name),
      namespace: input.owner.namespace,
      labels: runLabels(input.owner.name),
      annotations: runAnnotations(input.pipeline),
      ownerReferences: [ownerReference(input.owner)],
    },
    type: "Opaque",
    // A run's secrets are frozen with the run; immutable also spares the kubelet a watch.
    immutable: true,
    data,
  };
}
