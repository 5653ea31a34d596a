/**
 * The directory of one local run: `<baseDir>/<wid>~XXXXXX/` (mkdtemp, mode 0700) holding
 *
 *   workspace/   the steps' working directory (the clone lands here, as in /tangled/workspace)
 *   home/        HOME for the steps (kept out of workspace so it never shows in `git status`)
 *   spec.json    the RunnerSpec (no secret values: those travel in the runner's environment)
 *   wid          the full workflow id, so a later process can find the run's leftovers
 *   result.json  the runner's result (../../runner/result-file.ts), written as it exits: a
 *                restart reads how a run ended that the previous process never recorded
 *
 * `~` cannot occur in the sanitised wid, so one run's prefix is never another's.
 */
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface RunDir {
  root: string;
  workspace: string;
  home: string;
  spec: string;
  result: string;
}

/** The runner's durable result inside a run directory. */
export const RESULT_NAME = "result.json";

function dirPrefix(wid: string): string {
  return `${wid.replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 180)}~`;
}

export async function createRunDir(baseDir: string, wid: string): Promise<RunDir> {
  await mkdir(baseDir, { recursive: true, mode: 0o700 });
  const root = await mkdtemp(join(baseDir, dirPrefix(wid)));
  const dir = {
    root,
    workspace: join(root, "workspace"),
    home: join(root, "home"),
    spec: join(root, "spec.json"),
    result: join(root, RESULT_NAME),
  };
  await mkdir(dir.workspace, { mode: 0o700 });
  await mkdir(dir.home, { mode: 0o700 });
  await writeFile(join(root, "wid"), wid, { mode: 0o600 });
  return dir;
}

/** Run directories under baseDir that belong to `wid` (left by this or an earlier process). */
export async function findRunDirs(baseDir: string, wid: string): Promise<string[]> {
  const prefix = dirPrefix(wid);
  let names: string[];
  try {
    names = await readdir(baseDir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const root = join(baseDir, name);
    const owner = await readFile(join(root, "wid"), "utf8").catch(() => undefined);
    // A directory whose wid file never got written can only be a run that died in set-up.
    if (owner === wid || owner === undefined) out.push(root);
  }
  return out;
}

/** Removes everything in a run directory but its result and wid files (what a restart reads). */
export async function removeAllButResult(root: string): Promise<void> {
  for (const name of await readdir(root)) {
    if (name !== RESULT_NAME && name !== "wid") await removeTree(join(root, name));
  }
}

/**
 * Removes a directory tree even when steps made parts of it read-only (Go's module cache does):
 * on EACCES/EPERM every directory is made writable and the removal retried. Missing is fine.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true, maxRetries: 2 });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EACCES" && code !== "EPERM" && code !== "ENOTEMPTY") throw err;
  }
  await makeWritable(path);
  await rm(path, { recursive: true, force: true, maxRetries: 2 });
}

async function makeWritable(dir: string): Promise<void> {
  await chmod(dir, 0o700).catch(() => {});
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    // isDirectory() is false for symlinks, so this never follows a link out of the tree.
    if (e.isDirectory()) await makeWritable(join(dir, e.name));
  }
}
