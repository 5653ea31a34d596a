/**
 * The `loom` command as a user runs it: the real CLI as a child process, in a real git
 * repository made with the real `git` binary, in a fresh temporary directory.
 */
import { execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;
const exec = promisify(execFile);

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A scratch directory: `home` for HOME and TMPDIR of every process, `repo` for the repository. */
export interface Sandbox {
  root: string;
  home: string;
  tmp: string;
  repo: string;
  /** Runs `loom ARGS…` with `cwd` (default: the repository) and waits for it to exit. */
  loom(args: readonly string[], opts?: { cwd?: string; env?: Record<string, string> }): Promise<Result>;
  git(...args: string[]): Promise<string>;
  /** Writes files (paths relative to the repository), then commits everything. */
  commit(files: Record<string, string>, message?: string): Promise<void>;
  /** What is left in the sandbox's TMPDIR (the CLI's own temporary workspaces). */
  leftovers(): Promise<string[]>;
  remove(): Promise<void>;
}

/**
 * Nothing of the caller's environment but PATH: HOME and TMPDIR inside the sandbox, so neither
 * the user's git configuration nor other tests' files play a part.
 */
function environment(box: { home: string; tmp: string }, extra: Record<string, string> = {}) {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: box.home,
    TMPDIR: box.tmp,
    GIT_CONFIG_NOSYSTEM: "1",
    LANG: "C.UTF-8",
    ...extra,
  };
}

export async function sandbox(): Promise<Sandbox> {
  const root = await mkdtemp(join(tmpdir(), "loom-cli-test-"));
  const home = join(root, "home");
  const tmp = join(root, "tmp");
  const repo = join(root, "repo");
  await Promise.all([mkdir(home), mkdir(tmp), mkdir(repo)]);
  const git = async (...args: string[]) => {
    const { stdout } = await exec("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], {
      cwd: repo,
      env: environment({ home, tmp }),
    });
    return stdout;
  };
  await git("init", "-q", "-b", "main");
  return {
    root,
    home,
    tmp,
    repo,
    git,
    loom: (args, opts = {}) => loom(args, opts.cwd ?? repo, environment({ home, tmp }, opts.env)),
    async commit(files, message = "workflows") {
      for (const [path, text] of Object.entries(files)) {
        await mkdir(dirname(join(repo, path)), { recursive: true });
        await writeFile(join(repo, path), text);
      }
      await git("add", "-A");
      await git("commit", "-q", "-m", message);
    },
    leftovers: () => readdir(tmp),
    remove: () => rm(root, { recursive: true, force: true }),
  };
}

function loom(args: readonly string[], cwd: string, env: Record<string, string>): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The output as the assertion message, so a failing check shows what the command said. */
export function shown(r: Result): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** The lines of `text` without the trailing empty one. */
export function lines(text: string): string[] {
  const all = text.split("\n");
  if (all.at(-1) === "") all.pop();
  return all;
}

/** Starts `loom ARGS…` in `box`'s repository without waiting, for tests that signal it. */
export function spawnLoom(box: Sandbox, args: readonly string[], env: Record<string, string> = {}) {
  return spawn(process.execPath, [MAIN, ...args], {
    cwd: box.repo,
    env: environment(box, env),
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** The CLI's entry file (source), for tests that start it with another Node. */
export const LOOM_MAIN = MAIN;
