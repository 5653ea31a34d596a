/**
 * The part of the config file the Kubernetes engine and `loom controller` read, as one section
 * for the controller's schema (src/controller/config.ts validates it, once).
 *
 * Two spellings mean the same settings:
 *   - Loom's own: `kubernetes.maxConcurrentJobs`, `kubernetes.template.resourceProfiles`, …
 *   - the original Loom's (its README mounts this at /etc/loom/config.yaml): top-level
 *     `maxConcurrentJobs` and `template` (`template.resourceProfiles`: nodeSelector + resources).
 * The top-level keys are merged into the section (`template` key by key). A setting given in both
 * places must be the same, or start-up stops with both places named.
 *
 * Two environment variables fill in what the original's file has no key for, above the file as
 * every environment variable is: `LOOM_RUNNER_IMAGE` (`kubernetes.images.runner`) and
 * `LOOM_NAMESPACE` (`kubernetes.namespace`).
 */
import { isDeepStrictEqual } from "node:util";
import { ConfigError } from "../errors.ts";

/** The original Loom's top-level keys that are read as `kubernetes.<key>`. */
export const ORIGINAL_KEYS = ["maxConcurrentJobs", "template"] as const;

export interface KubernetesSection {
  /** The `kubernetes` section with the top-level keys and the environment merged in; null if none. */
  section: unknown;
  /**
   * Dotted keys of `section` (`maxConcurrentJobs`, `template.resourceProfiles`) whose value came
   * from the file's top level, so that errors name the place the operator wrote.
   */
  topLevel: string[];
}

type Env = Readonly<Record<string, string | undefined>>;
type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);

export function kubernetesSection(data: unknown, path: string | null, env: Env): KubernetesSection {
  const file = isObject(data) ? data : {};
  const own = file.kubernetes ?? null;
  const given = ORIGINAL_KEYS.filter((key) => file[key] !== undefined);
  const runnerImage = env.LOOM_RUNNER_IMAGE?.trim() || undefined;
  const namespace = env.LOOM_NAMESPACE?.trim() || undefined;
  if (given.length === 0 && runnerImage === undefined && namespace === undefined) {
    return { section: own, topLevel: [] };
  }
  // Not an object: the controller's schema says so, naming `kubernetes`.
  if (own !== null && !isObject(own)) return { section: own, topLevel: [] };
  const section: Obj = { ...own };
  const topLevel: string[] = [];
  const where = path ?? "the config file";
  const take = (target: Obj, key: string, value: unknown, dotted: string) => {
    const current = target[key];
    if (current !== undefined && !isDeepStrictEqual(current, value)) {
      throw new ConfigError(
        `${where}: ${dotted}`,
        `disagrees with kubernetes.${dotted}${shown(value, current)}: the top-level ${dotted} (the original Loom's form) and kubernetes.${dotted} are one setting; give it once`,
      );
    }
    if (current === undefined) topLevel.push(dotted);
    target[key] = value;
  };
  for (const key of given) {
    const value = file[key];
    if (
      key === "template" &&
      isObject(value) &&
      (section.template === undefined || isObject(section.template))
    ) {
      const template: Obj = { ...(section.template as Obj | undefined) };
      for (const [inner, v] of Object.entries(value)) take(template, inner, v, `template.${inner}`);
      section.template = template;
    } else {
      take(section, key, value, key);
    }
  }
  if (namespace !== undefined) section.namespace = namespace;
  if (runnerImage !== undefined) {
    const images = section.images ?? {};
    // Not an object: left for the schema to refuse.
    if (isObject(images)) section.images = { ...images, runner: runnerImage };
  }
  return { section, topLevel };
}

/** ` (10 here, 5 there)` for short scalar values; nothing for lists and maps. */
function shown(top: unknown, own: unknown): string {
  const scalar = (v: unknown) => v === null || typeof v !== "object";
  if (!scalar(top) || !scalar(own)) return "";
  return ` (${JSON.stringify(top)} at the top level, ${JSON.stringify(own)} in kubernetes)`;
}
