/**
 * Reading `.tangled/workflows/*` at a commit from a knot (gen2 §2.4: the spindle syncs
 * `https://<knot>/<repoDid>` at the SHA, `http://` in dev, and reads the directory's files,
 * non-recursively).
 *
 * Upstream requires git ≥ 2.49 for its sparse sync. Loom takes a different route that needs only
 * what git 2.39 (Debian 12's, the version the tests run) already has: one bare partial repo per
 * (knot, repo) as a cache,
 *   git fetch --depth=1 --filter=blob:none --no-tags origin <sha>    (commit + trees, no blobs)
 *   git ls-tree -z <sha> -- .tangled/workflows/                       (names, modes, blob ids)
 *   git fetch … --filter=blob:none --stdin  <missing workflow blobs>  (only those blobs)
 *   git cat-file --batch                                              (their contents)
 * so a push never downloads the repo's other blobs. Care is taken never to trigger git's lazy
 * per-object fetches (`cat-file -e`, `ls-tree -l` and `rev-parse` would): presence is checked
 * with `rev-list --missing=print`, which does not fetch.
 *
 * Disk is bounded: after each fetch, whole repo caches are evicted least recently used first
 * until the total is under `maxCacheBytes` (last use = directory mtime, so it survives restarts).
 * One fetch per repo at a time; different repos fetch in parallel.
 */
import { createHash } from "node:crypto";
import { mkdir, readdir, rm, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import { isValidDid } from "@atproto/syntax";
import { byName, WORKFLOWS_DIR, type WorkflowFile } from "../../workflow/compile.ts";
import { DEFAULT_LIMITS } from "../../workflow/source.ts";
import { checkedAddress, type GuardedFetchOptions } from "../guarded-fetch.ts";
import { classifyGitFailure, KnotError } from "./errors.ts";
import { type GitResult, runGit } from "./git.ts";

export interface FetchRequest {
  /** Knot host as in the repo record: `knot.example.com` or `host:port`; no scheme. */
  knot: string;
  repoDid: string;
  /** 40 lowercase hex characters. */
  sha: string;
  /** `http://` instead of `https://` (dev stacks). */
  dev?: boolean;
}

export interface FetchedWorkflows {
  sha: string;
  /** Regular files directly in `.tangled/workflows/`, by name (byte order). */
  files: WorkflowFile[];
  /** Entries not read, with why (too large, not a regular file, over the file count). */
  skipped: Array<{ name: string; reason: string }>;
}

export interface WorkflowFetcherOptions {
  /** A directory only this fetcher uses; one subdirectory per (knot, repo). */
  cacheDir: string;
  /** Total bytes the caches may keep after a fetch. Default 1 GiB. */
  maxCacheBytes?: number;
  /** Per git command. Default 60 s. */
  timeoutMs?: number;
  /** Larger workflow files are skipped unread. Default: the workflow parser's limit (512 KiB). */
  maxFileBytes?: number;
  /** Files past this many (in name order) are skipped. Default 64. */
  maxFiles?: number;
  gitBinary?: string;
  /**
   * The SSRF guard for the knot host (a repo record names it). Private addresses are refused
   * unless the request is `dev` or `allowPrivate` is set; the checked address is pinned for git
   * with `http.curloptResolve` (git ≥ 2.37), so DNS cannot answer differently for git.
   */
  guard?: Pick<GuardedFetchOptions, "allowPrivate" | "allowAddresses" | "resolve">;
}

// A DNS name or IPv4 with an optional port: all a knot host may be (it ends up in a URL).
const KNOT_HOST =
  /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*(:[0-9]{1,5})?$/;
const SHA = /^[0-9a-f]{40}$/;
const REGULAR_FILE_MODES = new Set(["100644", "100755"]);

export class WorkflowFetcher {
  readonly #cacheDir: string;
  readonly #maxCacheBytes: number;
  readonly #timeoutMs: number;
  readonly #maxFileBytes: number;
  readonly #maxFiles: number;
  readonly #git: string | undefined;
  readonly #guard: WorkflowFetcherOptions["guard"];
  /** Per cache key: the tail of its queue of fetches (one at a time per repo). */
  readonly #locks = new Map<string, Promise<unknown>>();
  /** Keys with a fetch in flight: never evicted. */
  readonly #busy = new Map<string, number>();
  #evicting: Promise<void> = Promise.resolve();

  constructor(opts: WorkflowFetcherOptions) {
    this.#cacheDir = opts.cacheDir;
    this.#maxCacheBytes = opts.maxCacheBytes ?? 1024 * 1024 * 1024;
    this.#timeoutMs = opts.timeoutMs ?? 60_000;
    this.#maxFileBytes = opts.maxFileBytes ?? DEFAULT_LIMITS.maxBytes;
    this.#maxFiles = opts.maxFiles ?? 64;
    this.#git = opts.gitBinary;
    this.#guard = opts.guard;
  }

  /** The remote a request reads from. */
  static remoteUrl(req: Pick<FetchRequest, "knot" | "repoDid" | "dev">): string {
    return `${req.dev === true ? "http" : "https"}://${req.knot}/${req.repoDid}`;
  }

  async fetchWorkflows(req: FetchRequest): Promise<FetchedWorkflows> {
    if (!KNOT_HOST.test(req.knot))
      throw new KnotError("InvalidInput", `not a knot host: ${JSON.stringify(req.knot)}`);
    if (!isValidDid(req.repoDid))
      throw new KnotError("InvalidInput", `not a repo DID: ${JSON.stringify(req.repoDid)}`);
    if (!SHA.test(req.sha))
      throw new KnotError("InvalidInput", `not a 40-character hex SHA: ${JSON.stringify(req.sha)}`);
    const key = cacheKey(req.knot, req.repoDid);
    const result = await this.#withRepo(key, async () => {
      try {
        return await this.#fetch(key, req);
      } catch (err) {
        // A killed git (timeout) leaves lock files and half-written shallow state behind, and
        // an unexplained git failure may be a damaged cache: start that repo afresh next time.
        // Answers about the remote (no such repo or commit, unreachable) say nothing about it.
        const code = err instanceof KnotError ? err.code : "GitFailed";
        if (code === "Timeout" || code === "GitFailed") {
          await rm(join(this.#cacheDir, key), { recursive: true, force: true });
        }
        throw err;
      }
    });
    await this.#evict();
    return result;
  }

  async #withRepo<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(key) ?? Promise.resolve();
    this.#busy.set(key, (this.#busy.get(key) ?? 0) + 1);
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    this.#locks.set(key, tail);
    try {
      return await next;
    } finally {
      const n = (this.#busy.get(key) ?? 1) - 1;
      if (n === 0) this.#busy.delete(key);
      else this.#busy.set(key, n);
      if (this.#locks.get(key) === tail) this.#locks.delete(key);
    }
  }

  async #fetch(key: string, req: FetchRequest): Promise<FetchedWorkflows> {
    const dir = join(this.#cacheDir, key);
    const url = WorkflowFetcher.remoteUrl(req);
    const what = `fetching ${req.sha} from ${url}`;
    await this.#ensureRepo(dir, url, req.dev === true);
    await utimes(dir, new Date(), new Date());
    // Commands that talk to the knot resolve and check its address first and pin it; local
    // commands carry the pin too once it exists, should git ever fetch lazily.
    let pin: string[] | undefined;
    const git = (args: string[], input?: string) => this.#run(dir, args, req.dev === true, input, pin);
    const fetch = async (args: string[], input?: string) => {
      pin ??= await this.#pin(req);
      return this.#run(dir, args, req.dev === true, input, pin);
    };

    if (!(await this.#hasCommit(dir, req.sha, req.dev === true))) {
      const r = await fetch([
        "fetch",
        "--quiet",
        "--depth=1",
        "--filter=blob:none",
        "--no-tags",
        "--no-write-fetch-head",
        "origin",
        req.sha,
      ]);
      if (r.code !== 0) throw classifyGitFailure(what, r.stderr, r.timedOut, this.#timeoutMs);
    }

    const ls = await git(["ls-tree", "-z", req.sha, "--", `${WORKFLOWS_DIR}/`]);
    if (ls.code !== 0)
      throw classifyGitFailure(
        `listing ${WORKFLOWS_DIR} at ${req.sha}`,
        ls.stderr,
        ls.timedOut,
        this.#timeoutMs,
      );
    const skipped: FetchedWorkflows["skipped"] = [];
    const wanted: Array<{ name: string; oid: string }> = [];
    const entries = parseLsTree(ls.stdout).sort((a, b) => byName(a.name, b.name));
    for (const e of entries) {
      if (e.type !== "blob" || !REGULAR_FILE_MODES.has(e.mode)) {
        // Symlinks could point anywhere; subdirectories are not read (non-recursive, §2.4).
        skipped.push({
          name: e.name,
          reason: e.type === "tree" ? "a directory" : `not a regular file (mode ${e.mode})`,
        });
      } else if (wanted.length >= this.#maxFiles) {
        skipped.push({ name: e.name, reason: `more than ${this.#maxFiles} workflow files` });
      } else {
        wanted.push({ name: e.name, oid: e.oid });
      }
    }
    if (wanted.length === 0) return { sha: req.sha, files: [], skipped };

    const missing = await this.#missingObjects(
      dir,
      wanted.map((w) => w.oid),
      req.dev === true,
    );
    if (missing.length > 0) {
      const r = await fetch(
        [
          "fetch",
          "--quiet",
          "--no-tags",
          "--no-write-fetch-head",
          "--recurse-submodules=no",
          "--filter=blob:none",
          "--stdin",
          "origin",
        ],
        `${missing.join("\n")}\n`,
      );
      if (r.code !== 0)
        throw classifyGitFailure(`${what} (workflow files)`, r.stderr, r.timedOut, this.#timeoutMs);
    }

    const sizes = await this.#objectSizes(
      dir,
      wanted.map((w) => w.oid),
      req.dev === true,
    );
    const readable = wanted.filter((w) => {
      const size = sizes.get(w.oid) ?? Number.POSITIVE_INFINITY;
      if (size <= this.#maxFileBytes) return true;
      skipped.push({
        name: w.name,
        reason: `file is ${size} bytes; the limit is ${this.#maxFileBytes} bytes`,
      });
      return false;
    });
    const contents = await this.#readBlobs(
      dir,
      readable.map((w) => w.oid),
      req.dev === true,
    );
    const files = readable.map((w) => ({ name: w.name, content: contents.get(w.oid) ?? new Uint8Array() }));
    return { sha: req.sha, files, skipped: skipped.sort((a, b) => byName(a.name, b.name)) };
  }

  async #ensureRepo(dir: string, url: string, dev: boolean): Promise<void> {
    const exists = await stat(join(dir, "HEAD")).then(
      () => true,
      () => false,
    );
    if (exists) {
      // Fetches of one repo never overlap in this process and the directory is ours alone, so
      // a lock file here is left over from a killed git: remove it rather than fail on it.
      for (const lock of ["shallow.lock", "config.lock", "packed-refs.lock", "index.lock", "HEAD.lock"]) {
        await rm(join(dir, lock), { force: true });
      }
      // The scheme follows the request's dev flag; keep the remote in step with it.
      const r = await this.#run(dir, ["config", "remote.origin.url", url], dev);
      if (r.code !== 0)
        throw classifyGitFailure(`preparing cache ${dir}`, r.stderr, r.timedOut, this.#timeoutMs);
      return;
    }
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    for (const args of [
      ["init", "--quiet", "--bare"],
      ["remote", "add", "origin", url],
      // What `fetch --filter` would also set; said up front so the first fetch's objects are
      // recorded as coming from a promisor remote.
      ["config", "remote.origin.promisor", "true"],
      ["config", "remote.origin.partialclonefilter", "blob:none"],
      ["config", "gc.auto", "0"],
    ]) {
      const r = await this.#run(dir, args, dev);
      if (r.code !== 0)
        throw classifyGitFailure(`preparing cache ${dir}`, r.stderr, r.timedOut, this.#timeoutMs);
    }
  }

  /** `rev-list --missing=print` never lazy-fetches: "bad object" just means absent. */
  async #hasCommit(dir: string, sha: string, dev: boolean): Promise<boolean> {
    const r = await this.#run(dir, ["rev-list", "-n1", "--missing=print", sha, "--"], dev);
    return r.code === 0 && r.stdout.toString().trim() === sha;
  }

  async #missingObjects(dir: string, oids: string[], dev: boolean): Promise<string[]> {
    const r = await this.#run(
      dir,
      ["rev-list", "--objects", "--no-walk", "--missing=print", "--stdin"],
      dev,
      `${oids.join("\n")}\n`,
    );
    if (r.code !== 0) return oids; // unknown objects: fetch them all
    return r.stdout
      .toString()
      .split("\n")
      .filter((l) => l.startsWith("?"))
      .map((l) => l.slice(1).trim());
  }

  async #objectSizes(dir: string, oids: string[], dev: boolean): Promise<Map<string, number>> {
    const r = await this.#run(
      dir,
      ["cat-file", "--batch-check=%(objectname) %(objectsize)"],
      dev,
      `${oids.join("\n")}\n`,
    );
    if (r.code !== 0)
      throw classifyGitFailure("reading workflow file sizes", r.stderr, r.timedOut, this.#timeoutMs);
    const sizes = new Map<string, number>();
    for (const line of r.stdout.toString().split("\n")) {
      const [oid, size] = line.split(" ");
      if (oid !== undefined && size !== undefined && /^[0-9]+$/.test(size)) sizes.set(oid, Number(size));
    }
    return sizes;
  }

  async #readBlobs(dir: string, oids: string[], dev: boolean): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    if (oids.length === 0) return out;
    const r = await this.#run(dir, ["cat-file", "--batch"], dev, `${oids.join("\n")}\n`);
    if (r.code !== 0)
      throw classifyGitFailure("reading workflow files", r.stderr, r.timedOut, this.#timeoutMs);
    // Each object: "<oid> blob <size>\n" + content + "\n".
    let at = 0;
    const buf = r.stdout;
    while (at < buf.byteLength) {
      const nl = buf.indexOf(0x0a, at);
      if (nl < 0) break;
      const [oid, type, size] = buf.subarray(at, nl).toString("latin1").split(" ");
      if (type !== "blob" || oid === undefined || size === undefined) {
        throw new KnotError(
          "GitFailed",
          `unexpected cat-file output: ${buf.subarray(at, nl).toString("latin1")}`,
        );
      }
      const n = Number(size);
      out.set(oid, new Uint8Array(buf.subarray(nl + 1, nl + 1 + n)));
      at = nl + 1 + n + 1;
    }
    return out;
  }

  #run(dir: string, args: string[], dev: boolean, input?: string, config?: string[]): Promise<GitResult> {
    return runGit(args, {
      cwd: dir,
      timeoutMs: this.#timeoutMs,
      allowHttp: dev,
      ...(input !== undefined && { input }),
      ...(config !== undefined && { config }),
      ...(this.#git !== undefined && { gitBinary: this.#git }),
    });
  }

  /**
   * `http.curloptResolve=<host>:<port>:<address>` for the knot, after the SSRF check. Private
   * addresses pass only in dev mode or when the guard allows them. Behind an HTTP(S) proxy
   * (HTTPS_PROXY is passed on to git) the proxy resolves the knot, and the pin does not apply.
   */
  async #pin(req: FetchRequest): Promise<string[]> {
    const m = /^(.*?)(?::([0-9]{1,5}))?$/.exec(req.knot);
    const host = (m?.[1] ?? req.knot).toLowerCase();
    const port = m?.[2] ?? (req.dev === true ? "80" : "443");
    let address: string;
    try {
      const picked = await checkedAddress(host, {
        allowPrivate: this.#guard?.allowPrivate ?? req.dev === true,
        ...(this.#guard?.allowAddresses !== undefined && { allowAddresses: this.#guard.allowAddresses }),
        ...(this.#guard?.resolve !== undefined && { resolve: this.#guard.resolve }),
      });
      address = picked.family === 6 ? `[${picked.address}]` : picked.address;
    } catch (err) {
      const code = (err as { code?: string }).code;
      throw new KnotError(
        code === "ForbiddenAddress" ? "InvalidInput" : "KnotUnreachable",
        `knot ${req.knot}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    return [`http.curloptResolve=${host}:${port}:${address}`];
  }

  /** Evictions run one at a time; a run sees every fetch finished before it started. */
  #evict(): Promise<void> {
    this.#evicting = this.#evicting.then(() => this.#evictNow()).catch(() => {});
    return this.#evicting;
  }

  async #evictNow(): Promise<void> {
    const usage = await this.cacheUsage();
    let total = usage.reduce((n, u) => n + u.bytes, 0);
    for (const u of usage.sort((a, b) => a.lastUsedMs - b.lastUsedMs)) {
      if (total <= this.#maxCacheBytes) break;
      if (this.#busy.has(u.key)) continue;
      await rm(join(this.#cacheDir, u.key), { recursive: true, force: true });
      total -= u.bytes;
    }
  }

  /** Each repo cache with its size on disk and last use, for eviction and metrics. */
  async cacheUsage(): Promise<Array<{ key: string; bytes: number; lastUsedMs: number }>> {
    let names: string[];
    try {
      names = await readdir(this.#cacheDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const out: Array<{ key: string; bytes: number; lastUsedMs: number }> = [];
    for (const key of names) {
      const path = join(this.#cacheDir, key);
      const st = await stat(path).catch(() => undefined);
      if (st === undefined || !st.isDirectory()) continue;
      out.push({ key, bytes: await diskBytes(path), lastUsedMs: st.mtimeMs });
    }
    return out;
  }
}

/** The cache directory name for a (knot, repo): a hash, so no DID character reaches a path. */
export function cacheKey(knot: string, repoDid: string): string {
  return createHash("sha256").update(`${knot.toLowerCase()}\0${repoDid}`).digest("hex").slice(0, 32);
}

interface TreeEntry {
  mode: string;
  type: string;
  oid: string;
  name: string;
}

/** `ls-tree -z` lines: "<mode> SP <type> SP <oid> TAB <path>" NUL; names are the last path part. */
function parseLsTree(out: Buffer): TreeEntry[] {
  const entries: TreeEntry[] = [];
  for (const rec of out.toString("utf8").split("\0")) {
    if (rec === "") continue;
    const tab = rec.indexOf("\t");
    const [mode, type, oid] = rec.slice(0, tab).split(" ");
    const path = rec.slice(tab + 1);
    if (mode === undefined || type === undefined || oid === undefined || tab < 0) continue;
    entries.push({ mode, type, oid, name: path.slice(path.lastIndexOf("/") + 1) });
  }
  return entries;
}

async function diskBytes(path: string): Promise<number> {
  let total = 0;
  const entries = await readdir(path, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isFile()) continue;
    const st = await stat(join(e.parentPath, e.name)).catch(() => undefined);
    total += st?.size ?? 0;
  }
  return total;
}
