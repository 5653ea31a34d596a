import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { BlobError, getBlob, sourceRevFromPatch } from "./blob.ts";

const run = promisify(execFile);
const CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
const gitEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: "a",
  GIT_AUTHOR_EMAIL: "a@b",
  GIT_COMMITTER_NAME: "a",
  GIT_COMMITTER_EMAIL: "a@b",
  GIT_CONFIG_GLOBAL: "/dev/null",
};

/** Real `git format-patch --stdout` of two commits on top of a base; returns it and the tip SHA. */
async function formatPatch(): Promise<{ patch: string; tip: string; first: string }> {
  const dir = await mkdtemp(join(tmpdir(), "patch-"));
  try {
    const git = (...args: string[]) =>
      run("git", args, { cwd: dir, env: gitEnv }).then((r) => r.stdout.trim());
    await git("init", "-q", "-b", "main");
    await writeFile(join(dir, "a"), "1\n");
    await git("add", "a");
    await git("commit", "-q", "-m", "base");
    await writeFile(join(dir, "a"), "2\n");
    await git("commit", "-q", "-am", "From 1111111111111111111111111111111111111111 in a subject");
    const first = await git("rev-parse", "HEAD");
    await writeFile(join(dir, "a"), "3\n");
    await git("commit", "-q", "-am", "second");
    const tip = await git("rev-parse", "HEAD");
    const patch = await git("format-patch", "--stdout", "HEAD~2");
    return { patch: `${patch}\n`, tip, first };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe("sourceRevFromPatch", () => {
  it("takes the last commit's From line of gzip format-patch output", async () => {
    const { patch, tip, first } = await formatPatch();
    assert.notEqual(tip, first);
    assert.equal(sourceRevFromPatch(gzipSync(patch)), tip);
    assert.equal(sourceRevFromPatch(Buffer.from(patch)), tip, "uncompressed also read");
  });

  it("refuses plain diffs, bad gzip and oversized patches", () => {
    assert.throws(
      () => sourceRevFromPatch(gzipSync("diff --git a/x b/x\n")),
      (e: unknown) => e instanceof BlobError && e.code === "NotAPatch",
    );
    assert.throws(() => sourceRevFromPatch(Buffer.from([0x1f, 0x8b, 1, 2, 3])), /not valid gzip/);
    const bomb = gzipSync(Buffer.alloc(2 * 1024 * 1024));
    assert.throws(() => sourceRevFromPatch(bomb, 1024 * 1024), /larger than/);
  });
});

describe("getBlob", () => {
  let server: Server;
  let base: string;
  const seen: string[] = [];

  before(async () => {
    server = createServer((req, res) => {
      seen.push(req.url ?? "");
      const url = new URL(req.url ?? "/", "http://x");
      if (url.pathname !== "/xrpc/com.atproto.sync.getBlob") return void res.writeHead(404).end();
      if (url.searchParams.get("cid") === CID) return void res.end(gzipSync("blob bytes"));
      res
        .writeHead(400, { "content-type": "application/json" })
        .end('{"error":"BlobNotFound","message":"no"}');
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it("downloads a blob by DID and CID", async () => {
    const body = await getBlob(base, "did:plc:author", CID, { allowPrivate: true });
    assert.equal(body.byteLength > 0, true);
    assert.equal(seen.at(-1), `/xrpc/com.atproto.sync.getBlob?did=did%3Aplc%3Aauthor&cid=${CID}`);
  });

  it("says BlobNotFound, refuses bad input and private PDS addresses", async () => {
    await assert.rejects(
      getBlob(base, "did:plc:author", `${CID.slice(0, -1)}a`, { allowPrivate: true }),
      (e: unknown) => e instanceof BlobError && e.code === "BlobNotFound",
    );
    await assert.rejects(
      getBlob(base, "nope", CID),
      (e: unknown) => e instanceof BlobError && e.code === "InvalidInput",
    );
    await assert.rejects(
      getBlob(base, "did:plc:a", "../etc"),
      (e: unknown) => e instanceof BlobError && e.code === "InvalidInput",
    );
    await assert.rejects(
      getBlob(base, "did:plc:a", CID),
      (e: unknown) => (e as { code?: string }).code === "ForbiddenAddress",
    );
  });
});
