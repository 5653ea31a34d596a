/**
 * An in-process OTLP/HTTP trace collector for tests: a real HTTP server on loopback that takes
 * `POST /v1/traces` in either encoding OTLP/HTTP allows — JSON, or protobuf (decoded here from
 * the wire format: the few fields of ExportTraceServiceRequest a test reads) — and keeps every
 * span, normalised, with the raw bodies (to search them for what must never be sent).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export type AttrValue = string | number | boolean;

export interface CollectedSpan {
  traceId: string;
  spanId: string;
  /** "" for a root span. */
  parentSpanId: string;
  name: string;
  attributes: Record<string, AttrValue>;
  status: { code: number; message: string };
}

export interface Collector {
  url: string;
  spans: CollectedSpan[];
  /** Raw request bodies, and their content types. */
  bodies: { type: string; body: Buffer }[];
  stop(): Promise<void>;
}

export async function startCollector(): Promise<Collector> {
  const spans: CollectedSpan[] = [];
  const bodies: { type: string; body: Buffer }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const type = String(req.headers["content-type"] ?? "");
      if (req.method !== "POST" || req.url !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      bodies.push({ type, body });
      try {
        spans.push(...(type.startsWith("application/json") ? fromJson(body) : fromProtobuf(body)));
      } catch (err) {
        res.writeHead(400, { "content-type": "text/plain" }).end(String(err));
        return;
      }
      const json = type.startsWith("application/json");
      res.writeHead(200, { "content-type": json ? "application/json" : "application/x-protobuf" });
      res.end(json ? "{}" : Buffer.alloc(0));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    bodies,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

type JsonValue = {
  stringValue?: string;
  intValue?: number | string;
  boolValue?: boolean;
  doubleValue?: number;
};

function fromJson(body: Buffer): CollectedSpan[] {
  const req = JSON.parse(body.toString("utf8")) as {
    resourceSpans?: {
      scopeSpans?: {
        spans?: {
          traceId: string;
          spanId: string;
          parentSpanId?: string;
          name: string;
          attributes?: { key: string; value: JsonValue }[];
          status?: { code?: number; message?: string };
        }[];
      }[];
    }[];
  };
  const out: CollectedSpan[] = [];
  for (const rs of req.resourceSpans ?? [])
    for (const ss of rs.scopeSpans ?? [])
      for (const s of ss.spans ?? []) {
        const attributes: Record<string, AttrValue> = {};
        for (const a of s.attributes ?? []) {
          const v = a.value;
          attributes[a.key] =
            v.stringValue ??
            (v.intValue !== undefined ? Number(v.intValue) : (v.boolValue ?? v.doubleValue ?? ""));
        }
        out.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ?? "",
          name: s.name,
          attributes,
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? "" },
        });
      }
  return out;
}

/** Protobuf wire format: (field number, wire type, value) of one message's fields. */
function* fields(buf: Buffer): Generator<{ no: number; varint?: bigint; bytes?: Buffer; fixed?: Buffer }> {
  let i = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[i++];
      if (b === undefined) throw new Error("truncated varint");
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
      shift += 7n;
    }
  };
  const take = (n: number): Buffer => {
    if (i + n > buf.length) throw new Error("truncated field");
    const out = buf.subarray(i, i + n);
    i += n;
    return out;
  };
  while (i < buf.length) {
    const tag = Number(varint());
    const no = tag >>> 3;
    switch (tag & 7) {
      case 0:
        yield { no, varint: varint() };
        break;
      case 1:
        yield { no, fixed: take(8) };
        break;
      case 2:
        yield { no, bytes: take(Number(varint())) };
        break;
      case 5:
        yield { no, fixed: take(4) };
        break;
      default:
        throw new Error(`unsupported wire type ${tag & 7}`);
    }
  }
}

function anyValue(buf: Buffer): AttrValue {
  for (const f of fields(buf)) {
    if (f.no === 1 && f.bytes) return f.bytes.toString("utf8");
    if (f.no === 2 && f.varint !== undefined) return f.varint !== 0n;
    if (f.no === 3 && f.varint !== undefined) return Number(BigInt.asIntN(64, f.varint));
    if (f.no === 4 && f.fixed) return f.fixed.readDoubleLE(0);
  }
  return "";
}

function fromProtobuf(body: Buffer): CollectedSpan[] {
  const out: CollectedSpan[] = [];
  for (const rs of fields(body)) {
    if (rs.no !== 1 || !rs.bytes) continue; // resource_spans
    for (const ss of fields(rs.bytes)) {
      if (ss.no !== 2 || !ss.bytes) continue; // scope_spans
      for (const sp of fields(ss.bytes)) {
        if (sp.no !== 2 || !sp.bytes) continue; // spans
        const span: CollectedSpan = {
          traceId: "",
          spanId: "",
          parentSpanId: "",
          name: "",
          attributes: {},
          status: { code: 0, message: "" },
        };
        for (const f of fields(sp.bytes)) {
          if (!f.bytes) continue;
          if (f.no === 1) span.traceId = f.bytes.toString("hex");
          else if (f.no === 2) span.spanId = f.bytes.toString("hex");
          else if (f.no === 4) span.parentSpanId = f.bytes.toString("hex");
          else if (f.no === 5) span.name = f.bytes.toString("utf8");
          else if (f.no === 9) {
            let key = "";
            let value: AttrValue = "";
            for (const kv of fields(f.bytes)) {
              if (kv.no === 1 && kv.bytes) key = kv.bytes.toString("utf8");
              if (kv.no === 2 && kv.bytes) value = anyValue(kv.bytes);
            }
            span.attributes[key] = value;
          } else if (f.no === 15) {
            for (const st of fields(f.bytes)) {
              if (st.no === 2 && st.bytes) span.status.message = st.bytes.toString("utf8");
              if (st.no === 3 && st.varint !== undefined) span.status.code = Number(st.varint);
            }
          }
        }
        out.push(span);
      }
    }
  }
  return out;
}
