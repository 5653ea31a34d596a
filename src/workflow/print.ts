/**
 * A JSON view of a RunPlan for `loom plan --resolve`. A plan holds secret *names* only; the view
 * shows each secret entry as `***` so a printed plan can never be mistaken for holding a value.
 */
import type { RunPlan } from "./resolve.ts";

export type EnvView = { name: string; value: string } | { name: string; secret: string; value: "***" };

export interface PlanView extends Omit<RunPlan, "steps"> {
  steps: { id: number; name: string; kind: string; command: string; env: EnvView[] }[];
}

export function planView(plan: RunPlan): PlanView {
  return {
    ...plan,
    pipeline: { ...plan.pipeline },
    secretKeys: [...plan.secretKeys],
    steps: plan.steps.map((s) => ({
      id: s.id,
      name: s.name,
      kind: s.kind,
      command: s.command,
      env: s.env.map((e) => ("secret" in e ? { name: e.name, secret: e.secret, value: "***" } : { ...e })),
    })),
  };
}
