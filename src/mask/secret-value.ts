/**
 * What a secret value may be: the one rule, used wherever a value comes in (the spindle's
 * `addSecret`, `loom run --secret` / `--secrets-file`) and where a stored one is loaded for a run.
 *
 * - No NUL byte: a value travels to the steps in an environment variable, which cannot hold one.
 * - At least MIN_SECRET_CHARS characters, trailing line breaks not counted (the masker also masks
 *   the value without them): every occurrence of a secret in a log becomes `***`, so a one-letter
 *   secret masks that letter everywhere and the gaps spell it out. Four characters is also the
 *   shortest pattern the masker's fast search handles.
 * - Not only whitespace: every run of those spaces, tabs or line breaks in a log would be masked.
 *
 * Messages name the rule, never the value.
 */

/** Shortest secret value accepted, in characters (code points). */
export const MIN_SECRET_CHARS = 4;

export type SecretValueProblem = "nul" | "short" | "blank";

const PROBLEMS: Record<SecretValueProblem, string> = {
  nul: "must not contain a NUL byte",
  short: `must be at least ${MIN_SECRET_CHARS} characters long, not counting trailing line breaks (shorter values cannot be masked safely in logs)`,
  blank: "must not be only whitespace (it would be masked wherever such whitespace is printed)",
};

/** Why `value` cannot be a secret, or undefined when it can. */
export function secretValueProblem(value: string): SecretValueProblem | undefined {
  if (value.includes("\0")) return "nul";
  const trimmed = value.replace(/[\r\n]+$/, "");
  // Counts code points without building an array for long values.
  let chars = 0;
  for (const _ of trimmed) if (++chars >= MIN_SECRET_CHARS) break;
  if (chars < MIN_SECRET_CHARS) return "short";
  return /\S/u.test(trimmed) ? undefined : "blank";
}

/** The rule broken, as the end of a sentence that starts with "value" or a key's name. */
export function describeSecretValueProblem(problem: SecretValueProblem): string {
  return PROBLEMS[problem];
}
