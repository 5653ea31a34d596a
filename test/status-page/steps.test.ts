/**
 * The step a running workflow shows is the one it runs now: read from what the scheduler's log
 * sink has written, not from an old look at the file, and pushed to open pages when it changes
 * (the page's periodic re-render is set to an hour here, so only the step change can bring it).
 * A real server (local engine, SQLite) on loopback; the steps wait for files the test writes.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { STATUS_BASE, StatusRoutes } from "../../src/spindle/status/routes.ts";
import { workflowId } from "../../src/workflow/resolve.ts";
import {
  ALICE,
  addRepo,
  bootServer,
  KNOT,
  pipelineRecord,
  waitFor,
  workflow,
} from "../spindle/server-kit.ts";
import { collect } from "./kit.ts";

const RKEY = "3lxyz2steps22";

test("the running workflow's step is the current one on the page and on the live stream, never a stale one", async (t) => {
  const b = await bootServer({ env: { SPINDLE_SERVER_METRICS_ADDR: "127.0.0.1:0" } });
  t.after(() => b.stop());
  addRepo(b.server, ALICE, "loom");
  const s = b.server;
  // The status routes as the server mounts them, but re-rendering on their own only once an hour.
  const routes = new StatusRoutes({
    db: s.db,
    store: s.store,
    logDir: join(b.dir, "logs"),
    scheduler: s.scheduler,
    maxJobCount: 1,
    intake: null,
    subscribe: (fn) => s.events.subscribe(fn),
    logger: s.logger,
    tickMs: 3_600_000,
  });
  const table = routes.routes();
  const http = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const route = table.find((r) =>
      typeof r.path === "string" ? r.path === url.pathname : r.path.test(url.pathname),
    );
    if (!route) return void res.writeHead(404).end();
    void route.handle(req, res, url);
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    routes.close();
    http.close();
  });
  const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}${STATUS_BASE}`;

  const go = (n: number) => join(b.dir, `go${n}`);
  const wait = (n: number) => `while [ ! -f '${go(n)}' ]; do sleep 0.05; done`;
  await s.pipelines.acceptPipeline(
    KNOT,
    RKEY,
    pipelineRecord([
      workflow("steps.yml", [
        { name: "one", command: wait(1) },
        { name: "two", command: wait(2) },
      ]),
    ]),
  );
  const wid = workflowId(KNOT, RKEY, "steps.yml");
  const logFile = join(b.dir, "logs", `${wid}.log`);
  const started = (step: string) => () =>
    existsSync(logFile) && readFileSync(logFile, "utf8").includes(`"content":"${step}","time"`);
  const row = (step: string) => new RegExp(`data-wid="${wid}".*?<td>steps\\.yml</td><td>${step}</td>`, "s");
  const page = async () => (await fetch(base)).text();

  await waitFor(started("one"), 60_000, "step one");
  assert.match(await page(), row("one"));
  const stream = collect(`${base}/stream`);
  t.after(() => stream.stop());
  await waitFor(() => row("one").test(stream.text()), 20_000, "the stream's first render");

  writeFileSync(go(1), "");
  await waitFor(started("two"), 60_000, "step two");
  // Once the file has the line, the sink wrote it: the page shows step two at once.
  const now = await page();
  assert.match(now, row("two"));
  assert.doesNotMatch(now, row("one"), "the step before is gone");
  // No status event and no periodic render: only the step change can bring the new step.
  await waitFor(() => row("two").test(stream.text()), 20_000, "step two on the live stream");
  assert.equal(s.scheduler.currentStep(wid), "two");

  writeFileSync(go(2), "");
  await waitFor(() => s.store.runByWid(wid)?.status === "success", 60_000, "the run's end");
  assert.equal(s.scheduler.currentStep(wid), null, "a finished run keeps no step");
  const after = await page();
  assert.doesNotMatch(after, row("two"));
  assert.match(after, /Nothing running\./);
});
