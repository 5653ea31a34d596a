/**
 * Which of a repo's secrets a workflow run gets (pure; the scheduler loads and logs).
 *
 * A plan names every secret of the repo (spec §7.2 puts them all in each step's environment), but
 * a workflow only needs the ones it refers to. A secret the run cannot have — its value breaks
 * the rule of src/mask/secret-value.ts (stored before the rule existed: a NUL cannot travel in
 * an environment, a value under four characters cannot be masked), it was removed after the
 * pipeline was queued, or the secrets backend did not answer — fails only the workflows that
 * refer to it, with an error naming it; the others run without it.
 *
 * "Refers to": a name under which the secret reaches the steps appears as a whole word in a
 * step's command or in a plain environment value (`$TOKEN`, `${TOKEN}`, `env.TOKEN`, `"TOKEN"`).
 * A program that reads the variable without the workflow naming it runs without it, as it would
 * if the secret did not exist; the server log says which secrets were left out.
 */
import type { EngineRunPlan } from "../../engine/engine.ts";
import { describeSecretValueProblem, secretValueProblem } from "../../mask/secret-value.ts";

export interface LoadedSecrets {
  values: ReadonlyMap<string, string>;
  /** The provider failed: every secret is missing, for that reason. */
  failed: boolean;
}

export interface UnusableSecret {
  key: string;
  /** Why, never the value: ends a sentence that starts with "secret KEY". */
  reason: string;
  /** A step of this workflow refers to it (so the run fails). */
  referenced: boolean;
}

export interface RunSecrets {
  /** The plan without environment entries for unusable secrets. */
  plan: EngineRunPlan;
  /** The values the run gets: usable ones named by the plan. */
  secrets: Map<string, string>;
  unusable: UnusableSecret[];
  /** Set when a referenced secret is unusable: the workflow fails with this, before starting. */
  error?: string;
}

export function secretsForRun(plan: EngineRunPlan, loaded: LoadedSecrets): RunSecrets {
  const secrets = new Map<string, string>();
  const unusable: UnusableSecret[] = [];
  const bad = new Set<string>();
  for (const key of new Set(plan.secretKeys)) {
    const value = loaded.values.get(key);
    let reason: string | undefined;
    if (value === undefined) {
      reason = loaded.failed
        ? "could not be loaded (the secrets backend failed)"
        : "no longer exists (removed after the pipeline was queued)";
    } else {
      const problem = secretValueProblem(value);
      if (problem !== undefined)
        reason = `has a stored value that cannot be used: a value ${describeSecretValueProblem(problem)}; replace it (removeSecret, then addSecret)`;
    }
    if (reason === undefined) {
      secrets.set(key, value as string);
      continue;
    }
    bad.add(key);
    unusable.push({ key, reason, referenced: refersTo(plan, key) });
  }
  if (bad.size === 0) return { plan, secrets, unusable };
  const out: EngineRunPlan = {
    ...plan,
    secretKeys: plan.secretKeys.filter((k) => !bad.has(k)),
    steps: plan.steps.map((s) => ({ ...s, env: s.env.filter((e) => !("secret" in e && bad.has(e.secret))) })),
  };
  const referenced = unusable.filter((u) => u.referenced);
  if (referenced.length === 0) return { plan: out, secrets, unusable };
  const error = referenced.map((u) => `secret ${u.key} ${u.reason}`).join("; ");
  return { plan: out, secrets, unusable, error };
}

/** Whether a name under which secret `key` reaches the steps appears in a command or a value. */
function refersTo(plan: EngineRunPlan, key: string): boolean {
  const names = new Set([key]);
  for (const s of plan.steps) for (const e of s.env) if ("secret" in e && e.secret === key) names.add(e.name);
  const words = [...names].map((n) => n.replace(/[^A-Za-z0-9_]/g, "\\$&")).join("|");
  const re = new RegExp(`(?<![A-Za-z0-9_])(?:${words})(?![A-Za-z0-9_])`);
  return plan.steps.some((s) => re.test(s.command) || s.env.some((e) => "value" in e && re.test(e.value)));
}
