/** Repo secrets for `loom run`: `--secret KEY=VALUE` (repeatable) and `--secrets-file` (dotenv). */
import { readFile } from "node:fs/promises";
import { parseEnv } from "node:util";
import { describeSecretValueProblem, secretValueProblem } from "../mask/secret-value.ts";

const KEY = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A `--secret` argument of the form KEY=VALUE with a valid KEY (checked before anything runs). */
export function isSecretPair(pair: string): boolean {
  const eq = pair.indexOf("=");
  return eq > 0 && KEY.test(pair.slice(0, eq));
}

export async function collectSecrets(
  pairs: readonly string[],
  file: string | undefined,
): Promise<Map<string, string>> {
  const secrets = new Map<string, string>();
  if (file !== undefined) {
    // Node's own dotenv parser (the format `node --env-file` reads), so quoting rules match Node's.
    const parsed = parseEnv(await readFile(file, "utf8"));
    for (const [key, value] of Object.entries(parsed)) add(secrets, key, value ?? "", file);
  }
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    // Never echo the pair itself: its value is a secret.
    if (eq <= 0) throw new Error("--secret takes KEY=VALUE");
    add(secrets, pair.slice(0, eq), pair.slice(eq + 1), "--secret");
  }
  return secrets;
}

function add(secrets: Map<string, string>, key: string, value: string, from: string): void {
  if (!KEY.test(key)) throw new Error(`${from}: secret key "${key}" is not a valid identifier`);
  // The same rule as the spindle's addSecret; the message names the key, never the value.
  const problem = secretValueProblem(value);
  if (problem !== undefined) throw new Error(`${from}: secret ${key} ${describeSecretValueProblem(problem)}`);
  secrets.set(key, value);
}
