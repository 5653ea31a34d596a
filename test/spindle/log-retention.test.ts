/**
 * Log retention on a real server: a finished run's log file that has aged past
 * SPINDLE_SERVER_LOG_RETENTION is removed when the server starts; the run itself stays (its
 * statuses replay on /events) and /logs replays nothing.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { workflowId } from "../../src/workflow/resolve.ts";
import { eventually } from "../harness/index.ts";
import {
  ALICE,
  addRepo,
  bootServer,
  Collector,
  KNOT,
  pipelineRecord,
  statuses,
  workflow,
} from "./server-kit.ts";

test("an aged log file of a finished run is removed; the run and its statuses stay", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "loom-retention-server-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const rkey = "3lxyz2retain2";
  const file = join(dir, "logs", `${workflowId(KNOT, rkey, "old.yml")}.log`);

  const first = await bootServer({ dir });
  addRepo(first.server, ALICE, "loom");
  const events = new Collector(`${first.wsUrl}/events`);
  await events.opened;
  await first.server.pipelines.acceptPipeline(
    KNOT,
    rkey,
    pipelineRecord([workflow("old.yml", [{ name: "s", command: "echo kept a while" }])]),
  );
  await events.until((f) => statuses(f, "old.yml").some((e) => e.status === "success"));
  events.close();
  await first.stop();
  assert.ok(existsSync(file));
  const twoHoursAgo = (Date.now() - 2 * 3_600_000) / 1000;
  utimesSync(file, twoHoursAgo, twoHoursAgo);

  const second = await bootServer({ dir, env: { SPINDLE_SERVER_LOG_RETENTION: "1h" } });
  t.after(() => second.stop());
  await eventually("the aged log file is removed", async () => !existsSync(file));
  const metrics = await (await fetch(`${second.url}/metrics`)).text();
  assert.match(metrics, /^loom_log_files_removed_total 1$/m);

  const logs = new Collector(`${second.wsUrl}/logs/${KNOT}/${rkey}/old.yml`);
  assert.deepEqual(await logs.closed, { code: 1000, reason: "log stream complete" });
  assert.deepEqual(logs.frames, []);
  const replay = new Collector(`${second.wsUrl}/events?cursor=1`);
  await replay.until((f) => statuses(f, "old.yml").some((e) => e.status === "success"));
  replay.close();
});
