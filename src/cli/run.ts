/**
 * `loom run`: compile the repository's workflows for a local trigger and run the matching ones
 * with the local engine, showing live output (or Tangled LogLine JSON). Workflows run one at a
 * time, or `jobs` at a time with each line led by its workflow's name.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { WorkflowOutcome } from "../engine/engine.ts";
import {
  CONTAINER_CLIS,
  type ContainerCli,
  cloneBeforeRun,
  containerCommand,
  containerName,
  containerPlan,
  probeContainerCli,
} from "../engine/local/container.ts";
import { LocalEngine } from "../engine/local/engine.ts";
import { copyImageNix, microvmRunnerArgs, nixStoreDir, removeNixDir } from "../engine/local/microvm.ts";
import { encodeLogLine, type LogLine } from "../protocol/logline.ts";
import type { LogSink } from "../relay/sink.ts";
import {
  compileWorkflows,
  type Diagnostic,
  formatDiagnostic,
  parseWorkflow,
  type RunPlan,
  resolveWorkflow,
  type TriggerKind,
  WORKFLOWS_DIR,
  type Workflow,
} from "../workflow/index.ts";
import { openRepo, uncommittedChanges, workflowFilesAt, worktreeCommit } from "./git.ts";
import { containerCaveats, hostArchitecture, hostCaveats, LOOM_ROOT } from "./host.ts";
import { microvmContainerImage } from "./microvm.ts";
import { HumanRenderer, type WorkflowSummary } from "./render.ts";
import { collectSecrets } from "./secrets.ts";
import { LOCAL_KNOT, localTrigger } from "./trigger.ts";

export interface RunOptions {
  dir: string;
  event: TriggerKind;
  ref?: string;
  targetBranch?: string;
  workflows: string[];
  secrets: string[];
  secretsFile?: string;
  json: boolean;
  timeoutSeconds?: number;
  /** Workflows run at once (default 1). */
  jobs?: number;
  /** Run the working tree (uncommitted changes included) instead of the commit. */
  worktree?: boolean;
  /**
   * Where steps run: `host`, `docker` or `podman` (each workflow in its image), or `auto`
   * (default): a container CLI that can run containers here, else the host.
   */
  engine?: "auto" | "host" | ContainerCli;
  /** Colour in the human output (default: when stdout is a terminal). */
  colour?: boolean;
  /** The environment steps inherit (the user's PATH, so local tools are found). */
  env: Record<string, string>;
  /** What a container CLI needs of the user's environment (HOME, DOCKER_HOST, XDG_RUNTIME_DIR…). */
  containerEnv?: Record<string, string>;
}

export async function runCommand(opts: RunOptions): Promise<number> {
  let repo = await openRepo(opts.dir, opts.ref);
  const secrets = await collectSecrets(opts.secrets, opts.secretsFile);
  const baseDir = await mkdtemp(join(tmpdir(), "loom-run-"));
  try {
    if (opts.worktree === true) {
      const sha = await worktreeCommit(repo, join(baseDir, "index"));
      process.stderr.write(
        `note: running the working tree (uncommitted changes included) on ${repo.sha.slice(0, 12)}\n`,
      );
      repo = { ...repo, sha };
    } else if (opts.ref === undefined) {
      const changes = await uncommittedChanges(repo);
      if (changes > 0) {
        process.stderr.write(
          `note: running commit ${repo.sha.slice(0, 12)}; ${changes} uncommitted change${changes === 1 ? " is" : "s are"} left out (--worktree runs them)\n`,
        );
      }
    }
    return await runRepo(opts, repo, secrets, baseDir);
  } finally {
    await rm(baseDir, { recursive: true, force: true });
  }
}

async function runRepo(
  opts: RunOptions,
  repo: Awaited<ReturnType<typeof openRepo>>,
  secrets: Map<string, string>,
  baseDir: string,
): Promise<number> {
  const trigger = localTrigger(repo, opts.event, opts.targetBranch);
  const files = await workflowFilesAt(repo);
  if (files.length === 0) {
    // loom run runs what is committed; say so when the only workflows are uncommitted ones.
    const local = await readdir(join(repo.root, WORKFLOWS_DIR)).catch(() => [] as string[]);
    const where =
      local.length > 0 && opts.worktree !== true
        ? ` (${WORKFLOWS_DIR}/ has files, but none committed: loom run runs the commit, --worktree the working tree)`
        : "";
    process.stderr.write(
      `warning: no workflow files in ${WORKFLOWS_DIR}/ at ${repo.sha.slice(0, 12)}${where}\n`,
    );
  }
  // Loom compiles the pipeline itself here: a workflow without engine runs as kubernetes.
  const compiled = compileWorkflows(files, trigger, { defaultEngine: "kubernetes" });
  // A typo that leaves the key it meant unset changes what runs: refuse it here.
  const diagnostics = compiled.diagnostics.map(
    (d): Diagnostic => (d.suggestion === undefined ? d : { ...d, severity: "error" }),
  );
  for (const d of diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
  // With --workflow, only the named files' errors stop the run: another broken file does not.
  const named = (file: string) => opts.workflows.length === 0 || opts.workflows.includes(file);
  if (diagnostics.some((d) => d.severity === "error" && named(d.file))) return 1;

  const chosen = (compiled.record?.workflows ?? []).filter((w) => named(w.name));
  for (const name of opts.workflows) {
    if (!chosen.some((w) => w.name === name)) {
      process.stderr.write(`error: workflow ${name} does not exist or does not match this ${opts.event}\n`);
      return 1;
    }
  }
  const rkey = `local${Date.now().toString(36)}`;
  const host = hostArchitecture();
  const runs: { plan: RunPlan; workflow: Workflow }[] = [];
  for (const wf of chosen) {
    const resolved = resolveWorkflow(wf, trigger, {
      pipeline: { knot: LOCAL_KNOT, rkey },
      secretKeys: [...secrets.keys()],
      cloneUrl: pathToFileURL(repo.root).href,
      // Only Gen2 fetches a manual trigger's commit (Gen1 has no manual producer, spec §1.4).
      gen2: opts.event === "manual",
      // A workflow that names no architecture runs on this host's without a word.
      ...(host !== undefined ? { defaultArchitecture: host } : {}),
      ...(opts.timeoutSeconds !== undefined ? { timeoutSeconds: opts.timeoutSeconds } : {}),
    });
    if (!resolved.ok) {
      process.stderr.write(`error: ${wf.name}: ${resolved.error}\n`);
      return 1;
    }
    const workflow = parseWorkflow(wf.name, wf.raw).workflow;
    if (workflow === undefined) throw new Error(`${wf.name}: unreadable after compile`);
    runs.push({ plan: resolved.plan, workflow });
  }

  const cli = runs.length > 0 ? await chooseContainerCli(opts) : undefined;
  if (cli !== undefined) {
    for (const { plan } of runs) {
      if (!existsSync(bundleDir(plan.architecture))) {
        process.stderr.write(
          `error: ${plan.workflowName}: no runner bundle for linux/${plan.architecture} in ${join(LOOM_ROOT, "dist")} (make runner-bundles builds both)\n`,
        );
        return 1;
      }
      const mapped = microvmContainerImage(plan);
      if (!mapped.ok) {
        process.stderr.write(`error: ${plan.workflowName}: ${mapped.message}\n`);
        return 1;
      }
    }
  }
  const jobs = Math.max(1, Math.min(opts.jobs ?? 1, runs.length || 1));
  const renderer = new HumanRenderer(process.stdout, {
    prefix: jobs > 1,
    ...(opts.colour !== undefined ? { colour: opts.colour } : {}),
  });
  const hostEngine = new LocalEngine({ baseDir: join(baseDir, "runs"), env: opts.env, killGraceMs: 3000 });
  let interrupted = false;
  const running = new Map<string, LocalEngine>();
  const onSignal = () => {
    interrupted = true;
    for (const [wid, engine] of running) void engine.cancel(wid, "interrupted");
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const results: WorkflowSummary[] = [];
  const started = Date.now();
  const runOne = async ({ plan: resolved, workflow }: (typeof runs)[number]): Promise<void> => {
    let plan = resolved;
    let engine = hostEngine;
    if (cli === undefined) {
      const caveat = hostCaveats(plan, workflow, opts.env.PATH ?? "", host);
      if (caveat !== undefined) process.stderr.write(`warning: ${caveat}\n`);
    } else {
      const caveat = containerCaveats(resolved, cli);
      if (caveat !== undefined) process.stderr.write(`warning: ${caveat}\n`);
      const mapped = microvmContainerImage(resolved);
      plan = { ...containerPlan(resolved), ...(mapped.ok && { image: mapped.image }) };
      engine = containerEngine(cli, plan, [...secrets.keys()], join(baseDir, "runs"), opts);
    }
    const where = cli === undefined ? "" : ` in ${cli}`;
    if (!opts.json)
      renderer.header(plan.workflowName, `${plan.workflowName} (${plan.engine}, ${plan.image})${where}`);
    const sink = lineSink((line) => {
      if (opts.json) process.stdout.write(`${encodeLogLine(line)}\n`);
      else renderer.line(plan.workflowName, line);
    });
    const t0 = Date.now();
    running.set(plan.wid, engine);
    let outcome: WorkflowOutcome;
    try {
      await engine.start({ plan, secrets, log: sink, onStatus: () => {} });
      outcome = await engine.wait(plan.wid);
      await engine.destroy(plan.wid);
    } finally {
      running.delete(plan.wid);
      if (cli !== undefined) {
        await engine.close();
        // A runner killed after the grace leaves its container: remove it by name.
        await new Promise((resolve) => execFile(cli, ["rm", "-f", containerName(plan.wid)], resolve));
        if (plan.engine === "microvm") await removeNixDir(nixStoreDir(join(baseDir, "runs"), plan.wid));
      }
    }
    if (!opts.json) renderer.finish(plan.workflowName, outcome.failedStep);
    const userSteps = plan.steps.filter((s) => s.kind === "user").length;
    results.push({
      workflow: plan.workflowName,
      status: outcome.status,
      durationMs: Date.now() - t0,
      ...(outcome.error !== undefined ? { error: outcome.error } : {}),
      ...(outcome.exitCode !== null ? { exitCode: outcome.exitCode } : {}),
      ...(userSteps === 0 ? { note: "no steps: nothing but the clone ran" } : {}),
    });
  };
  try {
    const queue = [...runs];
    const worker = async () => {
      for (let next = queue.shift(); next !== undefined && !interrupted; next = queue.shift()) {
        await runOne(next);
      }
    };
    await Promise.all(Array.from({ length: jobs }, worker));
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await hostEngine.close();
  }
  // Verdicts in file order, whichever finished first.
  const order = new Map(runs.map((r, i) => [r.plan.workflowName, i]));
  results.sort((a, b) => (order.get(a.workflow) ?? 0) - (order.get(b.workflow) ?? 0));
  if (!opts.json) renderer.summary(results, results.length > 0 ? Date.now() - started : undefined);
  if (interrupted) return 130;
  return results.every((r) => r.status === "success") ? 0 : 1;
}

/** The container CLI `opts.engine` asks for (refused when it cannot run containers), if any. */
async function chooseContainerCli(opts: RunOptions): Promise<ContainerCli | undefined> {
  const wanted = opts.engine ?? "auto";
  if (wanted === "host") return undefined;
  for (const cli of wanted === "auto" ? CONTAINER_CLIS : [wanted]) {
    const probe = await probeContainerCli(cli, { ...opts.env, ...opts.containerEnv });
    if (probe.ok) return cli;
    if (wanted !== "auto") throw new Error(`${cli} cannot run containers here: ${probe.reason}`);
  }
  return undefined;
}

function bundleDir(arch: string): string {
  return join(LOOM_ROOT, "dist", `runner-bundle-${arch}`);
}

/** A local engine whose runner is the container CLI running the bundle in the plan's image. */
function containerEngine(
  cli: ContainerCli,
  plan: RunPlan,
  secretKeys: string[],
  runsDir: string,
  opts: RunOptions,
): LocalEngine {
  const env = opts.env;
  const uid = process.getuid?.() ?? 1000;
  const gid = process.getgid?.() ?? 1000;
  const cliEnv = opts.containerEnv ?? {};
  // microvm: the image's /nix copied for the workflow's user, mounted at /nix (as the pod does).
  const nixDir = plan.engine === "microvm" ? nixStoreDir(runsDir, plan.wid) : undefined;
  const command = containerCommand({
    cli,
    name: containerName(plan.wid),
    image: plan.image,
    architecture: plan.architecture,
    runsDir,
    bundleDir: bundleDir(plan.architecture),
    uid,
    gid,
    secretKeys,
    cliEnv,
    ...(nixDir !== undefined && { extraArgs: microvmRunnerArgs(nixDir) }),
  });
  return new LocalEngine({
    baseDir: runsDir,
    env,
    killGraceMs: 10_000,
    runnerCommand: command,
    prepare: async (run, dir) => {
      if (nixDir !== undefined) {
        const o = { cli, image: plan.image, architecture: plan.architecture, nixDir, uid, gid, cliEnv };
        await copyImageNix(o);
      }
      await cloneBeforeRun(run.plan, dir, env);
    },
  });
}

function lineSink(write: (line: LogLine) => void): LogSink {
  return { write, backlog: 0, flush: async () => {} };
}
