/**
 * `SPINDLE_SERVER_METRICS_ADDR`: `/metrics` moves to its own listener (not published with the
 * public API); `/healthz` and `/readyz` answer on both; without it, `/metrics` stays public.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { bootServer } from "./server-kit.ts";

const get = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
};

test("with a metrics address, /metrics is served there and not on the public port", async (t) => {
  const b = await bootServer({ env: { SPINDLE_SERVER_METRICS_ADDR: "127.0.0.1:0" } });
  t.after(() => b.stop());
  const ops = b.server.metricsUrl;
  assert.ok(ops && ops !== b.url, "a second listener");
  const metrics = await get(`${ops}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /^# TYPE loom_pipelines_total counter$/m);
  assert.equal((await get(`${b.url}/metrics`)).status, 404);
  for (const base of [b.url, ops]) {
    assert.deepEqual(await get(`${base}/healthz`), { status: 200, body: "ok\n" });
    assert.deepEqual(await get(`${base}/readyz`), { status: 200, body: "ready\n" });
  }
  assert.equal((await get(`${ops}/xrpc/sh.tangled.owner`)).status, 404, "only operations paths");
});

test("without one, /metrics stays on the public port", async (t) => {
  const b = await bootServer();
  t.after(() => b.stop());
  assert.equal(b.server.metricsUrl, null);
  assert.equal((await get(`${b.url}/metrics`)).status, 200);
});
