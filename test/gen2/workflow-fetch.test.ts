/**
 * fetchWorkflows against a real `git http-backend` (test/support/knot-git-server.ts): sparse
 * (no other blobs downloaded), shallow, cached, bounded, and typed failures.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { KnotError } from "../../src/net/knot/errors.ts";
import { cacheKey, WorkflowFetcher } from "../../src/net/knot/workflow-fetcher.ts";
import { KnotGitServer } from "../support/knot-git-server.ts";

const run = promisify(execFile);
const REPO = "did:plc:repo1";
const BIG = "x".repeat(300_000);

const text = (c: string | Uint8Array) => Buffer.from(c).toString("utf8");

describe("WorkflowFetcher against git http-backend", () => {
  let knot: KnotGitServer;
  let cacheDir: string;
  let shas: string[];

  before(async () => {
    knot = await KnotGitServer.start();
    cacheDir = await mkdtemp(join(tmpdir(), "wf-cache-"));
    shas = await knot.createRepo(
      REPO,
      {
        ".tangled/workflows/ci.yml": "engine: nixery\nsteps: []\n",
        ".tangled/workflows/build.yaml": "engine: nixery\n",
        ".tangled/workflows/nested/inner.yml": "engine: nixery\n",
        ".tangled/workflows/huge.yml": `# ${"y".repeat(2000)}\n`,
        "big.bin": BIG,
        "src/main.ts": "console.log(1)\n",
      },
      {
        ".tangled/workflows/ci.yml": "engine: nixery\nsteps: [{name: two, command: 'true'}]\n",
        README: "two\n",
      },
    );
  });

  after(async () => {
    await knot.stop();
    await rm(cacheDir, { recursive: true, force: true });
  });

  it("reads .tangled/workflows at a SHA without downloading other blobs", async () => {
    const fetcher = new WorkflowFetcher({ cacheDir, maxFileBytes: 1000 });
    const posts = () => knot.requests.filter((r) => r === `POST /${REPO}/git-upload-pack`).length;
    const got = await fetcher.fetchWorkflows({
      knot: knot.host,
      repoDid: REPO,
      sha: shas[0] ?? "",
      dev: true,
    });
    // One fetch for the commit and its trees, one for all workflow blobs at once (git's lazy
    // fetch would have made one round trip per blob).
    assert.equal(posts(), 2);
    assert.equal(got.sha, shas[0]);
    assert.deepEqual(
      got.files.map((f) => [f.name, text(f.content)]),
      [
        ["build.yaml", "engine: nixery\n"],
        ["ci.yml", "engine: nixery\nsteps: []\n"],
      ],
    );
    assert.deepEqual(got.skipped, [
      { name: "huge.yml", reason: "file is 2003 bytes; the limit is 1000 bytes" },
      { name: "nested", reason: "a directory" },
    ]);
    // big.bin's blob is not in the cache: rev-list --missing=print lists it as missing.
    const dir = join(cacheDir, cacheKey(knot.host, REPO));
    const { stdout } = await run("git", ["rev-list", "--objects", "--missing=print", shas[0] ?? ""], {
      cwd: dir,
    });
    const missing = stdout.split("\n").filter((l) => l.startsWith("?"));
    assert.ok(missing.length >= 2, `other blobs stay on the knot: ${stdout}`);
    const { stdout: du } = await run("du", ["-sb", dir]);
    assert.ok(Number(du.split("\t")[0]) < BIG.length, `cache holds no copy of big.bin (${du.trim()})`);
  });

  it("reads a newer commit, and a SHA already cached without fetching again", async () => {
    const fetcher = new WorkflowFetcher({ cacheDir });
    const got = await fetcher.fetchWorkflows({
      knot: knot.host,
      repoDid: REPO,
      sha: shas[1] ?? "",
      dev: true,
    });
    assert.match(text(got.files.find((f) => f.name === "ci.yml")?.content ?? ""), /two/);
    const before = knot.requests.filter((r) => r.includes("upload-pack")).length;
    const again = await fetcher.fetchWorkflows({
      knot: knot.host,
      repoDid: REPO,
      sha: shas[1] ?? "",
      dev: true,
    });
    assert.deepEqual(again, got);
    assert.equal(
      knot.requests.filter((r) => r.includes("upload-pack")).length,
      before,
      "served from the cache",
    );
  });

  it("recovers from lock files a killed git left behind", async () => {
    const fetcher = new WorkflowFetcher({ cacheDir });
    await fetcher.fetchWorkflows({ knot: knot.host, repoDid: REPO, sha: shas[0] ?? "", dev: true });
    const newer = await knot.pushCommit(REPO, { "src/later.ts": "3\n" });
    const dir = join(cacheDir, cacheKey(knot.host, REPO));
    await writeFile(join(dir, "shallow.lock"), "");
    const got = await fetcher.fetchWorkflows({ knot: knot.host, repoDid: REPO, sha: newer, dev: true });
    assert.equal(got.sha, newer);
    assert.deepEqual(
      got.files.map((f) => f.name),
      ["build.yaml", "ci.yml", "huge.yml"],
    );
  });

  it("serialises concurrent fetches of one repo", async () => {
    const fresh = await mkdtemp(join(tmpdir(), "wf-cache-"));
    try {
      const fetcher = new WorkflowFetcher({ cacheDir: fresh });
      const [a, b] = await Promise.all([
        fetcher.fetchWorkflows({ knot: knot.host, repoDid: REPO, sha: shas[0] ?? "", dev: true }),
        fetcher.fetchWorkflows({ knot: knot.host, repoDid: REPO, sha: shas[1] ?? "", dev: true }),
      ]);
      assert.equal(a.sha, shas[0]);
      assert.equal(b.sha, shas[1]);
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  it("answers a repo without workflows with no files", async () => {
    const [sha] = await knot.createRepo("did:plc:noworkflows", { "README.md": "hi\n" });
    const fetcher = new WorkflowFetcher({ cacheDir });
    const got = await fetcher.fetchWorkflows({
      knot: knot.host,
      repoDid: "did:plc:noworkflows",
      sha: sha ?? "",
      dev: true,
    });
    assert.deepEqual(got, { sha, files: [], skipped: [] });
  });

  it("evicts least recently used repo caches past the byte budget", async () => {
    const small = await mkdtemp(join(tmpdir(), "wf-cache-"));
    try {
      const [shaA] = await knot.createRepo("did:plc:evict-a", {
        ".tangled/workflows/a.yml": "engine: nixery\n",
      });
      const [shaB] = await knot.createRepo("did:plc:evict-b", {
        ".tangled/workflows/b.yml": "engine: nixery\n",
      });
      // One empty-ish bare repo is tens of KiB (hooks, config); a 1-byte budget keeps only the newest.
      const fetcher = new WorkflowFetcher({ cacheDir: small, maxCacheBytes: 1 });
      await fetcher.fetchWorkflows({
        knot: knot.host,
        repoDid: "did:plc:evict-a",
        sha: shaA ?? "",
        dev: true,
      });
      await new Promise((r) => setTimeout(r, 20)); // distinct mtimes
      const gotB = await fetcher.fetchWorkflows({
        knot: knot.host,
        repoDid: "did:plc:evict-b",
        sha: shaB ?? "",
        dev: true,
      });
      assert.equal(gotB.files[0]?.name, "b.yml");
      // Both over budget, neither busy any more: everything goes, oldest first.
      assert.deepEqual(await readdir(small), []);
      const roomy = new WorkflowFetcher({ cacheDir: small, maxCacheBytes: 10 * 1024 * 1024 });
      await roomy.fetchWorkflows({ knot: knot.host, repoDid: "did:plc:evict-a", sha: shaA ?? "", dev: true });
      await roomy.fetchWorkflows({ knot: knot.host, repoDid: "did:plc:evict-b", sha: shaB ?? "", dev: true });
      const usage = await roomy.cacheUsage();
      assert.equal(usage.length, 2);
      const total = usage.reduce((n, u) => n + u.bytes, 0);
      const budget = new WorkflowFetcher({ cacheDir: small, maxCacheBytes: total - 1 });
      await budget.fetchWorkflows({
        knot: knot.host,
        repoDid: "did:plc:evict-b",
        sha: shaB ?? "",
        dev: true,
      });
      assert.deepEqual(
        await readdir(small),
        [cacheKey(knot.host, "did:plc:evict-b")],
        "a (least recent) evicted",
      );
    } finally {
      await rm(small, { recursive: true, force: true });
    }
  });

  it("fails with ShaNotFound for a commit the knot does not have", async () => {
    const fetcher = new WorkflowFetcher({ cacheDir });
    await assert.rejects(
      fetcher.fetchWorkflows({ knot: knot.host, repoDid: REPO, sha: "1".repeat(40), dev: true }),
      (err: unknown) => err instanceof KnotError && err.code === "ShaNotFound" && err.transient,
    );
  });

  it("fails with RepoNotFound for a repo the knot does not serve", async () => {
    const fetcher = new WorkflowFetcher({ cacheDir });
    await assert.rejects(
      fetcher.fetchWorkflows({
        knot: knot.host,
        repoDid: "did:plc:nosuchrepo",
        sha: "1".repeat(40),
        dev: true,
      }),
      (err: unknown) => err instanceof KnotError && err.code === "RepoNotFound",
    );
  });

  it("fails with KnotUnreachable when nothing listens", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const fetcher = new WorkflowFetcher({ cacheDir });
    await assert.rejects(
      fetcher.fetchWorkflows({ knot: `127.0.0.1:${port}`, repoDid: REPO, sha: shas[0] ?? "", dev: true }),
      (err: unknown) =>
        err instanceof KnotError && err.code === "KnotUnreachable" && /knot unreachable/.test(err.message),
    );
  });

  it("fails with Timeout when the knot never answers, killing git", async () => {
    const silent: Server = createServer(() => {}); // accepts, never responds
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as AddressInfo).port;
    try {
      const fetcher = new WorkflowFetcher({ cacheDir, timeoutMs: 500 });
      const t0 = Date.now();
      await assert.rejects(
        fetcher.fetchWorkflows({ knot: `127.0.0.1:${port}`, repoDid: REPO, sha: shas[0] ?? "", dev: true }),
        (err: unknown) => err instanceof KnotError && err.code === "Timeout",
      );
      assert.ok(Date.now() - t0 < 5000);
      const key = cacheKey(`127.0.0.1:${port}`, REPO);
      assert.equal((await readdir(cacheDir)).includes(key), false, "a timed-out cache is dropped");
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  it("pins git to the address it checked, and refuses private knots outside dev mode", async () => {
    const fresh = await mkdtemp(join(tmpdir(), "wf-cache-"));
    try {
      // `knot.invalid` does not resolve through DNS: git can only reach it through the pin.
      const resolve = async () => [{ address: "127.0.0.1", family: 4 }];
      const pinned = new WorkflowFetcher({ cacheDir: fresh, guard: { resolve } });
      const name = `knot.invalid:${knot.port}`;
      const got = await pinned.fetchWorkflows({ knot: name, repoDid: REPO, sha: shas[0] ?? "", dev: true });
      assert.equal(got.files.length, 3);
      const strict = new WorkflowFetcher({ cacheDir: fresh, guard: { resolve, allowPrivate: false } });
      await assert.rejects(
        strict.fetchWorkflows({ knot: name, repoDid: REPO, sha: shas[1] ?? "", dev: true }),
        (err: unknown) =>
          err instanceof KnotError && err.code === "InvalidInput" && /non-public/.test(err.message),
      );
      await assert.rejects(
        new WorkflowFetcher({ cacheDir: fresh }).fetchWorkflows({
          knot: knot.host,
          repoDid: REPO,
          sha: shas[1] ?? "",
        }),
        (err: unknown) => err instanceof KnotError && err.code === "InvalidInput",
      );
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  it("refuses http:// outside dev mode and bad inputs before running git", async () => {
    const fresh = await mkdtemp(join(tmpdir(), "wf-cache-"));
    // Not dev: https:// against a plain-http server fails (TLS), it is never downgraded.
    await assert.rejects(
      new WorkflowFetcher({ cacheDir: fresh, guard: { allowPrivate: true } }).fetchWorkflows({
        knot: knot.host,
        repoDid: REPO,
        sha: shas[0] ?? "",
      }),
      (err: unknown) => err instanceof KnotError && err.code === "KnotUnreachable",
    );
    await rm(fresh, { recursive: true, force: true });
    const fetcher = new WorkflowFetcher({ cacheDir });
    for (const [req, field] of [
      [{ knot: "https://evil", repoDid: REPO, sha: shas[0] ?? "" }, "knot host"],
      [{ knot: "a/b", repoDid: REPO, sha: shas[0] ?? "" }, "knot host"],
      [{ knot: knot.host, repoDid: "../../etc", sha: shas[0] ?? "" }, "repo DID"],
      [{ knot: knot.host, repoDid: REPO, sha: "--upload-pack=sh" }, "SHA"],
    ] as const) {
      await assert.rejects(
        fetcher.fetchWorkflows(req),
        (err: unknown) =>
          err instanceof KnotError && err.code === "InvalidInput" && err.message.includes(field),
      );
    }
  });
});
