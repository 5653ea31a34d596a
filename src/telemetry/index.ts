/**
 * Traces of a run (OpenTelemetry), opt-in by the standard `OTEL_*` variables. Off — and free:
 * no SDK loaded, every hook an `undefined?.()` — unless one of these is set:
 *
 *   OTEL_TRACES_EXPORTER=otlp, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
 *
 * and neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none says otherwise. Spans go to
 * `<OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces` (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is;
 * default http://localhost:4318/v1/traces) over OTLP/HTTP, JSON or protobuf as
 * OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL says (http/protobuf, the spec's default, or http/json;
 * grpc is refused with a clear error). OTEL_SERVICE_NAME names the service (default
 * loom-spindle); the exporter itself reads OTEL_EXPORTER_OTLP_HEADERS and its timeouts.
 *
 * The shape of a trace (one per pipeline, RunTracer below):
 *
 *   pipeline ─┬─ admission
 *             ├─ queue wait
 *             └─ workflow <name> ─┬─ job create (Kubernetes: until the Job exists) | start (local)
 *                                 ├─ pod start (Kubernetes: Job → running) | runner start (local)
 *                                 └─ step <name> (one per step, from the log's control lines)
 *
 * Attributes are identifiers and outcomes only (knot, rkey, wid, workflow, architecture,
 * engine, step id and name, status, exit code, the failure reason, which never holds a secret
 * value): no commands, environment or log content.
 */
import type { RunTracer, TracingSettings } from "./tracer.ts";

export type { RunTracer, TracingSettings } from "./tracer.ts";

export type Env = Readonly<Record<string, string | undefined>>;

export class TelemetryConfigError extends Error {
  override readonly name = "TelemetryConfigError";
}

const set = (v: string | undefined) => v !== undefined && v.trim() !== "";

/** The settings the `OTEL_*` variables ask for, or null when tracing is off. */
export function tracingSettings(env: Env): TracingSettings | null {
  if ((env.OTEL_SDK_DISABLED ?? "").trim().toLowerCase() === "true") return null;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (exporters.includes("none")) return null;
  for (const e of exporters) {
    if (e !== "otlp")
      throw new TelemetryConfigError(
        `OTEL_TRACES_EXPORTER: "${e}" is not supported (Loom exports "otlp", or "none")`,
      );
  }
  const tracesEndpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (exporters.length === 0 && !set(tracesEndpoint) && !set(endpoint)) return null;
  const url = set(tracesEndpoint)
    ? (tracesEndpoint as string).trim()
    : set(endpoint)
      ? `${(endpoint as string).trim().replace(/\/+$/, "")}/v1/traces`
      : "http://localhost:4318/v1/traces";
  try {
    const u = new URL(url);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error("not http(s)");
  } catch {
    throw new TelemetryConfigError(
      `OTEL_EXPORTER_OTLP_${set(tracesEndpoint) ? "TRACES_" : ""}ENDPOINT: "${url}" is not an http(s) URL`,
    );
  }
  const protocolVar = set(env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL)
    ? "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
    : "OTEL_EXPORTER_OTLP_PROTOCOL";
  const protocol = (env[protocolVar] ?? "").trim() || "http/protobuf";
  if (protocol !== "http/json" && protocol !== "http/protobuf")
    throw new TelemetryConfigError(
      `${protocolVar}: "${protocol}" is not supported (http/protobuf or http/json)`,
    );
  return { url, protocol, serviceName: (env.OTEL_SERVICE_NAME ?? "").trim() || "loom-spindle" };
}

/**
 * The run tracer the environment asks for, or undefined (tracing off: the SDK is never loaded).
 * Throws TelemetryConfigError on settings it cannot honour.
 */
export async function createRunTracer(env: Env): Promise<RunTracer | undefined> {
  const settings = tracingSettings(env);
  if (settings === null) return undefined;
  const { OtelRunTracer } = await import("./otel.ts");
  return OtelRunTracer.create(settings);
}
