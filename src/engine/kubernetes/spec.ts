/**
 * EngineRunPlan → the SpindleSet's pieces, pure. The engine sees one workflow at a time, and a
 * plan does not carry the trigger record, so:
 *
 * - `trigger` (a copy for people and audits, spec §1.5) is rebuilt from the TANGLED_* variables
 *   resolve put into every step's environment. Fields the environment does not carry (a push's
 *   old SHA) are empty strings.
 * - `clone` comes from the plan's clone data: the clone-repo init container fetches the repo
 *   (secrets never visible to it, no git needed in the workflow image) and the plan's clone step
 *   (`clone.stepId`) only shows its log. A plan without clone data (skip, or the error step)
 *   gets `clone.skip`, and its steps run as they are.
 */
import type { SpindleSetSpecInput, Trigger, WorkflowSpec } from "../../api/v1alpha1/spindleset.ts";
import { ARCHITECTURES, parseSpindleSetSpec } from "../../api/v1alpha1/spindleset.ts";
import type { EngineRunPlan } from "../engine.ts";

type WorkflowSpecInput = SpindleSetSpecInput["workflows"][number];

/** The value of a literal env entry the plan's first step sets (resolve gives every step the same). */
function planEnv(plan: EngineRunPlan): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of plan.steps[0]?.env ?? []) if ("value" in entry) out.set(entry.name, entry.value);
  return out;
}

export function triggerFromPlan(plan: EngineRunPlan): Trigger {
  const env = planEnv(plan);
  const get = (name: string) => env.get(name) ?? "";
  const repo = {
    knot: env.get("TANGLED_REPO_KNOT") ?? plan.pipeline.knot,
    did: get("TANGLED_REPO_DID"),
    repo: get("TANGLED_REPO_NAME"),
    ...(env.has("TANGLED_REPO_DEFAULT_BRANCH") && { defaultBranch: get("TANGLED_REPO_DEFAULT_BRANCH") }),
  };
  const declared = env.get("TANGLED_PIPELINE_KIND");
  const kind: Trigger["kind"] =
    declared === "push" || declared === "pull_request" || declared === "manual"
      ? declared
      : env.has("TANGLED_PR_ACTION")
        ? "pull_request"
        : env.has("TANGLED_REF") && env.has("TANGLED_SHA")
          ? "push"
          : "manual";
  switch (kind) {
    case "push":
      return { kind, repo, push: { ref: get("TANGLED_REF"), oldSha: "", newSha: get("TANGLED_SHA") } };
    case "pull_request":
      return {
        kind,
        repo,
        pullRequest: {
          sourceBranch: get("TANGLED_PR_SOURCE_BRANCH"),
          targetBranch: get("TANGLED_PR_TARGET_BRANCH"),
          sourceSha: get("TANGLED_PR_SOURCE_SHA"),
          action: get("TANGLED_PR_ACTION"),
        },
      };
    default: {
      const inputs = [...env]
        .filter(([name]) => name.startsWith("TANGLED_INPUT_"))
        .map(([name, value]) => ({ key: name.slice("TANGLED_INPUT_".length).toLowerCase(), value }));
      return { kind, repo, manual: { inputs } };
    }
  }
}

/** The plan as one `spec.workflows[]` entry. Throws a plain Error when the plan cannot be one. */
export function workflowSpecFromPlan(plan: EngineRunPlan): WorkflowSpecInput {
  if (!(ARCHITECTURES as readonly string[]).includes(plan.architecture)) {
    throw new Error(`architecture ${JSON.stringify(plan.architecture)} is not a Kubernetes architecture`);
  }
  return {
    name: plan.workflowName,
    wid: plan.wid,
    image: plan.image,
    architecture: plan.architecture as WorkflowSpec["architecture"],
    timeoutSeconds: plan.timeoutSeconds,
    secretKeys: [...new Set(plan.secretKeys)].sort(),
    clone: plan.clone
      ? {
          skip: false,
          url: plan.clone.url,
          depth: Math.max(1, plan.clone.depth),
          submodules: plan.clone.submodules,
          stepId: plan.clone.stepId,
          ...(plan.clone.sha !== undefined ? { sha: plan.clone.sha } : {}),
        }
      : { skip: true },
    ...(plan.microvm !== undefined && {
      microvm: {
        image: plan.microvm.image,
        services: [...plan.microvm.services],
        virtualisation: [...plan.microvm.virtualisation],
        ...(plan.microvm.postgresql !== undefined && {
          postgresql: {
            ensureDatabases: [...plan.microvm.postgresql.ensureDatabases],
            ensureUsers: plan.microvm.postgresql.ensureUsers.map((u) => ({ ...u })),
          },
        }),
        ...(plan.microvm.redis !== undefined && { redis: { port: plan.microvm.redis.port } }),
        ...(plan.microvm.mysql !== undefined && { mysql: structuredClone(plan.microvm.mysql) }),
      },
    }),
    steps: plan.steps.map((s) => ({
      id: s.id,
      name: s.name,
      command: s.command,
      kind: s.kind,
      env: s.env.map((e) => ({ ...e })),
    })),
  };
}

/**
 * The spec of a new run holding `plan` alone, checked with the API's own schema (cross-field
 * rules included), so a plan the controller would call InvalidSpec is refused at start.
 * Returns the issues instead of throwing.
 */
export function runSpecFromPlan(
  plan: EngineRunPlan,
  withSecrets: boolean,
): { ok: true; spec: Omit<SpindleSetSpecInput, "secretRef"> } | { ok: false; error: string } {
  let workflow: WorkflowSpecInput;
  try {
    workflow = workflowSpecFromPlan(plan);
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
  const spec = {
    pipeline: { knot: plan.pipeline.knot, rkey: plan.pipeline.rkey },
    trigger: triggerFromPlan(plan),
    cancel: false,
    workflows: [workflow],
  };
  const checked = parseSpindleSetSpec({
    ...spec,
    ...(withSecrets && { secretRef: { name: "check" } }),
  });
  return checked.ok ? { ok: true, spec } : { ok: false, error: checked.issues.join("; ") };
}
