import { accessSync, constants, statSync } from "node:fs";
import { type EnvEntry, RUNNER_ENV } from "./protocol.ts";

export type Env = Record<string, string>;

/**
 * The launcher moves an image's NODE_OPTIONS here so that it cannot break the runner's own
 * Node; steps get it back under its real name.
 */
export const SAVED_NODE_OPTIONS = "LOOM_IMAGE_NODE_OPTIONS";

/** Secret values by key, from `LOOM_SECRET_<KEY>` variables of the runner's environment. */
export function secretsFromEnv(env: NodeJS.ProcessEnv): Map<string, string> {
  const secrets = new Map<string, string>();
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith(RUNNER_ENV.secretPrefix) && value !== undefined) {
      secrets.set(name.slice(RUNNER_ENV.secretPrefix.length), value);
    }
  }
  return secrets;
}

/** What every step inherits: the runner's environment (the image's ENV) minus every LOOM_*. */
export function baseEnv(env: NodeJS.ProcessEnv): Env {
  const out: Env = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || name.startsWith(RUNNER_ENV.internalPrefix)) continue;
    out[name] = value;
  }
  const saved = env[SAVED_NODE_OPTIONS];
  if (saved !== undefined) out.NODE_OPTIONS = saved;
  return out;
}

/** Secret keys a list of entries needs that `secrets` does not hold. */
export function missingSecrets(entries: EnvEntry[], secrets: Map<string, string>): string[] {
  return entries.flatMap((e) => ("secret" in e && !secrets.has(e.secret) ? [e.secret] : []));
}

/** A step's environment: the base, then its entries in order (a later entry wins). */
export function stepEnv(base: Env, entries: EnvEntry[], secrets: Map<string, string>): Env {
  const env: Env = { ...base };
  for (const e of entries) {
    const value = "secret" in e ? secrets.get(e.secret) : e.value;
    if (value !== undefined) env[e.name] = value;
  }
  return env;
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The shell for a step: the first `bash` on the step's PATH (steps are written for bash, as in
 * Tangled's nixery engine), else `/bin/sh`, which every supported image has.
 */
export function pickShell(
  path: string | undefined,
  isExec: (p: string) => boolean = isExecutableFile,
): string {
  for (const dir of (path ?? "").split(":")) {
    if (!dir.startsWith("/")) continue; // a relative PATH entry depends on the cwd: not trusted
    const candidate = `${dir.endsWith("/") ? dir.slice(0, -1) : dir}/bash`;
    if (isExec(candidate)) return candidate;
  }
  return "/bin/sh";
}
