/**
 * The environment a step sees: framework variables (spec §7.1) and their composition with the
 * workflow, secrets and the step (spec §7.2). Entries are ordered; a later entry wins.
 */
import type { EnvEntry } from "../runner/protocol.ts";
import { shortRefName } from "./match.ts";
import type { EnvVar, TriggerMetadata } from "./types.ts";

export interface PipelineRef {
  knot: string;
  rkey: string;
}

/** `at://did:web:<knot>/sh.tangled.pipeline/<rkey>` (spec §1.6, §7.1). */
export function pipelineUri(p: PipelineRef): string {
  return `at://did:web:${p.knot}/sh.tangled.pipeline/${p.rkey}`;
}

/**
 * `https://<knot>/<did>/<name>`; in dev mode `http://` and, for steps that run in a container,
 * the host `localhost` becomes `host.docker.internal` (spec §6.4, §7.1). Only a host that *is*
 * localhost is rewritten, so a knot named e.g. `mylocalhost.dev` keeps its name. Steps that run
 * on the host itself (`stepsOnHost`: the local engine) keep `localhost`, which is where the knot is.
 */
export function repoUrl(repo: TriggerMetadata["repo"], dev: boolean, stepsOnHost = false): string {
  if (!dev) return `https://${repo.knot}/${repo.did}/${repo.repo}`;
  const host = stepsOnHost ? repo.knot : repo.knot.replace(/^localhost(?=$|:)/, "host.docker.internal");
  return `http://${host}/${repo.did}/${repo.repo}`;
}

/**
 * Gen2 (spec §9): the repo is addressed by its DID, `https://<knot>/<repoDid>`, and dev mode does
 * not rewrite localhost. Undefined without a repo DID (Gen1 triggers).
 */
export function gen2RepoUrl(repo: TriggerMetadata["repo"], dev: boolean): string | undefined {
  if (repo.repoDid === undefined) return undefined;
  return `${dev ? "http" : "https"}://${repo.knot}/${repo.repoDid}`;
}

/** Spec §7.1, in the order listed there; `gen2` adds the variables of spec §9. */
export function frameworkEnv(
  trigger: TriggerMetadata,
  pipeline: PipelineRef,
  dev: boolean,
  gen2 = false,
  stepsOnHost = false,
): EnvVar[] {
  const env: EnvVar[] = [];
  const set = (name: string, value: string) => env.push({ name, value });
  set("CI", "true");
  set("TANGLED_PIPELINE_ID", pipelineUri(pipeline));
  const repo = trigger.repo;
  if (gen2) set("TANGLED_PIPELINE_KIND", trigger.kind);
  if (repo !== undefined) {
    set("TANGLED_REPO_KNOT", repo.knot);
    set("TANGLED_REPO_DID", repo.did);
    set("TANGLED_REPO_NAME", repo.repo);
    set("TANGLED_REPO_DEFAULT_BRANCH", repo.defaultBranch);
    const gen2Url = gen2 ? gen2RepoUrl(repo, dev) : undefined;
    if (gen2Url !== undefined) set("TANGLED_REPO_REPO_DID", repo.repoDid ?? "");
    set("TANGLED_REPO_URL", gen2Url ?? repoUrl(repo, dev, stepsOnHost));
  }
  if (trigger.push !== undefined) {
    const { ref, newSha } = trigger.push;
    set("TANGLED_REF", ref);
    set("TANGLED_REF_NAME", shortRefName(ref));
    set("TANGLED_REF_TYPE", ref.startsWith("refs/tags/") ? "tag" : "branch");
    set("TANGLED_SHA", newSha);
    set("TANGLED_COMMIT_SHA", newSha);
  }
  if (trigger.pullRequest !== undefined) {
    const pr = trigger.pullRequest;
    set("TANGLED_REF", `refs/heads/${pr.sourceBranch}`);
    set("TANGLED_REF_NAME", pr.sourceBranch);
    set("TANGLED_REF_TYPE", "branch");
    set("TANGLED_SHA", pr.sourceSha);
    set("TANGLED_COMMIT_SHA", pr.sourceSha);
    set("TANGLED_PR_SOURCE_BRANCH", pr.sourceBranch);
    set("TANGLED_PR_TARGET_BRANCH", pr.targetBranch);
    set("TANGLED_PR_SOURCE_SHA", pr.sourceSha);
    set("TANGLED_PR_ACTION", pr.action);
  }
  const manual = trigger.manual;
  if (gen2 && manual?.sha !== undefined) {
    if (manual.ref !== undefined) {
      set("TANGLED_REF", manual.ref);
      set("TANGLED_REF_NAME", shortRefName(manual.ref));
      set("TANGLED_REF_TYPE", manual.ref.startsWith("refs/tags/") ? "tag" : "branch");
    }
    set("TANGLED_SHA", manual.sha);
    set("TANGLED_COMMIT_SHA", manual.sha);
  }
  for (const input of manual?.inputs ?? []) {
    set(`TANGLED_INPUT_${input.key.toUpperCase()}`, input.value);
  }
  return env;
}

/** The PATH the nixery engine sets (spec §7.2), with HOME's nix profile first. */
export function nixeryPath(homeDir: string): string {
  return `${homeDir}/.nix-profile/bin:/nix/var/nix/profiles/default/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
}

export interface StepEnvInput {
  /** Workflow `environment` with the framework variables already copied over it. */
  workflowEnv: readonly EnvVar[];
  secretKeys: readonly string[];
  stepEnv: readonly EnvVar[];
  homeDir: string;
  /** Set for nixery only: an arbitrary image's own PATH must be inherited. */
  path: string | undefined;
}

/** Spec §7.2: workflow+framework → secrets → step → HOME → PATH; later entries win. */
export function composeStepEnv(input: StepEnvInput): EnvEntry[] {
  const env: EnvEntry[] = input.workflowEnv.map(({ name, value }) => ({ name, value }));
  for (const key of input.secretKeys) env.push({ name: key, secret: key });
  for (const { name, value } of input.stepEnv) env.push({ name, value });
  env.push({ name: "HOME", value: input.homeDir });
  if (input.path !== undefined) env.push({ name: "PATH", value: input.path });
  return env;
}

/**
 * The workflow environment as a map with the framework variables copied over it (spec §7.2:
 * users cannot override `CI`/`TANGLED_*` at workflow level). First-seen order is kept; a later
 * duplicate replaces the value in place.
 */
export function mergeWorkflowEnv(workflowEnv: readonly EnvVar[], framework: readonly EnvVar[]): EnvVar[] {
  const merged = new Map<string, string>();
  for (const { name, value } of workflowEnv) merged.set(name, value);
  for (const { name, value } of framework) merged.set(name, value);
  return [...merged].map(([name, value]) => ({ name, value }));
}
