/**
 * Everything one workflow needs, planned in one pure call: the profile, the Job, and the
 * RunnerSpec ConfigMap only when the spec is too large to ride in the Job (runner-spec.ts); the
 * reconciler then creates the ConfigMap before the Job. A workflow that can never run comes back
 * as a reason + message.
 */
import type { V1ConfigMap, V1Job } from "@kubernetes/client-node";
import { ANNOTATIONS, BuildError, type SpindleSetRef } from "../../api/contract/index.ts";
import type { Reason, SpindleSetSpec } from "../../api/v1alpha1/spindleset.ts";
import type { ControllerConfig } from "../config.ts";
import { buildJob } from "./job.ts";
import { type NodeLabels, selectProfile } from "./profile.ts";
import { buildRunnerSpec, buildRunnerSpecConfigMap, INLINE_SPEC_MAX_BYTES } from "./runner-spec.ts";

export type WorkflowPlan =
  | { ok: true; jobName: string; profile: string; configMap?: V1ConfigMap; job: V1Job }
  | { ok: false; reason: Reason; message: string };

export interface PlanInput {
  owner: SpindleSetRef;
  spec: SpindleSetSpec;
  workflowName: string;
  /** The cluster's nodes, for the profile check; undefined skips it. */
  nodes: readonly NodeLabels[] | undefined;
  config: ControllerConfig;
}

export function planWorkflow(input: PlanInput): WorkflowPlan {
  const { spec, config, owner } = input;
  const workflow = spec.workflows.find((wf) => wf.name === input.workflowName);
  if (!workflow)
    return { ok: false, reason: "InvalidSpec", message: `no workflow named ${input.workflowName}` };
  const choice = selectProfile(config.template.resourceProfiles, workflow.architecture, input.nodes);
  if (!choice.ok) return choice;
  try {
    const runnerSpec = buildRunnerSpec(workflow, config);
    const json = JSON.stringify(runnerSpec);
    const inline = Buffer.byteLength(json) <= INLINE_SPEC_MAX_BYTES;
    const job = buildJob({
      owner,
      pipeline: spec.pipeline,
      workflow,
      secretName: spec.secretRef?.name,
      profile: choice,
      config,
      ...(inline && { inlineSpec: json }),
    });
    // The chosen profile travels on the Job, so the status can name it whenever it is written.
    job.metadata!.annotations = { ...job.metadata!.annotations, [ANNOTATIONS.profile]: choice.label };
    const jobName = job.metadata!.name!;
    if (inline) return { ok: true, jobName, profile: choice.label, job };
    const configMap = buildRunnerSpecConfigMap({
      owner,
      pipeline: spec.pipeline,
      workflow,
      jobName,
      spec: runnerSpec,
    });
    return { ok: true, jobName, profile: choice.label, configMap, job };
  } catch (err) {
    if (err instanceof BuildError) return { ok: false, reason: err.reason, message: err.message };
    throw err;
  }
}
