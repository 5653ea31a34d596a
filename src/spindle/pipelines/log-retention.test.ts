import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { pino } from "pino";
import { LogRetention } from "./log-retention.ts";
import { createMetrics } from "./metrics.ts";

const HOUR = 3_600_000;
const root = mkdtempSync(join(tmpdir(), "loom-retention-"));
after(() => rmSync(root, { recursive: true, force: true }));

function aged(path: string, content: string, ageMs: number): string {
  writeFileSync(path, content);
  const t = (Date.now() - ageMs) / 1000;
  utimesSync(path, t, t);
  return path;
}

describe("LogRetention", () => {
  it("removes old log files of finished runs, and nothing else", async () => {
    const dir = join(root, "logs");
    mkdirSync(dir);
    const old = aged(join(dir, "knot-3abc-old.log"), "x".repeat(100), 48 * HOUR);
    const orphan = aged(join(dir, "knot-3abc-orphan.log"), "y".repeat(10), 48 * HOUR);
    const fresh = aged(join(dir, "knot-3abc-fresh.log"), "z", 1 * HOUR);
    const running = aged(join(dir, "knot-3abc-running.log"), "r", 48 * HOUR);
    const other = aged(join(dir, "notes.txt"), "n", 48 * HOUR);
    mkdirSync(join(dir, "dir.log"));
    const metrics = createMetrics();
    const asked: string[] = [];
    const retention = new LogRetention({
      logDir: dir,
      retentionMs: 24 * HOUR,
      isUnfinished: (wid) => {
        asked.push(wid);
        return wid === "knot-3abc-running";
      },
      removed: metrics.logFilesRemoved,
      logger: pino({ level: "silent" }),
    });
    assert.deepEqual(await retention.sweep(), { removed: 2, bytes: 110 });
    assert.ok(!existsSync(old) && !existsSync(orphan));
    assert.ok(
      existsSync(fresh) && existsSync(running) && existsSync(other) && existsSync(join(dir, "dir.log")),
    );
    assert.ok(!asked.includes("knot-3abc-fresh"), "a fresh file needs no lookup");
    const json = await metrics.registry.getSingleMetric("loom_log_files_removed_total")!.get();
    assert.equal(json.values[0]?.value, 2);
    assert.deepEqual(await retention.sweep(), { removed: 0, bytes: 0 }, "a second pass finds nothing");
  });

  it("a missing log directory is not an error; a retention of 0 is refused", async () => {
    const metrics = createMetrics();
    const opts = {
      logDir: join(root, "never-created"),
      isUnfinished: () => false,
      removed: metrics.logFilesRemoved,
      logger: pino({ level: "silent" }),
    };
    assert.deepEqual(await new LogRetention({ ...opts, retentionMs: HOUR }).sweep(), {
      removed: 0,
      bytes: 0,
    });
    assert.throws(() => new LogRetention({ ...opts, retentionMs: 0 }), /positive/);
  });
});
