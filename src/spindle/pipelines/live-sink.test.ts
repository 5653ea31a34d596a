import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { existingLines } from "../../engine/kubernetes/skip-sink.ts";
import { encodeLogLine, type LogLine } from "../../protocol/logline.ts";
import { LiveLogSink, lastStep } from "./live-sink.ts";

const T = "2026-01-01T00:00:00Z";
const start = (content: string, step_id: number): LogLine => ({
  kind: "control",
  content,
  time: T,
  step_id,
  step_status: "start",
  step_kind: 1,
});
const end = (content: string, step_id: number): LogLine => ({
  ...start(content, step_id),
  step_status: "end",
});
const data = (content: string, step_id: number): LogLine => ({
  kind: "data",
  content,
  time: T,
  step_id,
  stream: "stdout",
});
const text = (...lines: LogLine[]) => lines.map((l) => `${encodeLogLine(l)}\n`).join("");

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "loom-live-sink-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("LiveLogSink.step follows the control lines as they are written, and says when it changes", async (t) => {
  const dir = tempDir(t);
  let changes = 0;
  const sink = await LiveLogSink.open(dir, "w1", { onStep: () => changes++ });
  assert.equal(sink.step, null, "before the first step");
  sink.write(start("clone", 0));
  assert.equal(sink.step, "clone");
  sink.write(data('"kind":"control" in output', 0));
  sink.writeEncoded(text(data("more", 0)));
  assert.equal(sink.step, "clone", "data lines leave the step alone");
  sink.write(end("clone", 0));
  assert.equal(sink.step, null, "between steps");
  sink.write(start("build", 1));
  assert.equal(sink.step, "build", "the new step, never the one before");
  assert.equal(changes, 3);
  await sink.close();
  assert.equal(
    readFileSync(join(dir, "w1.log"), "utf8").split("\n").length - 1,
    5,
    "every line reached the file",
  );
});

test("a recovered run's sink starts from the last control line its file holds, however far back", async (t) => {
  const dir = tempDir(t);
  const path = join(dir, "w2.log");
  assert.equal(await lastStep(path), null, "no file yet");
  writeFileSync(path, text(start("clone", 0), end("clone", 0)));
  assert.equal(await lastStep(path), null, "between steps");
  // The start is followed by far more than one read's worth of output, and one line longer than a read.
  const long = data("x".repeat(200 << 10), 1);
  writeFileSync(
    path,
    text(start("clone", 0), start("build", 1), long, ...Array(5000).fill(data("y", 1)), long),
  );
  assert.equal(await lastStep(path), "build");
  writeFileSync(path, `${text(start("build", 1))}${encodeLogLine(end("build", 1)).slice(0, -4)}`);
  assert.equal(await lastStep(path), "build", "a torn last line (a crash mid-write) is not read as one");
  const sink = await LiveLogSink.open(dir, "w2");
  t.after(() => sink.close());
  assert.equal(sink.step, "build");
});

test("a LiveLogSink names its file, so a recovering engine counts the lines already in it", async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "w3.log"), text(start("clone", 0), data("a", 0)));
  const sink = await LiveLogSink.open(dir, "w3");
  t.after(() => sink.close());
  sink.write(data("b", 0));
  assert.equal(await existingLines(sink), 3);
});
