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

export async function openRepo(dir: string, ref: string | undefined): Promise<LocalRepo> {
  const root = String(await git(dir, ["rev-parse", "--show-toplevel"])).trim();
  let fullRef = "";
  if (ref === undefined) {
    fullRef = String(await git(root, ["symbolic-ref", "-q", "HEAD"]).catch(() => "")).trim();
  } else {
    fullRef = String(await git(root, ["rev-parse", "--symbolic-full-name", ref])).trim() || ref;
  }
  const sha = String(await git(root, ["rev-parse", "--verify", `${ref ?? "HEAD"}^{commit}`])).trim();
  return { root, name: basename(root), ref: fullRef, sha };
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
