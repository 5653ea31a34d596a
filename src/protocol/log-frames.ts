/**
 * `sh.tangled.ci.subscribePipelineLogs` frames (gen2 §2.8): one binary WebSocket message per
 * event = two concatenated DAG-CBOR values, a header `{op: 1, t: "#control" | "#data"}` then the
 * body; an error frame is header `{op: -1}` and body `{error, message?}`.
 *
 * `@ipld/dag-cbor` writes map keys in canonical (length-first) order, as cbor-gen does.
 */
import * as dagCbor from "@ipld/dag-cbor";
import type { LogLine } from "./logline.ts";
import { rfc3339Seconds } from "./time.ts";

export interface ControlBody {
  time: string;
  workflow: string;
  step: number;
  content: string;
  command?: string;
  status?: "start" | "end";
  kind?: "system" | "user";
}

export interface DataBody {
  time: string;
  workflow: string;
  step: number;
  content: string;
  stream: "stdout" | "stderr";
}

export type LogFrameBody = { t: "#control"; body: ControlBody } | { t: "#data"; body: DataBody };

/**
 * A stored LogLine (Tangled's JSONL log format) → the frame body for `workflow`.
 * GUESSES, each marked: `kind` is always sent on control frames ("system" for step_kind 0/absent:
 * it is never "empty"); a data line without a stream counts as stdout; an unparsable time is sent
 * as Go's zero time rather than failing the whole stream.
 */
export function logFrameBody(line: LogLine, workflow: string): LogFrameBody {
  const time = safeTime(line.time);
  const step = Number.isSafeInteger(line.step_id) ? line.step_id : 0;
  if (line.kind === "control") {
    const body: ControlBody = { time, workflow, step, content: line.content };
    if (line.step_command) body.command = line.step_command;
    if (line.step_status) body.status = line.step_status;
    body.kind = line.step_kind === 1 ? "user" : "system";
    return { t: "#control", body };
  }
  // The JSONL line is one output line without its newline; the frame carries it back (§2.8).
  // A piece of a longer line (`partial`, see logline.ts) gets none: the next piece continues it.
  const content = line.partial === true ? line.content : `${line.content}\n`;
  return { t: "#data", body: { time, workflow, step, content, stream: line.stream ?? "stdout" } };
}

/** One binary message for a stored LogLine. */
export function encodeLogFrame(line: LogLine, workflow: string): Uint8Array {
  const { t, body } = logFrameBody(line, workflow);
  return concat(dagCbor.encode({ op: 1, t }), dagCbor.encode(body));
}

/** The error frame (indigo `events.ErrorFrame`); the appview treats one as fatal. */
export function encodeErrorFrame(error: string, message?: string): Uint8Array {
  const body: { error: string; message?: string } = { error };
  if (message !== undefined && message !== "") body.message = message;
  return concat(dagCbor.encode({ op: -1 }), dagCbor.encode(body));
}

function safeTime(t: string): string {
  try {
    return rfc3339Seconds(t);
  } catch {
    return "0001-01-01T00:00:00Z";
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}
