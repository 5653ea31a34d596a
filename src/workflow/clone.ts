/**
 * The "Clone repository into workspace" system step (spec §2.3).
 */
import { gen2RepoUrl, repoUrl } from "./env.ts";
import type { CloneOptions, TriggerMetadata } from "./types.ts";

export const CLONE_STEP_NAME = "Clone repository into workspace";

export interface CloneStep {
  name: string;
  command: string;
  /** What the step fetches, when it is a real clone (not skipped, not the error step). */
  fetch?: CloneFetch;
}

/** The clone as data, for engines that clone outside the steps (Kubernetes' clone-repo init container). */
export interface CloneFetch {
  url: string;
  /** Absent for a Gen1 manual run: the remote's HEAD. */
  sha?: string;
  depth: number;
  submodules: boolean;
}

export interface CloneStepOptions {
  dev: boolean;
  /** Gen2: clone `https://<knot>/<repoDid>` and fetch a manual trigger's `sha`. */
  gen2?: boolean;
  /** Replaces the knot URL (e.g. a local path for `loom run`). */
  cloneUrl?: string;
  /** Steps run on the host, not in a container: dev mode keeps `localhost` (see `repoUrl`). */
  stepsOnHost?: boolean;
}

/**
 * `git init`, `remote add`, `fetch --depth`, `checkout FETCH_HEAD` joined by `\n`. `clone.skip`
 * still yields a step, empty, as upstream (step ids stay stable). Missing push/PR data or an
 * unknown kind yield a failing step so the run reports why.
 */
export function cloneStep(trigger: TriggerMetadata, clone: CloneOptions, opts: CloneStepOptions): CloneStep {
  if (clone.skip) return { name: "", command: "" };
  let sha: string | undefined;
  switch (trigger.kind as string) {
    case "push":
      if (trigger.push === undefined) return errorStep("push trigger has no push data");
      sha = trigger.push.newSha;
      break;
    case "pull_request":
      if (trigger.pullRequest === undefined) return errorStep("pull_request trigger has no pullRequest data");
      sha = trigger.pullRequest.sourceSha;
      break;
    case "manual":
      sha = opts.gen2 === true ? trigger.manual?.sha : undefined;
      break;
    default:
      return errorStep(`unknown trigger kind ${String(trigger.kind)}`);
  }
  const gen2Url = opts.gen2 === true ? gen2RepoUrl(trigger.repo, opts.dev) : undefined;
  const url = opts.cloneUrl ?? gen2Url ?? repoUrl(trigger.repo, opts.dev, opts.stepsOnHost);
  const depth = clone.depth > 0 ? clone.depth : 1;
  const fetch = ["git fetch", `--depth=${depth}`];
  if (clone.submodules) fetch.push("--recurse-submodules=yes");
  fetch.push("origin");
  if (sha !== undefined) fetch.push(shellWord(sha));
  const command = [
    "git init",
    `git remote add origin ${shellWord(url)}`,
    fetch.join(" "),
    "git checkout FETCH_HEAD",
  ];
  return {
    name: CLONE_STEP_NAME,
    command: command.join("\n"),
    fetch: { url, depth, submodules: clone.submodules, ...(sha !== undefined ? { sha } : {}) },
  };
}

function errorStep(reason: string): CloneStep {
  // The reason sits inside single quotes; it never contains one.
  const text = reason.replaceAll("'", "");
  return {
    name: `${CLONE_STEP_NAME} (error)`,
    command: `echo 'Failed to get clone info: ${text}' && exit 1`,
  };
}

/**
 * A word for `bash -c`: left as is when it holds only characters the shell treats literally (so
 * ordinary URLs and SHAs give upstream's exact command lines), single-quoted otherwise, since the
 * trigger comes from the network.
 */
export function shellWord(word: string): string {
  if (/^[A-Za-z0-9_\-.,:/@%+=~]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}
