/**
 * A pipeline workflow + its trigger → the frozen RunPlan: every step (system, then user) and the
 * exact environment of each (spec §2.3, §7). Pure: the same inputs give the same plan.
 */
import type { RunnerStep } from "../runner/protocol.ts";
import { type CloneFetch, cloneStep } from "./clone.ts";
import { composeStepEnv, frameworkEnv, mergeWorkflowEnv, nixeryPath, type PipelineRef } from "./env.ts";
import {
  DEFAULT_MICROVM_IMAGE,
  devShellPackages,
  devShellStep,
  type MicrovmServiceOptions,
  microvmServiceOptions,
  nixConfig,
  virtualisationEnabled,
} from "./microvm.ts";
import {
  type Architecture,
  CONFIGURE_NIX_STEP,
  DEFAULT_NIXERY_HOST,
  installStep,
  nixeryImage,
} from "./nixery.ts";
import { parseWorkflow } from "./parse.ts";
import { DEFAULT_LIMITS, type SourceLimits } from "./source.ts";
import type { EnvVar, PipelineWorkflow, TriggerMetadata, Workflow } from "./types.ts";

export type Engine = "kubernetes" | "nixery" | "microvm";
export const ENGINES: readonly Engine[] = ["kubernetes", "nixery", "microvm"];
export const ARCHITECTURES: readonly Architecture[] = ["amd64", "arm64"];

export interface ResolveOptions {
  /** The pipeline's knot (the stream it came from) and record key. */
  pipeline: PipelineRef;
  /** Names of the repo's secrets; values never enter a plan. */
  secretKeys?: readonly string[];
  /** Default `/tangled/home` (spec §6.2). */
  homeDir?: string;
  /** Default `nixery.tangled.sh` (spec §6.4). */
  nixeryHost?: string;
  /** Architecture when the workflow names none. Default `amd64`. */
  defaultArchitecture?: Architecture;
  /** Dev mode: http clone URLs, `localhost` → `host.docker.internal` (spec §6.4) unless `stepsOnHost`. */
  dev?: boolean;
  /**
   * The engine runs steps on the host (the local engine), not in a container: `localhost` is the
   * knot itself there, so dev mode does not rewrite it. Default false.
   */
  stepsOnHost?: boolean;
  /** Replaces the clone URL, e.g. a local path for `loom run`. */
  cloneUrl?: string;
  /** Gen2 variables and repo-DID clone URL (spec §9). Default off. */
  gen2?: boolean;
  /** Budget for all steps. Default 300 s (upstream's 5m). */
  timeoutSeconds?: number;
  limits?: SourceLimits;
}

export interface RunPlan {
  pipeline: PipelineRef;
  workflowName: string;
  /** `normalize(knot)-rkey-normalize(name)` (spec §4.3). */
  wid: string;
  engine: Engine;
  image: string;
  architecture: Architecture;
  steps: RunnerStep[];
  secretKeys: string[];
  timeoutSeconds: number;
  /** `engine: microvm` only: what the engine maps (image name, services, virtualisation). */
  microvm?: MicrovmPlan;
  /**
   * The clone the system clone step performs, as data, with that step's id; absent when the
   * workflow skips cloning or its clone step is the error step. Engines that clone outside the
   * image (Kubernetes' clone-repo init container) use it; others just run the step.
   */
  clone?: CloneFetch & { stepId: number };
}

/**
 * What a microvm workflow asks of the engine beyond its steps. `image` is a name the operator
 * maps to an OCI image (Kubernetes: `microvm.images`); services and virtualisation are the
 * workflow's, enabled ones only, for the engine to run or refuse by name.
 */
export interface MicrovmPlan extends MicrovmServiceOptions {
  image: string;
  /** Names of the enabled `services`, in file order. */
  services: string[];
  /** Names of the enabled `virtualisation` entries (`docker`), in file order. */
  virtualisation: string[];
}

export type ResolveResult = { ok: true; plan: RunPlan } | { ok: false; error: string };

export const DEFAULT_HOME = "/tangled/home";
export const DEFAULT_TIMEOUT_SECONDS = 300;

/** Replaces every character outside `[a-zA-Z0-9_.-]` with `-` (spec §4.3). */
export function normalizeIdPart(s: string): string {
  return s.replace(/[^a-zA-Z0-9_.-]/g, "-");
}

/** The workflow id used for log files, labels and rows (spec §4.3). */
export function workflowId(knot: string, rkey: string, name: string): string {
  return `${normalizeIdPart(knot)}-${rkey}-${normalizeIdPart(name)}`;
}

export function resolveWorkflow(
  workflow: PipelineWorkflow,
  trigger: TriggerMetadata,
  opts: ResolveOptions,
): ResolveResult {
  const engine = workflow.engine;
  if (!(ENGINES as readonly string[]).includes(engine)) return fail(`unknown engine "${engine}"`);
  // The engine parses `raw` itself (spec §2: a second, independent parse).
  const parsed = parseWorkflow(workflow.name, workflow.raw, opts.limits ?? DEFAULT_LIMITS);
  const first = parsed.errors[0] ?? parsed.engineErrors[0];
  if (parsed.workflow === undefined || first !== undefined) {
    const d = first ?? { line: 1, column: 1, message: "unreadable workflow" };
    return fail(`${workflow.name}:${d.line}:${d.column}: ${d.message}`);
  }
  const wf = parsed.workflow;
  const arch = wf.architecture === "" ? (opts.defaultArchitecture ?? "amd64") : wf.architecture;
  if (!(ARCHITECTURES as readonly string[]).includes(arch)) {
    return fail(`architecture must be amd64 or arm64, not "${arch}"`);
  }
  const homeDir = opts.homeDir ?? DEFAULT_HOME;
  const image =
    engine === "kubernetes"
      ? wf.image
      : engine === "microvm"
        ? wf.image || DEFAULT_MICROVM_IMAGE
        : nixeryEngineImage(wf, opts, arch as Architecture);
  if (engine === "kubernetes" && image === "") return fail(`engine "kubernetes" requires "image"`);
  if (engine === "nixery" && wf.dependencies.form === "list") {
    return fail("engine nixery needs dependencies as a map of registry to packages, not a list");
  }
  if (engine === "microvm" && wf.dependencies.form === "map") {
    return fail("engine microvm needs dependencies as a flat list, not a map of registry to packages");
  }
  const serviceOptions = microvmServiceOptions(engine === "microvm" ? wf.microvm.services : []);
  if (!serviceOptions.ok) {
    const { pos, error } = serviceOptions;
    return fail(`${workflow.name}:${pos.line}:${pos.column}: ${error}`);
  }
  const workflowEnv = mergeWorkflowEnv(
    wf.environment,
    frameworkEnv(trigger, opts.pipeline, opts.dev ?? false, opts.gen2, opts.stepsOnHost),
  );
  const secretKeys = [...(opts.secretKeys ?? [])];
  const path = engine === "nixery" ? nixeryPath(homeDir) : undefined;
  // microvm: Nix settings for every step but the clone, the dev shell for every step after it.
  const devShell =
    engine === "microvm"
      ? devShellStep(
          devShellPackages(
            wf.dependencies.form === "list" ? wf.dependencies.packages : [],
            wf.microvm.virtualisation,
          ),
          wf.microvm.registry,
          homeDir,
        )
      : undefined;
  const engineEnv = (kind: RunnerStep["kind"]): EnvVar[] => {
    if (engine !== "microvm") return [];
    const out = [{ name: "NIX_CONFIG", value: nixConfig(wf.microvm.caches) }];
    if (kind === "user" && devShell !== undefined) out.push({ name: "BASH_ENV", value: devShell.envFile });
    return out;
  };
  const env = (stepEnv: readonly EnvVar[], extra: readonly EnvVar[] = []) => [
    ...composeStepEnv({ workflowEnv, secretKeys, stepEnv, homeDir, path }),
    ...extra,
  ];

  const steps: RunnerStep[] = [];
  const add = (
    name: string,
    command: string,
    kind: RunnerStep["kind"],
    stepEnv: readonly EnvVar[],
    extra: readonly EnvVar[] = [],
  ) => steps.push({ id: steps.length, name, command, kind, env: env(stepEnv, extra) });
  if (engine === "nixery") add(CONFIGURE_NIX_STEP.name, CONFIGURE_NIX_STEP.command, "system", []);
  const clone = cloneStep(trigger, workflow.clone, {
    dev: opts.dev ?? false,
    gen2: opts.gen2,
    cloneUrl: opts.cloneUrl,
    stepsOnHost: opts.stepsOnHost,
  });
  const cloneStepId = steps.length;
  add(clone.name, clone.command, "system", clone.command === "" ? [] : QUIET_GIT);
  if (engine === "nixery" && wf.dependencies.form === "map") {
    const install = installStep(wf.dependencies.registries);
    if (install !== undefined) add(install.name, install.command, "system", install.environment);
  }
  if (devShell !== undefined)
    add(devShell.name, devShell.command, "system", devShell.environment, engineEnv("system"));
  for (const step of wf.steps) add(step.name, step.command, "user", step.environment, engineEnv("user"));

  return {
    ok: true,
    plan: {
      pipeline: { knot: opts.pipeline.knot, rkey: opts.pipeline.rkey },
      workflowName: workflow.name,
      wid: workflowId(opts.pipeline.knot, opts.pipeline.rkey, workflow.name),
      engine: engine as Engine,
      image,
      architecture: arch as Architecture,
      steps,
      secretKeys,
      timeoutSeconds: opts.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS,
      ...(engine === "microvm" && {
        microvm: {
          image,
          services: wf.microvm.services.filter((s) => s.enable).map((s) => s.name),
          virtualisation: wf.microvm.virtualisation
            .filter((v) => virtualisationEnabled(v.value))
            .map((v) => v.name),
          ...serviceOptions.options,
        },
      }),
      ...(clone.fetch ? { clone: { ...clone.fetch, stepId: cloneStepId } } : {}),
    },
  };
}

/**
 * The clone step's commands are upstream's, word for word (spec §2.3); these variables only
 * silence git's hints (initial branch name, detached HEAD), about 25 lines in every run's log.
 * GIT_ADVICE needs git 2.46+, GIT_CONFIG_COUNT 2.31+; older git ignores both.
 */
const QUIET_GIT: readonly EnvVar[] = [
  { name: "GIT_ADVICE", value: "0" },
  { name: "GIT_CONFIG_COUNT", value: "2" },
  { name: "GIT_CONFIG_KEY_0", value: "advice.detachedHead" },
  { name: "GIT_CONFIG_VALUE_0", value: "false" },
  { name: "GIT_CONFIG_KEY_1", value: "init.defaultBranch" },
  { name: "GIT_CONFIG_VALUE_1", value: "main" },
];

function nixeryEngineImage(wf: Workflow, opts: ResolveOptions, arch: Architecture): string {
  const registries = wf.dependencies.form === "map" ? wf.dependencies.registries : [];
  return nixeryImage(opts.nixeryHost ?? DEFAULT_NIXERY_HOST, registries, arch);
}

function fail(error: string): ResolveResult {
  return { ok: false, error };
}
