/**
 * Traces of runs, end to end: a real spindle server (local engine, SQLite) with the tracer the
 * OTEL_* variables ask for, exporting over OTLP/HTTP to an in-process collector on loopback
 * (otlp-collector.ts decodes JSON and protobuf). Two pipelines through one worker slot: the
 * first with a passing workflow of two steps that print a secret and a failing one, the second
 * waiting in the queue. The collector receives one trace per pipeline: the root `pipeline`, its
 * `admission` and `queue wait`, one `workflow <name>` per workflow with `start`, `runner start`
 * and a span per step under it; the failing workflow's span carries its error. No secret, in
 * any form, is in any attribute, status or byte sent.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { repoScopeKey } from "../../src/spindle/rbac/index.ts";
import { SqliteSecretsProvider } from "../../src/spindle/secrets/index.ts";
import { createRunTracer, type RunTracer } from "../../src/telemetry/index.ts";
import {
  ALICE,
  addRepo,
  bootServer,
  KEY_HEX,
  KNOT,
  pipelineRecord,
  waitFor,
  workflow,
} from "../spindle/server-kit.ts";
import { type CollectedSpan, type Collector, startCollector } from "./otlp-collector.ts";

const SECRET = "tr4ce-Secret-5521-kq";
const FORMS = [SECRET, Buffer.from(SECRET).toString("base64"), Buffer.from(SECRET).toString("base64url")];
const RK = { first: "3lxyz2trace12", second: "3lxyz2trace22" };

interface Traced {
  spans: CollectedSpan[];
  c: Collector;
  failError: string;
}

async function runTraced(protocol: "http/json" | "http/protobuf"): Promise<Traced> {
  const c = await startCollector();
  const tracer = (await createRunTracer({
    OTEL_EXPORTER_OTLP_ENDPOINT: c.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
    OTEL_SERVICE_NAME: "loom-test",
  })) as RunTracer;
  assert.ok(tracer, "tracing is on");
  const b = await bootServer({ env: { SPINDLE_SERVER_MAX_JOB_COUNT: "1" }, server: { tracer } });
  try {
    addRepo(b.server, ALICE, "loom");
    await new SqliteSecretsProvider({ db: b.server.db, key: Buffer.from(KEY_HEX, "hex") }).add({
      repo: repoScopeKey({ ownerDid: ALICE, name: "loom" }),
      key: "SECRET_TOKEN",
      value: SECRET,
      createdBy: ALICE,
    });
    await b.server.pipelines.acceptPipeline(
      KNOT,
      RK.first,
      pipelineRecord([
        workflow("pass.yml", [
          { name: "one", command: 'echo "one $SECRET_TOKEN"' },
          { name: "two", command: 'printf %s "$SECRET_TOKEN" | base64' },
        ]),
        workflow("fail.yml", [{ name: "boom", command: "exit 2" }]),
      ]),
    );
    await b.server.pipelines.acceptPipeline(
      KNOT,
      RK.second,
      pipelineRecord([workflow("later.yml", [{ name: "only", command: "echo later" }])]),
    );
    const done = (rkey: string, name: string) =>
      ["success", "failed"].includes(String(b.server.store.runByName(KNOT, rkey, name)?.status));
    await waitFor(
      () => done(RK.first, "pass.yml") && done(RK.first, "fail.yml") && done(RK.second, "later.yml"),
      60_000,
      "every workflow to finish",
    );
    // The worker ends the pipeline's trace after its last workflow; then the buffered spans go.
    await waitFor(() => b.server.scheduler.activePipelines === 0, 20_000, "the workers");
    const failError = b.server.store.runByName(KNOT, RK.first, "fail.yml")?.error;
    await b.stop();
    await tracer.shutdown();
    assert.ok(failError);
    return { spans: c.spans, c, failError };
  } finally {
    await b.stop();
    await c.stop();
  }
}

function checkTraces({ spans, c, failError }: Traced): void {
  const traces = new Map<string, CollectedSpan[]>();
  for (const s of spans) traces.set(s.traceId, [...(traces.get(s.traceId) ?? []), s]);
  assert.equal(traces.size, 2, `one trace per pipeline: ${spans.map((s) => s.name).join(", ")}`);
  const byRkey = new Map<string, CollectedSpan[]>();
  for (const t of traces.values()) {
    const roots = t.filter((s) => s.parentSpanId === "");
    assert.equal(roots.length, 1, "one root per trace");
    const root = roots[0] as CollectedSpan;
    assert.equal(root.name, "pipeline");
    assert.equal(root.attributes["loom.knot"], KNOT);
    byRkey.set(String(root.attributes["loom.rkey"]), t);
    const ids = new Set(t.map((s) => s.spanId));
    for (const s of t)
      assert.ok(s.parentSpanId === "" || ids.has(s.parentSpanId), `${s.name}: parent in its trace`);
  }
  const child = (t: CollectedSpan[], parent: CollectedSpan, name: string) => {
    const found = t.filter((s) => s.parentSpanId === parent.spanId && s.name === name);
    assert.equal(found.length, 1, `${parent.name} → ${name}: ${t.map((s) => s.name).join(", ")}`);
    return found[0] as CollectedSpan;
  };
  for (const [rkey, workflows] of [
    [RK.first, { "pass.yml": ["one", "two"], "fail.yml": ["boom"] }],
    [RK.second, { "later.yml": ["only"] }],
  ] as const) {
    const t = byRkey.get(rkey);
    assert.ok(t, `a trace for ${rkey}`);
    const root = t.find((s) => s.parentSpanId === "") as CollectedSpan;
    child(t, root, "admission");
    child(t, root, "queue wait");
    for (const [name, steps] of Object.entries(workflows)) {
      const wf = child(t, root, `workflow ${name}`);
      assert.equal(wf.attributes["loom.workflow"], name);
      assert.equal(wf.attributes["loom.engine"], "local");
      assert.match(String(wf.attributes["loom.arch"]), /^(amd64|arm64)$/);
      child(t, wf, "start");
      child(t, wf, "runner start");
      for (const step of steps) {
        const s = child(t, wf, `step ${step}`);
        assert.equal(s.attributes["loom.step.name"], step);
        assert.equal(s.attributes["loom.step.kind"], "user");
      }
      if (name === "fail.yml") {
        assert.equal(wf.attributes["loom.status"], "failed");
        assert.equal(wf.status.code, 2, "ERROR");
        assert.equal(wf.status.message, failError, "the failure reason");
      } else {
        assert.equal(wf.attributes["loom.status"], "success");
      }
    }
  }
  // Nothing secret anywhere: attributes, statuses, names, and every byte sent.
  for (const s of spans) {
    const text = JSON.stringify([s.name, s.attributes, s.status]);
    for (const form of FORMS) assert.ok(!text.includes(form), `${s.name} holds the secret`);
  }
  for (const { body } of c.bodies) {
    for (const form of FORMS) {
      assert.ok(!body.includes(Buffer.from(form)), "a request body holds the secret");
    }
  }
}

describe("traces of runs (OpenTelemetry, OTLP/HTTP)", () => {
  let json: Traced;
  before(async () => {
    json = await runTraced("http/json");
  });

  it("JSON: one trace per pipeline with admission, queue wait, start, runner start and each step", () => {
    assert.ok(json.c.bodies.every((b) => b.type.startsWith("application/json")));
    checkTraces(json);
    if (process.env.LOOM_TEST_LOG)
      for (const x of json.spans) console.log(x.traceId.slice(0, 6), x.name, x.attributes);
  });

  it("protobuf (the OTLP default): the same traces", async () => {
    const proto = await runTraced("http/protobuf");
    assert.ok(proto.c.bodies.length > 0 && proto.c.bodies.every((b) => b.type === "application/x-protobuf"));
    checkTraces(proto);
  });
});
