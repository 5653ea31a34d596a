/**
 * What `loom run` needs to know about a local repository, asked of the real `git` command: the
 * commit a trigger points at and the workflow files *in that commit* (a spindle reads them from
 * the pushed commit, never from someone's working tree).
 */
import { execFile } from "node:child_process";
import { basename } from "node:path";
import { promisify } from "node:util";
import { WORKFLOWS_DIR, type WorkflowFile } from "../workflow/index.ts";

const exec = promisify(execFile);

async function git(
  cwd: string,
  args: string[],
  encoding: "utf8" | "buffer" = "utf8",
): Promise<string | Buffer> {
  try {
    const { stdout } = await exec("git", args, { cwd, encoding, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string | Buffer; message: string };
    const why = String(e.stderr ?? "").trim() || e.message;
    throw new Error(`git ${args.join(" ")}: ${why}`);
  }
}

export interface LocalRepo {
  root: string;
  name: string;
  /** Full ref (`refs/heads/main`), or "" when HEAD is detached and no --ref was given. */
  ref: string;
  sha: string;
}

/** A problem with the repository itself, said in one sentence (no git command line). */
export class RepoError extends Error {
  override name = "RepoError";
}

export async function openRepo(dir: string, ref: string | undefined): Promise<LocalRepo> {
  const top = await git(dir, ["rev-parse", "--show-toplevel"]).catch(() => {
    throw new RepoError(`${dir} is not inside a git repository: loom run runs a commit of one`);
  });
  const root = String(top).trim();
  const hasHead = await git(root, ["rev-parse", "--verify", "-q", "HEAD^{commit}"]).then(
    () => true,
    () => false,
  );
  if (ref === undefined && !hasHead) {
    throw new RepoError(
      `${root} has no commit yet: commit .tangled/workflows/ first (loom run runs a commit, or the working tree with --worktree once there is one)`,
    );
  }
  let fullRef = "";
  if (ref === undefined) {
    fullRef = String(await git(root, ["symbolic-ref", "-q", "HEAD"]).catch(() => "")).trim();
  } else {
    fullRef =
      String(await git(root, ["rev-parse", "--symbolic-full-name", ref]).catch(() => "")).trim() || ref;
  }
  const sha = String(
    await git(root, ["rev-parse", "--verify", "-q", `${ref ?? "HEAD"}^{commit}`]).catch(() => {
      throw new RepoError(`no commit named "${ref}" in ${root}`);
    }),
  ).trim();
  return { root, name: basename(root), ref: fullRef, sha };
}

/** Paths with uncommitted changes (tracked or not, ignored files aside), as `git status` counts them. */
export async function uncommittedChanges(repo: LocalRepo): Promise<number> {
  const out = String(await git(repo.root, ["status", "--porcelain", "-z", "--untracked-files=all"]));
  return out.split("\0").filter((e) => /^.. /.test(e)).length;
}

/**
 * The working tree (tracked and untracked files, ignored ones aside) as a commit whose parent
 * is the repository's: written through a temporary index, so the user's index, branches and
 * refs stay as they were. The commit is unreachable; a clone fetches it by id (git protocol v2
 * serves any object a local repository has).
 */
export async function worktreeCommit(repo: LocalRepo, tmpIndex: string): Promise<string> {
  const env = { ...process.env, GIT_INDEX_FILE: tmpIndex };
  const run = async (args: string[]) => {
    try {
      const { stdout } = await exec("git", args, { cwd: repo.root, env, maxBuffer: 64 * 1024 * 1024 });
      return stdout.trim();
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`git ${args.join(" ")}: ${String(e.stderr ?? "").trim() || e.message}`);
    }
  };
  await run(["read-tree", repo.sha]);
  await run(["add", "-A", "--", "."]);
  const tree = await run(["write-tree"]);
  return run([
    "-c",
    "user.name=loom run",
    "-c",
    "user.email=loom@localhost",
    "commit-tree",
    tree,
    "-p",
    repo.sha,
    "-m",
    "loom run --worktree",
  ]);
}

/** The regular files directly in `.tangled/workflows/` at `sha`, as the knot lists them (§1.4). */
export async function workflowFilesAt(repo: LocalRepo): Promise<WorkflowFile[]> {
  const listing = String(await git(repo.root, ["ls-tree", "-z", repo.sha, `${WORKFLOWS_DIR}/`]));
  const files: WorkflowFile[] = [];
  for (const entry of listing.split("\0")) {
    // "<mode> <type> <oid>\t<path>"; only blobs (100644/100755): no links, no subfolders.
    const match = /^(100644|100755) blob ([0-9a-f]+)\t(.+)$/.exec(entry);
    if (!match) continue;
    const [, , oid, path] = match;
    const content = (await git(repo.root, ["cat-file", "blob", oid!], "buffer")) as Buffer;
    files.push({ name: path!.slice(WORKFLOWS_DIR.length + 1), content: new Uint8Array(content) });
  }
  return files;
}
