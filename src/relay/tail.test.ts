import assert from "node:assert/strict";
import { appendFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { tailLogFile } from "./tail.ts";

describe("tailLogFile", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "loom-tail-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function collect(gen: AsyncGenerator<string>): Promise<string[]> {
    const out: string[] = [];
    for await (const line of gen) out.push(line);
    return out;
  }

  it("reads every line of a finished workflow's file verbatim and stops at the end", async () => {
    const path = join(dir, "done.log");
    await writeFile(path, '{"a":1}\n{"b":"é\\u003c"}\n\nlast-without-newline');
    const lines = await collect(tailLogFile(path, { finished: () => true }));
    assert.deepEqual(lines, ['{"a":1}', '{"b":"é\\u003c"}', "", "last-without-newline"]);
  });

  it("follows a running workflow's file until it finishes, in order", async () => {
    const path = join(dir, "running.log");
    await writeFile(path, "one\n");
    let finished = false;
    const seen: string[] = [];
    const tail = (async () => {
      for await (const line of tailLogFile(path, { finished: () => finished, pollMs: 50 })) seen.push(line);
    })();
    await new Promise((r) => setTimeout(r, 100));
    await appendFile(path, "two\nthr");
    await new Promise((r) => setTimeout(r, 100));
    await appendFile(path, "ee\n");
    await appendFile(path, "four\n");
    finished = true;
    await tail;
    assert.deepEqual(seen, ["one", "two", "three", "four"]);
  });

  it("stops following when aborted", async () => {
    const path = join(dir, "abort.log");
    await writeFile(path, "x\n");
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const t0 = Date.now();
    const lines = await collect(
      tailLogFile(path, { finished: () => false, signal: ac.signal, pollMs: 10_000 }),
    );
    assert.deepEqual(lines, ["x"]);
    assert.ok(Date.now() - t0 < 5000);
  });

  it("skips a line longer than the cap and goes on", async () => {
    const path = join(dir, "long.log");
    await writeFile(path, `a\n${"z".repeat(200_000)}\nb\n`);
    const lines = await collect(tailLogFile(path, { finished: () => true, maxLineBytes: 1000 }));
    assert.deepEqual(lines, ["a", "b"]);
  });

  it("rejects when the file does not exist (the caller sends the synthetic lines)", async () => {
    await assert.rejects(collect(tailLogFile(join(dir, "missing.log"), { finished: () => true })), {
      code: "ENOENT",
    });
  });
});
