/**
 * The config file (`LOOM_CONFIG`, default /etc/loom/config.yaml) and how a setting is resolved
 * from the environment, the file, the fallbacks and its default.
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { ConfigError } from "../errors.ts";
import { FIELDS, type Field } from "./fields.ts";
import { kubernetesSection } from "./kubernetes.ts";
import { Expected } from "./parsers.ts";

export type Env = Readonly<Record<string, string | undefined>>;

export const DEFAULT_CONFIG_PATH = "/etc/loom/config.yaml";

export interface LoadConfigOptions {
  /** Where the config file is looked for when `LOOM_CONFIG` is unset (tests point elsewhere). */
  defaultConfigPath?: string;
  /**
   * Values by environment name that sit under the environment AND the config file, above the
   * built-in defaults: `loom serve --dev`'s defaults (`devDefaults`), so a config file still wins.
   */
  fallbacks?: Readonly<Record<string, string>>;
}

// The file's shape: known sections are objects, unknown top-level keys are refused so typos
// surface at start-up. Values themselves are checked by the field parsers above.
const fileSchema = z
  .object({
    server: z.record(z.string(), z.unknown()).optional(),
    secrets: z.record(z.string(), z.unknown()).optional(),
    nixery: z.record(z.string(), z.unknown()).optional(),
    engine: z.unknown().optional(),
    kubernetes: z.unknown().optional(),
    // The original Loom's spelling of kubernetes.maxConcurrentJobs and kubernetes.template.
    maxConcurrentJobs: z.unknown().optional(),
    template: z.unknown().optional(),
  })
  .strict();

const KNOWN_FILE_KEYS = new Set(
  Object.values(FIELDS)
    .map((x) => x.file)
    .filter((x): x is string => x !== null),
);

export function lookup(obj: unknown, dotted: string): unknown {
  let cur: unknown = obj;
  for (const part of dotted.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Lists dotted leaf keys of the file's sections, to reject misspelt ones. */
function leafKeys(obj: unknown, prefix: string): string[] {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) return [prefix];
  return Object.entries(obj).flatMap(([k, v]) =>
    prefix === "secrets" && k === "openbao" ? leafKeys(v, `${prefix}.${k}`) : [`${prefix}.${k}`],
  );
}

/** What sits under the environment: the config file, then the fallbacks. */
export interface Layers {
  path: string | null;
  data: unknown;
  fallbacks: Readonly<Record<string, string>>;
}

export function readConfigFile(env: Env, opts: LoadConfigOptions): Omit<Layers, "fallbacks"> {
  const explicit = env.LOOM_CONFIG?.trim() || undefined;
  const path = explicit ?? opts.defaultConfigPath ?? DEFAULT_CONFIG_PATH;
  let source: string;
  try {
    source = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Only the default location may be absent: an explicit path that is missing is a mistake.
    if (explicit === undefined && code === "ENOENT") return { path: null, data: {} };
    throw new ConfigError("LOOM_CONFIG", `cannot read config file ${path} (${code ?? "error"})`, {
      cause: err,
    });
  }
  let data: unknown;
  try {
    data = parseYaml(source) ?? {};
  } catch (err) {
    throw new ConfigError("LOOM_CONFIG", `config file ${path} is not valid YAML: ${(err as Error).message}`);
  }
  const shape = fileSchema.safeParse(data);
  if (!shape.success) {
    const issue = shape.error.issues[0];
    const where = issue?.path.join(".") || (issue?.code === "unrecognized_keys" ? issue.keys.join(", ") : "");
    throw new ConfigError(`${path}${where ? `: ${where}` : ""}`, issue?.message ?? "unexpected content");
  }
  for (const section of ["server", "secrets", "nixery"] as const) {
    for (const key of shape.data[section] ? leafKeys(shape.data[section], section) : []) {
      if (!KNOWN_FILE_KEYS.has(key)) throw new ConfigError(`${path}: ${key}`, "unknown setting");
    }
  }
  return { path, data: shape.data };
}

export function resolve<T>(field: Field<T>, env: Env, file: Layers): T | undefined {
  const fromEnv = env[field.env];
  let raw: unknown;
  let source = field.env;
  if (fromEnv !== undefined && fromEnv.trim() !== "") {
    raw = fromEnv;
  } else if (field.file !== null && lookup(file.data, field.file) !== undefined) {
    raw = lookup(file.data, field.file);
    source = `${field.env} (${file.path}: ${field.file})`;
  } else if (file.fallbacks[field.env] !== undefined) {
    raw = file.fallbacks[field.env];
  } else if (field.default !== undefined) {
    raw = field.default;
  } else {
    return undefined;
  }
  try {
    return field.parse(raw);
  } catch (err) {
    if (err instanceof Expected) throw new ConfigError(source, err.message);
    throw err;
  }
}

/** Whether a setting is given (environment, file or fallbacks) rather than left to its default. */
export function isSet(field: Field<unknown>, env: Env, file: Layers): boolean {
  const fromEnv = env[field.env];
  if (fromEnv !== undefined && fromEnv.trim() !== "") return true;
  if (field.file !== null && lookup(file.data, field.file) !== undefined) return true;
  return file.fallbacks[field.env] !== undefined;
}

export function required<T>(field: Field<T>, env: Env, file: Layers): T {
  const v = resolve(field, env, file);
  if (v === undefined) {
    const alt = field.file ? ` (or ${field.file} in the config file)` : "";
    throw new ConfigError(field.env, `is required${alt}`);
  }
  return v;
}

/**
 * The config file's `kubernetes` section alone (with the original Loom's top-level keys merged
 * in, see kubernetes.ts), for `loom controller` (which needs no spindle settings): the same file
 * lookup and checks as `loadConfig` (LOOM_CONFIG, unknown keys refused). `topLevel` (present when
 * not empty) lists the keys that came from the top level, for parseControllerConfig's messages.
 */
export function loadKubernetesSection(
  env: Env,
  opts: LoadConfigOptions = {},
): { configFile: string | null; kubernetes: unknown; topLevel?: string[] } {
  const file = readConfigFile(env, opts);
  const { section, topLevel } = kubernetesSection(file.data, file.path, env);
  return { configFile: file.path, kubernetes: section, ...(topLevel.length > 0 && { topLevel }) };
}
