/**
 * The metrics the Grafana dashboard and the alerts read that the spindle records where the thing
 * happens: queue wait (admission → claim), workflow duration by architecture and final status,
 * log bytes relayed (equal to the bytes in the log files), and the intake's open connections
 * and Jetstream event lag. A real server with the local engine, real SQLite, real sockets; the
 * Jetstream and the knot are the stand-ins of test/support.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { pino } from "pino";
import type { MetricObjectWithValues, MetricValue, Registry } from "prom-client";
import { guardedFetchFunction } from "../../src/net/guarded-fetch.ts";
import { IdentityResolver } from "../../src/net/identity.ts";
import { XrpcClient } from "../../src/net/xrpc-client.ts";
import { KnotCursors, openDatabase, Repos } from "../../src/spindle/db/index.ts";
import { createIntake } from "../../src/spindle/intake/index.ts";
import { createMetrics } from "../../src/spindle/pipelines/metrics.ts";
import { repoScopeKey } from "../../src/spindle/rbac/repo-ref.ts";
import { createSecretsProvider } from "../../src/spindle/secrets/index.ts";
import {
  ALICE,
  addRepo,
  bootServer,
  Collector,
  KNOT,
  pipelineRecord,
  statuses,
  waitFor,
  workflow,
} from "../spindle/server-kit.ts";
import { commitEvent, JetstreamStandIn } from "../support/jetstream-standin.ts";
import { KnotStandIn } from "../support/knot-standin.ts";

/** The samples of one metric (histograms: _bucket, _sum and _count samples under their names). */
async function samples(registry: Registry, name: string): Promise<MetricValue<string>[]> {
  const all = (await registry.getMetricsAsJSON()) as MetricObjectWithValues<MetricValue<string>>[];
  const metric = all.find((m) => m.name === name);
  assert.ok(metric, `${name} is registered`);
  return metric.values;
}

/** The value of the sample called `sample` whose labels include `labels`. */
async function metricValue(
  registry: Registry,
  name: string,
  sample: string,
  labels: Record<string, string | number> = {},
): Promise<number | undefined> {
  const found = (await samples(registry, name)).filter(
    (v) =>
      ((v as { metricName?: string }).metricName ?? name) === sample &&
      Object.entries(labels).every(([k, want]) => String(v.labels[k]) === String(want)),
  );
  assert.ok(found.length <= 1, `one ${sample} sample for ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

describe("spindle metrics: queue wait, workflow duration, log bytes", () => {
  it("a queued pipeline's wait, each workflow's duration by arch and status, and every byte written to the logs", async () => {
    const b = await bootServer({ env: { SPINDLE_SERVER_MAX_JOB_COUNT: "1" } });
    after(() => b.stop());
    addRepo(b.server, ALICE, "loom");
    const reg = b.server.metrics.registry;
    const events = new Collector(`${b.wsUrl}/events`);
    await events.opened;
    const gate = join(b.dir, "gate");
    const p = (name: string, command: string) => pipelineRecord([workflow(name, [{ name: "s", command }])]);
    // One worker: "second" waits in the queue until "first" (held by the gate file) ends.
    await b.server.pipelines.acceptPipeline(
      KNOT,
      "3lxyz2mon0001",
      p("first.yml", `echo hello from first; while [ ! -e ${gate} ]; do sleep 0.05; done`),
    );
    await events.until((f) => statuses(f, "first.yml").some((e) => e.status === "running"));
    await b.server.pipelines.acceptPipeline(KNOT, "3lxyz2mon0002", p("second.yml", "echo two; exit 3"));
    const queuedAt = performance.now();
    // Waiting, it shows its place in the queue (a second pending status with that text).
    await events.until((f) =>
      statuses(f, "second.yml").some((e) => e.error === "queued: position 1 in the spindle's queue"),
    );
    await new Promise((r) => setTimeout(r, 200));
    const heldMs = performance.now() - queuedAt;
    assert.equal(await metricValue(reg, "loom_queue_wait_seconds", "loom_queue_wait_seconds_count"), 1);
    writeFileSync(gate, "");
    await events.until((f) => statuses(f, "second.yml").some((e) => e.status === "failed"));
    events.close();

    // Both claims observed; "second" waited at least as long as the test held "first".
    assert.equal(await metricValue(reg, "loom_queue_wait_seconds", "loom_queue_wait_seconds_count"), 2);
    const waited = (await metricValue(reg, "loom_queue_wait_seconds", "loom_queue_wait_seconds_sum")) ?? 0;
    assert.ok(waited >= heldMs / 1000, `queue wait ${waited}s covers the ${heldMs}ms the test held it`);

    // The local engine runs this machine's default architecture (amd64 unless configured).
    const d = "loom_workflow_duration_seconds";
    assert.equal(await metricValue(reg, d, `${d}_count`, { arch: "amd64", status: "success" }), 1);
    assert.equal(await metricValue(reg, d, `${d}_count`, { arch: "amd64", status: "failed" }), 1);
    assert.equal(await metricValue(reg, d, `${d}_count`, { arch: "arm64", status: "success" }), undefined);
    const firstSeconds = (await metricValue(reg, d, `${d}_sum`, { arch: "amd64", status: "success" })) ?? 0;
    assert.ok(firstSeconds >= heldMs / 1000, `first ran ${firstSeconds}s, held ${heldMs}ms`);

    // Every byte in the log files went through the counter, and nothing else did.
    const logDir = join(b.dir, "logs");
    assert.ok(existsSync(logDir));
    const onDisk = readdirSync(logDir).reduce((n, f) => n + statSync(join(logDir, f)).size, 0);
    assert.ok(onDisk > 0);
    assert.equal(await metricValue(reg, "loom_log_bytes_total", "loom_log_bytes_total"), onDisk);
  });
});

describe("spindle metrics: secrets masked", () => {
  it("every occurrence of a repo secret the runner masked is counted once the workflow ends", async () => {
    const b = await bootServer();
    after(() => b.stop());
    addRepo(b.server, ALICE, "loom");
    const value = "hunter2-very-secret";
    const provider = await createSecretsProvider(b.server.config, b.server.db);
    after(() => provider.stop());
    await provider.add({
      repo: repoScopeKey({ ownerDid: ALICE, name: "loom" }),
      key: "TOKEN",
      value,
      createdBy: ALICE,
    });
    const events = new Collector(`${b.wsUrl}/events`);
    await events.opened;
    // Twice in plain text, once as base64: three occurrences.
    const command = `echo "$TOKEN and $TOKEN"; printf '%s' "$TOKEN" | base64`;
    await b.server.pipelines.acceptPipeline(
      KNOT,
      "3lxyz2mask001",
      pipelineRecord([workflow("mask.yml", [{ name: "s", command }])]),
    );
    await events.until((f) => statuses(f, "mask.yml").some((e) => e.status === "success"));
    events.close();
    const logs = readdirSync(join(b.dir, "logs"))
      .map((f) => readFileSync(join(b.dir, "logs", f), "utf8"))
      .join("");
    assert.ok(logs.includes("*** and ***"), "the runner masked the plain occurrences");
    assert.ok(!logs.includes(value) && !logs.includes(Buffer.from(value).toString("base64").slice(0, 20)));
    const m = "loom_secrets_masked_total";
    assert.equal(await metricValue(b.server.metrics.registry, m, m), 3);
  });
});

describe("spindle metrics: intake connections and Jetstream lag", () => {
  it("the server counts its Jetstream connection and how old each event was when processed", async () => {
    const js = await JetstreamStandIn.start();
    after(() => js.stop());
    const b = await bootServer({
      env: { SPINDLE_SERVER_JETSTREAM_ENDPOINT: js.url },
      server: { intake: { jetstream: { backoff: { baseMs: 20, capMs: 100, minMs: 10 } } } },
    });
    after(() => b.stop());
    const reg = b.server.metrics.registry;
    const c = "loom_intake_connections";
    await js.waitForConnections(1);
    await waitFor(() => js.connectionCount === 1, 5000, "jetstream connection");
    let open: number | undefined;
    await waitFor(
      () => open === 1,
      5000,
      "loom_intake_connections{source=jetstream} = 1",
      async () => {
        open = await metricValue(reg, c, c, { source: "jetstream" });
      },
    );
    // An event two minutes old (a stranger's: dropped by the DID filter, but still read).
    const twoMinutesAgoUs = Date.now() * 1000 - 120_000_000;
    js.push(
      commitEvent({
        did: "did:plc:strangerstrangerstranger",
        collection: "sh.tangled.repo",
        rkey: "3lxyzlag00001",
        record: { name: "x", knot: "knot.example", createdAt: new Date().toISOString() },
        timeUs: twoMinutesAgoUs,
      }),
    );
    const l = "loom_intake_lag_seconds";
    let count: number | undefined;
    await waitFor(
      () => count === 1,
      5000,
      "one lag observation",
      async () => {
        count = await metricValue(reg, l, `${l}_count`, { source: "jetstream" });
      },
    );
    assert.equal(await metricValue(reg, l, `${l}_bucket`, { source: "jetstream", le: 60 }), 0);
    assert.equal(await metricValue(reg, l, `${l}_bucket`, { source: "jetstream", le: 1800 }), 1);

    // A cut connection is counted down until the consumer is back.
    js.dropConnections();
    await js.waitForConnections(2);
    await waitFor(
      () => open === 1 && js.connectionCount === 1,
      5000,
      "reconnected",
      async () => {
        open = await metricValue(reg, c, c, { source: "jetstream" });
      },
    );
    await b.server.stop();
    assert.equal(await metricValue(reg, c, c, { source: "jetstream" }), 0);
  });

  it("createIntake counts each open knot stream, and counts it down when the knot goes away", async () => {
    const knot = await KnotStandIn.start({ gen: 1 });
    after(() => knot.stop());
    const dir = mkdtempSync(join(tmpdir(), "loom-intake-metrics-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const db = openDatabase(join(dir, "spindle.db"));
    after(() => db.close());
    new Repos(db).upsert({ knot: knot.host, owner: ALICE, name: "loom", rkey: "3repo0000000a" });
    new KnotCursors(db).set(knot.host, "0");
    const metrics = createMetrics();
    const intake = createIntake({
      config: {
        server: {
          hostname: "spindle.example.com",
          owner: ALICE,
          jetstreamEndpoint: "ws://127.0.0.1:9/subscribe",
          plcUrl: "http://127.0.0.1:9",
          dev: true,
        },
      } as Parameters<typeof createIntake>[0]["config"],
      db,
      pipelines: { acceptPipeline: async () => {} },
      log: pino({ level: "silent" }),
      knots: { backoff: { baseMs: 5000, capMs: 5000, minMs: 5000 } },
      jetstream: { backoff: { baseMs: 5000, capMs: 5000, minMs: 5000 } },
      metrics,
      identity: new IdentityResolver({ plcUrl: "http://127.0.0.1:9", dev: true }),
      xrpc: new XrpcClient({ fetch: guardedFetchFunction({ allowPrivate: true, timeoutMs: 5000 }) }),
    });
    intake.start();
    after(() => intake.stop());
    const c = "loom_intake_connections";
    let open: number | undefined;
    const read = async () => {
      open = await metricValue(metrics.registry, c, c, { source: "knot" });
    };
    await waitFor(() => open === 1, 5000, "knot stream counted", read);
    knot.closeAll();
    await waitFor(() => open === 0, 5000, "knot stream counted down", read);
    await intake.stop();
    // Never connected (nothing listens there): present, and 0.
    assert.equal(await metricValue(metrics.registry, c, c, { source: "jetstream" }), 0);
  });
});
