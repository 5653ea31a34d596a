/**
 * Validation of runner events (src/runner/protocol.ts) as they arrive on the runner's stdout.
 * Hand-written rather than a schema library: it runs once per output chunk on the hot path of
 * the relay, and the messages it returns name the field that was wrong.
 */
import type { RunnerEvent, RunStatus } from "../runner/protocol.ts";

type Obj = Record<string, unknown>;

const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
const isStr = (v: unknown): v is string => typeof v === "string";
const STATUSES: ReadonlySet<string> = new Set<RunStatus>(["success", "failed", "timeout", "cancelled"]);

/** Checks one decoded JSON value; returns the event, or a short reason it is not one. */
export function checkRunnerEvent(v: unknown): RunnerEvent | string {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "not a JSON object";
  const o = v as Obj;
  if (!isStr(o.type)) return "missing type";
  if (!isStr(o.time)) return `${o.type}: missing time`;
  const bad = fieldError(o);
  return bad === undefined ? (o as unknown as RunnerEvent) : `${o.type}: ${bad}`;
}

function fieldError(o: Obj): string | undefined {
  switch (o.type) {
    case "output":
      if (!isInt(o.step)) return "step is not an integer";
      if (o.stream !== "stdout" && o.stream !== "stderr") return "stream is not stdout or stderr";
      if (!isInt(o.seq)) return "seq is not an integer";
      return isStr(o.data) ? undefined : "data is not a string";
    case "hello":
      if (!isInt(o.version)) return "version is not an integer";
      return isInt(o.pid) && isStr(o.shell) ? undefined : "pid or shell missing";
    case "step_start":
      if (!isInt(o.step)) return "step is not an integer";
      if (!isStr(o.name) || !isStr(o.command)) return "name or command is not a string";
      return o.kind === "system" || o.kind === "user" ? undefined : "kind is not system or user";
    case "heartbeat":
      return o.step === null || isInt(o.step) ? undefined : "step is not an integer or null";
    case "step_end":
      if (!isInt(o.step) || !isInt(o.exitCode)) return "step or exitCode is not an integer";
      if (typeof o.durationMs !== "number" || !Number.isFinite(o.durationMs))
        return "durationMs is not a number";
      return typeof o.timedOut === "boolean" && typeof o.cancelled === "boolean"
        ? undefined
        : "timedOut or cancelled is not a boolean";
    case "result":
      if (!isStr(o.status) || !STATUSES.has(o.status)) return "unknown status";
      if (!isInt(o.exitCode)) return "exitCode is not an integer";
      if (o.failedStep !== null && !isInt(o.failedStep)) return "failedStep is not an integer or null";
      if (o.masked !== undefined && !(isInt(o.masked) && o.masked >= 0))
        return "masked is not a non-negative integer";
      return o.error === undefined || isStr(o.error) ? undefined : "error is not a string";
    default:
      return "unknown event type";
  }
}
