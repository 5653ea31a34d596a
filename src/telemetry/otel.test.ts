import assert from "node:assert/strict";
import { test } from "node:test";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace";
import type { LogLine } from "../protocol/logline.ts";
import type { LogSink } from "../relay/sink.ts";
import { OtelRunTracer } from "./otel.ts";

const SETTINGS = { url: "http://127.0.0.1:9/v1/traces", protocol: "http/json", serviceName: "t" } as const;

/** Keeps what it is given, through shutdown (the SDK's in-memory exporter forgets on shutdown). */
class Kept implements SpanExporter {
  readonly spans: ReadableSpan[] = [];
  export(spans: ReadableSpan[], done: (r: { code: number }) => void): void {
    this.spans.push(...spans);
    done({ code: 0 });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
  getFinishedSpans(): ReadableSpan[] {
    return this.spans;
  }
}

class Lines implements LogSink {
  readonly lines: LogLine[] = [];
  readonly backlog = 0;
  write(line: LogLine): void {
    this.lines.push(line);
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
}

const control = (step_id: number, content: string, step_status: "start" | "end"): LogLine => ({
  kind: "control",
  content,
  time: new Date().toISOString(),
  step_id,
  step_status,
  step_kind: 1,
});

/** Each span as "parent name > name". */
function tree(spans: ReadableSpan[]): string[] {
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
  return spans.map((s) => `${byId.get(s.parentSpanContext?.spanId ?? "")?.name ?? "-"} > ${s.name}`).sort();
}

test("Kubernetes: job create until the Job exists, pod start until running, then the steps", async () => {
  const exporter = new Kept();
  const tracer = OtelRunTracer.create(SETTINGS, exporter);
  await tracer.traceAdmission("k", "r1", async () => ({ state: "queued" as const }));
  tracer.claimed("k", "r1");
  tracer.workflowStarting("w1", {
    knot: "k",
    rkey: "r1",
    name: "build.yml",
    arch: "arm64",
    engine: "kubernetes",
  });
  tracer.engineStarted("w1");
  tracer.milestone("w1", "job_created");
  tracer.status("w1", { status: "running" });
  const inner = new Lines();
  const sink = tracer.sink("w1", inner);
  sink.write(control(1, "compile", "start"));
  sink.write({ kind: "data", content: "output", time: "", step_id: 1, stream: "stdout" });
  sink.write(control(1, "compile", "end"));
  assert.equal(inner.lines.length, 3, "every line passes on");
  tracer.workflowEnded("w1", { status: "success", exitCode: 0 });
  tracer.pipelineEnded("k", "r1");
  await tracer.shutdown();
  const spans = exporter.getFinishedSpans();
  assert.deepEqual(tree(spans), [
    "- > pipeline",
    "pipeline > admission",
    "pipeline > queue wait",
    "pipeline > workflow build.yml",
    "workflow build.yml > job create",
    "workflow build.yml > pod start",
    "workflow build.yml > step compile",
  ]);
  const names = (n: string) => spans.find((s) => s.name === n) as ReadableSpan;
  const end = (s: ReadableSpan) => s.endTime[0] * 1e9 + s.endTime[1];
  const start = (s: ReadableSpan) => s.startTime[0] * 1e9 + s.startTime[1];
  assert.ok(end(names("job create")) <= start(names("pod start")), "pod start follows job create");
  assert.equal(names("workflow build.yml").attributes["loom.arch"], "arm64");
});

test("a duplicate admission ends its trace at once; nothing else is left open", async () => {
  const exporter = new Kept();
  const tracer = OtelRunTracer.create(SETTINGS, exporter);
  await tracer.traceAdmission("k", "r2", async () => null);
  await assert.rejects(
    tracer.traceAdmission("k", "r3", async () => {
      throw new Error("disk full");
    }),
    /disk full/,
  );
  await tracer.shutdown();
  const spans = exporter.getFinishedSpans();
  assert.deepEqual(tree(spans), [
    "- > pipeline",
    "- > pipeline",
    "pipeline > admission",
    "pipeline > admission",
  ]);
  assert.equal(spans.filter((s) => s.status.code === 2).length, 2, "the failed admission and its pipeline");
});

test("shutdown ends what is still open (a run cut short by a stop)", async () => {
  const exporter = new Kept();
  const tracer = OtelRunTracer.create(SETTINGS, exporter);
  await tracer.traceAdmission("k", "r4", async () => ({ state: "queued" as const }));
  tracer.workflowStarting("w4", { knot: "k", rkey: "r4", name: "a.yml", arch: "amd64", engine: "local" });
  tracer.sink("w4", new Lines()).write(control(0, "s", "start"));
  await tracer.shutdown();
  assert.deepEqual(tree(exporter.getFinishedSpans()), [
    "- > pipeline",
    "pipeline > admission",
    "pipeline > queue wait",
    "pipeline > workflow a.yml",
    "workflow a.yml > start",
    "workflow a.yml > step s",
  ]);
});
