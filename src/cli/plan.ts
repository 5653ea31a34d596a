/**
 * `loom plan`: what a knot would emit for a trigger (the `sh.tangled.pipeline` record) and,
 * with --resolve, what each workflow would run. Reads the working tree of DIR.
 */
import { readFile } from "node:fs/promises";
import {
  compileDirectory,
  formatDiagnostic,
  type PlanView,
  parseTriggerJson,
  planView,
  resolveWorkflow,
} from "../workflow/index.ts";

export interface PlanOptions {
  dir: string;
  triggerFile: string;
  json: boolean;
  resolve: boolean;
  rkey: string;
  dev: boolean;
}

export async function planCommand(opts: PlanOptions): Promise<number> {
  const parsed = parseTriggerJson(await readFile(opts.triggerFile, "utf8"));
  if (!parsed.ok) {
    process.stderr.write(`error: ${opts.triggerFile}: ${parsed.error}\n`);
    return 2;
  }
  const trigger = parsed.trigger;
  const { record, diagnostics } = await compileDirectory(opts.dir, trigger);
  const plans: PlanView[] = [];
  const planErrors: { workflow: string; error: string }[] = [];
  if (opts.resolve && record) {
    for (const wf of record.workflows) {
      const r = resolveWorkflow(wf, trigger, {
        pipeline: { knot: trigger.repo.knot, rkey: opts.rkey },
        dev: opts.dev,
      });
      if (r.ok) plans.push(planView(r.plan));
      else planErrors.push({ workflow: wf.name, error: r.error });
    }
  }
  const failed = diagnostics.some((d) => d.severity === "error") || planErrors.length > 0;
  if (opts.json) {
    const out: Record<string, unknown> = { record: record ?? null, diagnostics };
    if (opts.resolve) Object.assign(out, { plans, planErrors });
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return failed ? 1 : 0;
  }
  for (const d of diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
  for (const e of planErrors) process.stderr.write(`error: ${e.workflow}: ${e.error}\n`);
  if (!record) {
    process.stdout.write("no workflow matches this trigger: a knot would emit no pipeline\n");
  } else {
    process.stdout.write(`${JSON.stringify(record, null, 2)}\n`);
  }
  for (const plan of plans) {
    process.stdout.write(
      `\n# ${plan.workflowName}: ${plan.engine} on ${plan.architecture}, image ${plan.image}\n`,
    );
    for (const step of plan.steps) {
      process.stdout.write(`\nstep ${step.id} (${step.kind}): ${step.name || "(unnamed)"}\n`);
      for (const line of step.command.split("\n")) process.stdout.write(`  $ ${line}\n`);
      for (const e of step.env) process.stdout.write(`  ${e.name}=${e.value}\n`);
    }
  }
  return failed ? 1 : 0;
}
