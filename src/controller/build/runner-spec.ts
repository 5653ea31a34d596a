/**
 * The RunnerSpec of one workflow, and how it reaches the pod as the file the runner takes as its
 * argument (/loom/spec/spec.json).
 *
 * Up to INLINE_SPEC_MAX_BYTES (nearly every workflow) it rides in the Job itself: an annotation
 * on the pod template, which a downward API volume writes out as the file. One write per
 * workflow fewer than a ConfigMap, and nothing to create before the Job. Annotations are capped
 * at 256 KiB for all of them together, so a larger step list (up to 1 MiB) comes in an
 * immutable ConfigMap named after the Job, created before it (a pod whose ConfigMap is missing
 * waits in ContainerCreating rather than failing). Either way the spec never holds a secret
 * value: step environments only *name* secret keys, whose values the runner reads from
 * `LOOM_SECRET_<KEY>`.
 *
 * The clone: the `clone-repo` init container fetches the repository before the runner starts
 * (so the git image, not the workflow image, needs git, and secrets are never in its
 * environment). The workflow's own system clone step (`clone.stepId`) stays in the list so step
 * ids and the log's control lines match Tangled's step list, but its command is replaced by one
 * that prints the init container's clone log.
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import {
  BuildError,
  ownerReference,
  POD_PATHS,
  runnerSpecConfigMapName,
  type SpindleSetRef,
  workflowAnnotations,
  workflowLabels,
} from "../../api/contract/index.ts";
import type { WorkflowSpec } from "../../api/v1alpha1/spindleset.ts";
import { RUNNER_PROTOCOL_VERSION, type RunnerSpec } from "../../runner/protocol.ts";
import type { ControllerConfig } from "../config.ts";
import { MICROVM_PATHS } from "./microvm.ts";

export const SPEC_KEY = "spec.json";

/** A ConfigMap's data is capped at 1 MiB; leave room for metadata. */
const MAX_SPEC_BYTES = 1_000_000;

/** Specs up to this size ride in the pod template's annotation (all annotations: 256 KiB). */
export const INLINE_SPEC_MAX_BYTES = 128 * 1024;

/**
 * The step budget a workflow really gets: its own timeout, capped by the operator's
 * maxWorkflowSeconds, which is also the budget of a workflow that sets none (0). The runner
 * enforces it (a clean `timeout` with the step that ran out); the Job's deadline adds the setup
 * grace on top, as a backstop.
 */
export function effectiveTimeoutSeconds(workflow: WorkflowSpec, config: ControllerConfig): number {
  const max = config.timeouts.maxWorkflowSeconds;
  return workflow.timeoutSeconds > 0 ? Math.min(workflow.timeoutSeconds, max) : max;
}

export function buildRunnerSpec(workflow: WorkflowSpec, config: ControllerConfig): RunnerSpec {
  const replaceClone = !workflow.clone.skip && workflow.clone.stepId !== undefined;
  return {
    version: RUNNER_PROTOCOL_VERSION,
    workspace: workflow.microvm !== undefined ? MICROVM_PATHS.workspace : POD_PATHS.workspace,
    timeoutSeconds: effectiveTimeoutSeconds(workflow, config),
    heartbeatSeconds: config.timeouts.heartbeatSeconds,
    steps: workflow.steps.map((step) => ({
      id: step.id,
      name: step.name,
      command: replaceClone && step.id === workflow.clone.stepId ? `cat ${POD_PATHS.cloneLog}` : step.command,
      kind: step.kind,
      env: step.env.map((entry) => ({ ...entry })),
    })),
  };
}

export interface RunnerSpecConfigMapInput {
  owner: SpindleSetRef;
  pipeline: { knot: string; rkey: string };
  workflow: WorkflowSpec;
  jobName: string;
  spec: RunnerSpec;
}

export function buildRunnerSpecConfigMap(input: RunnerSpecConfigMapInput): V1ConfigMap {
  const json = JSON.stringify(input.spec);
  if (Buffer.byteLength(json) > MAX_SPEC_BYTES) {
    throw new BuildError(
      "InvalidSpec",
      `workflow ${input.workflow.name}: its steps take ${Buffer.byteLength(json)} bytes, more than a ConfigMap holds`,
    );
  }
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: runnerSpecConfigMapName(input.jobName),
      namespace: input.owner.namespace,
      labels: workflowLabels(input.owner.name, input.workflow.wid),
      annotations: workflowAnnotations(input.pipeline, input.workflow),
      ownerReferences: [ownerReference(input.owner)],
    },
    immutable: true,
    data: { [SPEC_KEY]: json },
  };
}
