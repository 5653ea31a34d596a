import assert from "node:assert/strict";
import { test } from "node:test";
import { createRunTracer, TelemetryConfigError, tracingSettings } from "./index.ts";

test("tracing is off unless an OTEL_* variable asks, and then off again when told so", async () => {
  assert.equal(tracingSettings({}), null);
  assert.equal(await createRunTracer({}), undefined, "no tracer, no SDK");
  assert.equal(tracingSettings({ OTEL_SERVICE_NAME: "x" }), null);
  assert.equal(
    tracingSettings({ OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" }),
    null,
  );
  assert.equal(tracingSettings({ OTEL_SDK_DISABLED: "true", OTEL_TRACES_EXPORTER: "otlp" }), null);
});

test("the endpoint, protocol and service name the variables give", () => {
  assert.deepEqual(tracingSettings({ OTEL_TRACES_EXPORTER: "otlp" }), {
    url: "http://localhost:4318/v1/traces",
    protocol: "http/protobuf",
    serviceName: "loom-spindle",
  });
  assert.deepEqual(
    tracingSettings({
      OTEL_EXPORTER_OTLP_ENDPOINT: "https://otel.example:4318/",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_SERVICE_NAME: "spindle-a",
    }),
    { url: "https://otel.example:4318/v1/traces", protocol: "http/json", serviceName: "spindle-a" },
  );
  assert.equal(
    tracingSettings({
      OTEL_EXPORTER_OTLP_ENDPOINT: "https://ignored:4318",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://traces.example/custom",
      OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json",
    })?.url,
    "https://traces.example/custom",
  );
});

test("settings Loom cannot honour stop start-up with the variable's name", () => {
  const refuses = (env: Record<string, string>, re: RegExp) =>
    assert.throws(
      () => tracingSettings(env),
      (e: unknown) => e instanceof TelemetryConfigError && re.test(e.message),
    );
  refuses({ OTEL_TRACES_EXPORTER: "zipkin" }, /^OTEL_TRACES_EXPORTER: "zipkin" is not supported/);
  refuses(
    { OTEL_EXPORTER_OTLP_ENDPOINT: "c:4318" },
    /^OTEL_EXPORTER_OTLP_ENDPOINT: "c:4318\/v1\/traces" is not an http\(s\) URL/,
  );
  refuses(
    { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4317", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" },
    /^OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" is not supported/,
  );
});
