/**
 * The local engine with each workflow in its image, through the Docker or Podman command line:
 * the same contract as the Kubernetes Job. The repository is cloned before the runner starts
 * (as the pod's clone-repo init container does, with the same script), the runner bundle of the
 * workflow's architecture is mounted read-only, and the runner runs as the image's entrypoint
 * on `--platform linux/<architecture>`. The run directory is mounted at its own path, so the
 * spec, workspace and HOME paths the local engine writes mean the same inside the container.
 * Secret values reach the container by name only (`--env LOOM_SECRET_X` takes the value from the
 * CLI's own environment): never on a command line.
 *
 * Unverified here: the machine that wrote this has a `docker` CLI but no daemon, so only the
 * command lines (and that the real CLI parses them) are checked, not a run.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { cloneScript } from "../../api/contract/index.ts";
import type { RunnerStep } from "../../runner/protocol.ts";
import type { Architecture, RunPlan } from "../../workflow/index.ts";
import type { EngineRunPlan } from "../engine.ts";
import type { RunDir } from "./workspace.ts";

const exec = promisify(execFile);

export type ContainerCli = "docker" | "podman";
export const CONTAINER_CLIS: readonly ContainerCli[] = ["docker", "podman"];

/** Where the runner bundle is mounted in the container. */
export const BUNDLE_MOUNT = "/opt/loom-runner";

export interface ContainerCommandOptions {
  cli: ContainerCli;
  /** The container's name (so a leftover can be removed by it). */
  name: string;
  image: string;
  architecture: Architecture;
  /** Mounted at the same path, read-write: run directories (spec, workspace, home). */
  runsDir: string;
  /** The runner bundle of `architecture` (dist/runner-bundle-<arch>). */
  bundleDir: string;
  /** The user the steps run as (docker: --user; podman: --userns=keep-id keeps the caller's). */
  uid: number;
  gid: number;
  secretKeys: readonly string[];
  /**
   * The CLI's own environment (DOCKER_HOST, XDG_RUNTIME_DIR…, and the user's HOME, where its
   * configuration lives), set through env(1): the local engine gives the runner process the
   * run's HOME, which must not become the CLI's.
   */
  cliEnv: Readonly<Record<string, string>>;
  /** More `run` arguments before the entrypoint (microvm.ts: the copied /nix). */
  extraArgs?: readonly string[];
}

/**
 * `env K=V… docker run …` up to the runner; the local engine appends the spec path. The steps'
 * HOME comes from the spec, so only the secrets' names cross as `--env`.
 */
export function containerCommand(o: ContainerCommandOptions): string[] {
  const user = o.cli === "podman" ? ["--userns=keep-id"] : ["--user", `${o.uid}:${o.gid}`];
  const env = Object.entries(o.cliEnv).map(([k, v]) => `${k}=${v}`);
  return [
    "env",
    ...env,
    o.cli,
    "run",
    "--rm",
    "--init",
    "--name",
    o.name,
    "--platform",
    `linux/${o.architecture}`,
    ...user,
    "--volume",
    `${o.runsDir}:${o.runsDir}`,
    "--volume",
    `${o.bundleDir}:${BUNDLE_MOUNT}:ro`,
    ...o.secretKeys.flatMap((k) => ["--env", `LOOM_SECRET_${k}`]),
    ...(o.extraArgs ?? []),
    "--entrypoint",
    `${BUNDLE_MOUNT}/loom-runner`,
    o.image,
  ];
}

/** A container name from a workflow id: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, as both CLIs require. */
export function containerName(wid: string): string {
  return `loom-${wid.replace(/[^a-zA-Z0-9_.-]/g, "-")}`.slice(0, 200);
}

/**
 * The plan as the container runs it: the clone step prints the log of the clone done before the
 * runner started (the Kubernetes runner spec does the same), so step ids and output stay.
 */
export function containerPlan(plan: RunPlan): RunPlan {
  const clone = plan.clone;
  if (clone === undefined) return plan;
  const steps = plan.steps.map(
    (s): RunnerStep => (s.id === clone.stepId ? { ...s, command: "cat ../clone.log" } : s),
  );
  return { ...plan, steps };
}

/** Clones the plan's repository into the run's workspace on this host, as clone-repo does. */
export async function cloneBeforeRun(
  plan: Pick<EngineRunPlan, "clone">,
  dir: RunDir,
  env: Record<string, string>,
): Promise<void> {
  const clone = plan.clone;
  if (clone === undefined) return;
  const script = cloneScript({
    home: dir.home,
    workspace: dir.workspace,
    setup: dir.root,
    cloneLog: join(dir.root, "clone.log"),
  });
  await exec("sh", ["-c", script], {
    env: {
      ...env,
      LOOM_CLONE_URL: clone.url,
      ...(clone.sha !== undefined ? { LOOM_CLONE_SHA: clone.sha } : {}),
      LOOM_CLONE_DEPTH: String(Math.max(1, clone.depth)),
      LOOM_CLONE_SUBMODULES: String(clone.submodules),
    },
  }).catch((err: { stdout?: string; message: string }) => {
    throw new Error(`clone failed: ${String(err.stdout ?? "").trim() || err.message}`);
  });
}

/** Whether `cli` can run containers here: its daemon (docker) or its machine (podman) answers. */
export async function probeContainerCli(
  cli: ContainerCli,
  env: Record<string, string>,
): Promise<{ ok: true } | { ok: false; reason: string }> {
  const args =
    cli === "docker"
      ? ["version", "--format", "{{.Server.Version}}"]
      : ["info", "--format", "{{.Host.Arch}}"];
  try {
    await exec(cli, args, { env, timeout: 10_000 });
    return { ok: true };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") return { ok: false, reason: `${cli} is not on PATH` };
    const said =
      String(e.stderr ?? "")
        .trim()
        .split("\n")
        .at(-1) ?? "";
    return { ok: false, reason: said || e.message };
  }
}
