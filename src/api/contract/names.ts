/**
 * Deterministic names for everything a run creates. The same inputs always give the same name,
 * so a repeated create (a retried reconcile, a second controller replica) is rejected with
 * AlreadyExists instead of starting a workflow twice.
 *
 * Every name is a readable slug of its inputs plus a hash of the *exact* inputs. The hash is
 * always there, not only when the slug is truncated, because slugging is lossy on its own
 * (knots `a.b` and `a-b` slug alike, as do workflows `build.yml` and `build-yml`).
 */
import { createHash } from "node:crypto";

/** Job names end up in the `batch.kubernetes.io/job-name` label, so they are capped at 63 too. */
export const MAX_NAME = 63;
const HASH_LENGTH = 10;
const HASH_SUFFIX = new RegExp(`-[0-9a-f]{${HASH_LENGTH}}$`);

/** Hex SHA-256 prefix of the JSON of `parts` (JSON keeps ["a-b","c"] and ["a","b-c"] apart). */
export function shortHash(parts: string | readonly string[], length = 16): string {
  const input = JSON.stringify(typeof parts === "string" ? [parts] : parts);
  return createHash("sha256").update(input).digest("hex").slice(0, length);
}

/** Lower-case `[a-z0-9-]`, runs of anything else as one "-", no "-" at either end. */
export function slug(text: string, max = MAX_NAME): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .slice(0, max)
    .replace(/^-+|-+$/g, "");
}

/** `<slug of readable>-<hash of exact>`, a DNS-1123 label of at most `max` characters. */
export function hashedName(readable: string, exact: readonly string[], max = MAX_NAME): string {
  const hash = shortHash(exact, HASH_LENGTH);
  const body = slug(readable, max - HASH_LENGTH - 1);
  return body ? `${body}-${hash}` : hash;
}

/** One SpindleSet per pipeline: `knot-example-com-3lq2abcxyz22k-<hash>`. */
export function spindleSetName(pipeline: { knot: string; rkey: string }): string {
  return hashedName(`${pipeline.knot}-${pipeline.rkey}`, [pipeline.knot, pipeline.rkey]);
}

/**
 * One Job per workflow: the SpindleSet's name (without its own hash), the workflow's name
 * (without `.yml`, at most 20 characters so it survives truncation), and a hash of both.
 */
export function jobName(spindleSet: string, workflowName: string): string {
  const workflow = slug(workflowName.replace(/\.ya?ml$/i, ""), 20);
  const room = MAX_NAME - HASH_LENGTH - 1 - (workflow ? workflow.length + 1 : 0);
  const run = slug(spindleSet.replace(HASH_SUFFIX, ""), room);
  return hashedName([run, workflow].filter(Boolean).join("-"), [spindleSet, workflowName]);
}

/** The run's Secret with repo secret values (one per SpindleSet). */
export function secretName(spindleSet: string): string {
  return `${spindleSet}-secrets`;
}

/** The ConfigMap holding one workflow's RunnerSpec; named after its Job. */
export function runnerSpecConfigMapName(job: string): string {
  return `${job}-spec`;
}
