import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { duration } from "./page.ts";
import { currentStep } from "./snapshot.ts";

test("currentStep: the last control line of the file says which step runs, or none between steps", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "loom-status-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "w.log");
  assert.equal(await currentStep(path), null, "no file yet");
  const line = (o: object) => `${JSON.stringify(o)}\n`;
  const start = (name: string, id: number) =>
    line({ kind: "control", content: name, time: "t", step_id: id, step_status: "start" });
  const data = line({ kind: "data", content: '"kind":"control" in output', time: "t", step_id: 1 });
  writeFileSync(
    path,
    start("clone", 0) +
      line({ kind: "control", content: "clone", time: "t", step_id: 0, step_status: "end" }),
  );
  assert.equal(await currentStep(path), null, "between steps");
  writeFileSync(path, start("clone", 0) + start("build", 1) + data + data.repeat(5000));
  assert.equal(await currentStep(path), null, "the start fell out of the 64 KiB tail: unknown, not wrong");
  writeFileSync(path, start("clone", 0) + start("build", 1) + data);
  assert.equal(await currentStep(path), "build");
});

test("duration: seconds, minutes, hours; unknown as a dash", () => {
  assert.equal(duration(null), "–");
  assert.equal(duration(4_200), "4s");
  assert.equal(duration(125_000), "2m 5s");
  assert.equal(duration(3 * 3600_000 + 61_000), "3h 1m");
});
