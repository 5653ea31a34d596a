/**
 * Everything one workflow needs, planned in one pure call: the profile, the RunnerSpec
 * ConfigMap and the Job. The reconciler creates the ConfigMap before the Job (a pod whose
 * ConfigMap is missing waits in ContainerCreating rather than failing, so the order is a
 * nicety, not a race). A workflow that can never run comes back as a reason + message.
 */
import type { V1ConfigMap, V1Job } from "@kubernetes/client-node";
import { BuildError, type SpindleSetRef } from "../../api/contract/index.ts";
import type { Reason, SpindleSetSpec } from "../../api/v1alpha1/spindleset.ts";
import type { ControllerConfig } from "../config.ts";
import { buildJob } from "./job.ts";
import { type NodeLabels, selectProfile } from "./profile.ts";
import { buildRunnerSpec, buildRunnerSpecConfigMap } from "./runner-spec.ts";

export type WorkflowPlan =
  | { ok: true; jobName: string; profile: string; configMap: V1ConfigMap; job: V1Job }
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
    const job = buildJob({
      owner,
      pipeline: spec.pipeline,
      workflow,
      secretName: spec.secretRef?.name,
      profile: choice,
      config,
    });
    const jobName = job.metadata!.name!;
    const configMap = buildRunnerSpecConfigMap({
      owner,
      pipeline: spec.pipeline,
      workflow,
      jobName,
      spec: buildRunnerSpec(workflow, config),
    });
    return { ok: true, jobName, profile: choice.label, configMap, job };
  } catch (err) {
    if (err instanceof BuildError) return { ok: false, reason: err.reason, message: err.message };
    throw err;
  }
}
