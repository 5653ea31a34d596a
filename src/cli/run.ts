/**
 * `loom run`: compile the repository's workflows for a local trigger and run the matching ones
 * with the local engine, one after another, showing live output (or Tangled LogLine JSON).
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { WorkflowOutcome } from "../engine/engine.ts";
import { LocalEngine } from "../engine/local/engine.ts";
import { encodeLogLine, type LogLine } from "../protocol/logline.ts";
import type { LogSink } from "../relay/sink.ts";
import {
  compileWorkflows,
  formatDiagnostic,
  type RunPlan,
  resolveWorkflow,
  type TriggerKind,
  WORKFLOWS_DIR,
} from "../workflow/index.ts";
import { openRepo, workflowFilesAt } from "./git.ts";
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
  /** The environment steps inherit (the user's PATH, so local tools are found). */
  env: Record<string, string>;
}

export async function runCommand(opts: RunOptions): Promise<number> {
  const repo = await openRepo(opts.dir, opts.ref);
  const trigger = localTrigger(repo, opts.event, opts.targetBranch);
  const secrets = await collectSecrets(opts.secrets, opts.secretsFile);
  const files = await workflowFilesAt(repo);
  if (files.length === 0) {
    // loom run runs what is committed; say so when the only workflows are uncommitted ones.
    const local = await readdir(join(repo.root, WORKFLOWS_DIR)).catch(() => [] as string[]);
    const where =
      local.length > 0 ? ` (${WORKFLOWS_DIR}/ has files, but none committed: loom run runs the commit)` : "";
    process.stderr.write(
      `warning: no workflow files in ${WORKFLOWS_DIR}/ at ${repo.sha.slice(0, 12)}${where}\n`,
    );
  }
  const { record, diagnostics } = compileWorkflows(files, trigger);
  for (const d of diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
  if (diagnostics.some((d) => d.severity === "error")) return 1;

  const chosen = (record?.workflows ?? []).filter(
    (w) => opts.workflows.length === 0 || opts.workflows.includes(w.name),
  );
  for (const name of opts.workflows) {
    if (!chosen.some((w) => w.name === name)) {
      process.stderr.write(`error: workflow ${name} does not exist or does not match this ${opts.event}\n`);
      return 1;
    }
  }
  const rkey = `local${Date.now().toString(36)}`;
  const plans: RunPlan[] = [];
  for (const wf of chosen) {
    const resolved = resolveWorkflow(wf, trigger, {
      pipeline: { knot: LOCAL_KNOT, rkey },
      secretKeys: [...secrets.keys()],
      cloneUrl: pathToFileURL(repo.root).href,
      // Only Gen2 fetches a manual trigger's commit (Gen1 has no manual producer, spec §1.4).
      gen2: opts.event === "manual",
      ...(opts.timeoutSeconds !== undefined ? { timeoutSeconds: opts.timeoutSeconds } : {}),
    });
    if (!resolved.ok) {
      process.stderr.write(`error: ${wf.name}: ${resolved.error}\n`);
      return 1;
    }
    plans.push(resolved.plan);
  }

  const renderer = new HumanRenderer(process.stdout, { prefix: false });
  const baseDir = await mkdtemp(join(tmpdir(), "loom-run-"));
  const engine = new LocalEngine({ baseDir, env: opts.env, killGraceMs: 3000 });
  let interrupted = false;
  let current: string | undefined;
  const onSignal = () => {
    interrupted = true;
    if (current) void engine.cancel(current, "interrupted");
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const results: WorkflowSummary[] = [];
  try {
    for (const plan of plans) {
      if (interrupted) break;
      if (!opts.json) process.stdout.write(`\n${plan.workflowName} (${plan.engine}, ${plan.image})\n`);
      const sink = lineSink((line) => {
        if (opts.json) process.stdout.write(`${encodeLogLine(line)}\n`);
        else renderer.line(plan.workflowName, line);
      });
      const started = Date.now();
      current = plan.wid;
      await engine.start({ plan, secrets, log: sink, onStatus: () => {} });
      const outcome: WorkflowOutcome = await engine.wait(plan.wid);
      await engine.destroy(plan.wid);
      results.push({
        workflow: plan.workflowName,
        status: outcome.status,
        durationMs: Date.now() - started,
        ...(outcome.error !== undefined ? { error: outcome.error } : {}),
        ...(outcome.exitCode !== null ? { exitCode: outcome.exitCode } : {}),
      });
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await engine.close();
    await rm(baseDir, { recursive: true, force: true });
  }
  if (!opts.json) renderer.summary(results);
  if (interrupted) return 130;
  return results.every((r) => r.status === "success") ? 0 : 1;
}

function lineSink(write: (line: LogLine) => void): LogSink {
  return { write, backlog: 0, flush: async () => {} };
}
