/** The tracing interface the spindle calls (index.ts describes the trace), and its settings. */
import type { LogSink } from "../relay/sink.ts";

export interface RunTracer {
  /** Wraps one admission: starts the pipeline's trace; `queued` starts its queue wait, else it ends. */
  traceAdmission<T extends { state: "queued" | "done" } | null>(
    knot: string,
    rkey: string,
    admit: () => Promise<T>,
  ): Promise<T>;
  /** A worker claimed the pipeline: the queue wait ends. */
  claimed(knot: string, rkey: string): void;
  /** A workflow is handed to the engine (`engine`: its name, which names the first span). */
  workflowStarting(
    wid: string,
    w: { knot: string; rkey: string; name: string; arch: string; engine: string },
  ): void;
  /** `engine.start` returned. */
  engineStarted(wid: string): void;
  /** The engine's milestones before running (Kubernetes: the workflow's Job exists). */
  milestone(wid: string, what: "job_created"): void;
  /** The engine's status updates (`running` ends the pod/runner start). */
  status(wid: string, update: { status: string }): void;
  /** A sink that turns the run's control lines into step spans, passing every line on. */
  sink(wid: string, sink: LogSink): LogSink;
  /** The workflow's final status. */
  workflowEnded(
    wid: string,
    final: { status: string; exitCode?: number | null; error?: string | null },
  ): void;
  /** Every workflow of the pipeline is done: anything still open ends, then the trace. */
  pipelineEnded(knot: string, rkey: string): void;
  /** Ends what is open and sends what is buffered. */
  shutdown(): Promise<void>;
}

export interface TracingSettings {
  url: string;
  protocol: "http/json" | "http/protobuf";
  serviceName: string;
}
