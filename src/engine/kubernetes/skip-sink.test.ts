import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { encodeLogLine, type LogLine } from "../../protocol/logline.ts";
import { LogFile, MemorySink } from "../../relay/logfile.ts";
import { SkipSink } from "./skip-sink.ts";

const line = (n: number): LogLine => ({
  kind: "data",
  content: `line ${n}`,
  time: "2026-01-01T00:00:00Z",
  step_id: 1,
});
const encoded = (...ns: number[]) => ns.map((n) => `${encodeLogLine(line(n))}\n`).join("");

describe("SkipSink (a recovered run's replay)", () => {
  it("skips lines whether they come one by one or in encoded batches", async () => {
    const dir = await mkdtemp(join(tmpdir(), "loom-skip-"));
    try {
      const file = await LogFile.open(dir, "w");
      const sink = new SkipSink(file, 4);
      sink.write(line(1));
      sink.writeEncoded?.(encoded(2, 3));
      sink.writeEncoded?.(encoded(4, 5, 6));
      sink.write(line(7));
      sink.writeEncoded?.(encoded(8));
      await file.close();
      assert.equal(await readFile(file.path, "utf8"), encoded(5, 6, 7, 8));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("offers encoded batches only when the inner sink takes them", () => {
    assert.equal(new SkipSink(new MemorySink(), 1).writeEncoded, undefined);
  });
});
