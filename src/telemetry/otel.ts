/**
 * The RunTracer over the OpenTelemetry SDK (loaded only when tracing is on, index.ts). Spans are
 * kept by pipeline (knot, rkey) and by workflow id; parents are given explicitly, so no context
 * manager (and no global registration) is needed: the SDK's provider is this module's alone.
 */
import {
  type Attributes,
  ROOT_CONTEXT,
  type Span,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { OTLPTraceExporter as JsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as ProtoExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, type SpanExporter, TracerProvider } from "@opentelemetry/sdk-trace";
import type { LogLine } from "../protocol/logline.ts";
import type { LogSink } from "../relay/sink.ts";
import type { RunTracer, TracingSettings } from "./tracer.ts";

interface PipelineSpans {
  root: Span;
  queue?: Span;
  workflows: Set<string>;
}

interface WorkflowSpans {
  key: string;
  span: Span;
  engine: string;
  /** The span before running: job create / start, then pod start / runner start. */
  phase?: Span;
  phaseName?: string;
  running: boolean;
  steps: Map<number, Span>;
}

const key = (knot: string, rkey: string) => `${knot}\u0000${rkey}`;
const under = (parent: Span) => trace.setSpan(ROOT_CONTEXT, parent);

export class OtelRunTracer implements RunTracer {
  readonly #provider: TracerProvider;
  readonly #tracer: Tracer;
  readonly #pipelines = new Map<string, PipelineSpans>();
  readonly #workflows = new Map<string, WorkflowSpans>();

  private constructor(provider: TracerProvider) {
    this.#provider = provider;
    this.#tracer = provider.getTracer("loom");
  }

  /** `exporter`: instead of OTLP/HTTP to `s.url` (tests). */
  static create(s: TracingSettings, exporter?: SpanExporter): OtelRunTracer {
    exporter ??=
      s.protocol === "http/json" ? new JsonExporter({ url: s.url }) : new ProtoExporter({ url: s.url });
    return new OtelRunTracer(
      new TracerProvider({
        resource: resourceFromAttributes({ "service.name": s.serviceName }),
        spanProcessors: [new BatchSpanProcessor({ exporter })],
      }),
    );
  }

  async traceAdmission<T extends { state: "queued" | "done" } | null>(
    knot: string,
    rkey: string,
    admit: () => Promise<T>,
  ): Promise<T> {
    const k = key(knot, rkey);
    const attrs: Attributes = { "loom.knot": knot, "loom.rkey": rkey };
    const root = this.#pipelines.get(k)?.root ?? this.#tracer.startSpan("pipeline", { attributes: attrs });
    const admission = this.#tracer.startSpan("admission", { attributes: attrs }, under(root));
    let result: T;
    try {
      result = await admit();
    } catch (err) {
      fail(admission, (err as Error).message);
      admission.end();
      fail(root, "admission failed");
      root.end();
      throw err;
    }
    admission.setAttribute("loom.admission", result === null ? "duplicate" : result.state);
    admission.end();
    if (result === null) {
      // Already stored: this delivery is a duplicate; its trace is the first one's.
      root.setAttribute("loom.duplicate", true);
      root.end();
    } else if (result.state === "queued") {
      this.#pipelines.set(k, {
        root,
        queue: this.#tracer.startSpan("queue wait", { attributes: attrs }, under(root)),
        workflows: new Set(),
      });
    } else {
      root.setAttribute("loom.result", "not run");
      root.end();
    }
    return result;
  }

  claimed(knot: string, rkey: string): void {
    const p = this.#pipelines.get(key(knot, rkey));
    p?.queue?.end();
    if (p) p.queue = undefined;
  }

  workflowStarting(
    wid: string,
    w: { knot: string; rkey: string; name: string; arch: string; engine: string },
  ): void {
    const k = key(w.knot, w.rkey);
    let p = this.#pipelines.get(k);
    if (!p) {
      // Admitted by an earlier process: this trace starts at the run.
      p = {
        root: this.#tracer.startSpan("pipeline", {
          attributes: { "loom.knot": w.knot, "loom.rkey": w.rkey, "loom.recovered": true },
        }),
        workflows: new Set(),
      };
      this.#pipelines.set(k, p);
    }
    p.workflows.add(wid);
    const span = this.#tracer.startSpan(
      `workflow ${w.name}`,
      {
        attributes: {
          "loom.wid": wid,
          "loom.workflow": w.name,
          "loom.arch": w.arch,
          "loom.engine": w.engine,
        },
      },
      under(p.root),
    );
    const kube = w.engine === "kubernetes";
    const phaseName = kube ? "job create" : "start";
    this.#workflows.set(wid, {
      key: k,
      span,
      engine: w.engine,
      phase: this.#tracer.startSpan(phaseName, { attributes: { "loom.wid": wid } }, under(span)),
      phaseName,
      running: false,
      steps: new Map(),
    });
  }

  #nextPhase(w: WorkflowSpans, wid: string, name: string | null): void {
    // One instant ends the span and starts the next: the phases meet exactly.
    const at = performance.timeOrigin + performance.now();
    w.phase?.end(at);
    w.phase = undefined;
    w.phaseName = undefined;
    if (name !== null && !w.running) {
      w.phase = this.#tracer.startSpan(
        name,
        { startTime: at, attributes: { "loom.wid": wid } },
        under(w.span),
      );
      w.phaseName = name;
    }
  }

  engineStarted(wid: string): void {
    const w = this.#workflows.get(wid);
    if (!w) return;
    // Kubernetes: the SpindleSet is written; the Job comes from the controller (milestone).
    if (w.engine === "kubernetes") return;
    if (w.phaseName === "start") this.#nextPhase(w, wid, "runner start");
  }

  milestone(wid: string, what: "job_created"): void {
    const w = this.#workflows.get(wid);
    if (w && what === "job_created" && w.phaseName === "job create") this.#nextPhase(w, wid, "pod start");
  }

  status(wid: string, update: { status: string }): void {
    const w = this.#workflows.get(wid);
    // Only the Kubernetes engine's `running` means the pod runs (the local engine reports it
    // before its runner starts: there the first step ends the runner start).
    if (!w || update.status !== "running" || w.engine !== "kubernetes") return;
    this.#running(w, wid);
  }

  /** The pod / runner is up: whatever start span is open ends. */
  #running(w: WorkflowSpans, wid: string): void {
    if (w.running) return;
    w.running = true;
    this.#nextPhase(w, wid, null);
  }

  sink(wid: string, sink: LogSink): LogSink {
    const w = this.#workflows.get(wid);
    if (!w) return sink;
    return new StepSpans(sink, (line) => this.#line(wid, line));
  }

  #line(wid: string, line: LogLine): void {
    const w = this.#workflows.get(wid);
    if (!w || line.kind !== "control") return;
    const at = lineTime(line.time);
    if (line.step_status === "start") {
      // The first step means the runner runs, whatever the engine said so far.
      this.#running(w, wid);
      w.steps.get(line.step_id)?.end(at);
      w.steps.set(
        line.step_id,
        this.#tracer.startSpan(
          `step ${line.content || `#${line.step_id}`}`,
          {
            startTime: at,
            attributes: {
              "loom.wid": wid,
              "loom.step.id": line.step_id,
              "loom.step.name": line.content,
              "loom.step.kind": line.step_kind === 1 ? "user" : "system",
            },
          },
          under(w.span),
        ),
      );
    } else if (line.step_status === "end") {
      w.steps.get(line.step_id)?.end(at);
      w.steps.delete(line.step_id);
    }
  }

  workflowEnded(
    wid: string,
    final: { status: string; exitCode?: number | null; error?: string | null },
  ): void {
    const w = this.#workflows.get(wid);
    if (!w) return;
    this.#workflows.delete(wid);
    for (const s of w.steps.values()) s.end();
    w.phase?.end();
    w.span.setAttribute("loom.status", final.status);
    if (final.exitCode !== undefined && final.exitCode !== null)
      w.span.setAttribute("loom.exit_code", final.exitCode);
    if (final.status !== "success") fail(w.span, final.error ?? final.status);
    w.span.end();
  }

  pipelineEnded(knot: string, rkey: string): void {
    const k = key(knot, rkey);
    const p = this.#pipelines.get(k);
    if (!p) return;
    this.#pipelines.delete(k);
    p.queue?.end();
    for (const wid of p.workflows) this.workflowEnded(wid, { status: "unknown" });
    p.root.end();
  }

  async shutdown(): Promise<void> {
    for (const w of [...this.#workflows.keys()]) this.workflowEnded(w, { status: "unknown" });
    for (const p of [...this.#pipelines.values()]) {
      p.queue?.end();
      p.root.end();
    }
    this.#pipelines.clear();
    await this.#provider.shutdown();
  }
}

function fail(span: Span, message: string): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}

/** A LogLine's time (Go RFC 3339 with nanoseconds), or now when it has none. */
function lineTime(text: string): Date {
  const ms = Date.parse(text);
  return Number.isFinite(ms) && ms > 0 ? new Date(ms) : new Date();
}

/** Passes every line on; shows the control lines to `observe` first. */
class StepSpans implements LogSink {
  readonly #inner: LogSink;
  readonly #observe: (line: LogLine) => void;
  readonly writeEncoded?: (utf8: string) => void;
  readonly waitBelow?: (bytes: number) => Promise<void>;
  readonly masked?: (count: number) => void;

  constructor(inner: LogSink, observe: (line: LogLine) => void) {
    this.#inner = inner;
    this.#observe = observe;
    // The optional methods exist exactly when the inner sink has them (the relay checks).
    if (inner.writeEncoded) this.writeEncoded = (utf8) => inner.writeEncoded?.(utf8);
    if (inner.waitBelow) this.waitBelow = (bytes) => inner.waitBelow?.(bytes) ?? inner.flush();
    if (inner.masked) this.masked = (count) => inner.masked?.(count);
  }

  get backlog(): number {
    return this.#inner.backlog;
  }

  write(line: LogLine, plainContent?: boolean): void {
    if (line.kind === "control") {
      try {
        this.#observe(line);
      } catch {
        // Tracing never breaks a run's log.
      }
    }
    this.#inner.write(line, plainContent);
  }

  flush(): Promise<void> {
    return this.#inner.flush();
  }
}
