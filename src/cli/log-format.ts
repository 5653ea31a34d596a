/**
 * `loom serve` logs for people: pino's JSON lines turned into `12:00:01.234 INFO  message
 * key=value …` as they are written, when stdout is a terminal (or with `--log-format pretty`).
 * A small formatter rather than pino-pretty: no worker thread, no extra dependency, and the
 * fields stay on the line they belong to.
 */
import { styleText } from "node:util";

type Style = Parameters<typeof styleText>[0];

export type LogFormat = "pretty" | "json";

const LEVELS: Record<number, { name: string; style: Style }> = {
  10: { name: "TRACE", style: "gray" },
  20: { name: "DEBUG", style: "gray" },
  30: { name: "INFO", style: "green" },
  40: { name: "WARN", style: "yellow" },
  50: { name: "ERROR", style: "red" },
  60: { name: "FATAL", style: "magenta" },
};

/** pino's own keys: shown in the line's head, not as fields. */
const HEAD_KEYS = new Set(["level", "time", "msg", "pid", "hostname", "name", "v"]);

function fieldValue(value: unknown): string {
  if (typeof value === "string") return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (value !== null && typeof value === "object" && "message" in value && "type" in value) {
    // A serialised error: its message, not its stack (the JSON format keeps the stack).
    return JSON.stringify((value as { message: unknown }).message);
  }
  return JSON.stringify(value) ?? String(value);
}

/** One pino JSON line → one human line (with "\n"); a line that is not JSON passes unchanged. */
export function prettyLine(json: string, colour: boolean): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith("\n") ? json : `${json}\n`;
  }
  const paint = (style: Style, text: string) =>
    colour ? styleText(style, text, { validateStream: false }) : text;
  const level = LEVELS[Number(rec.level)] ?? { name: String(rec.level ?? "?"), style: "white" as Style };
  const time = typeof rec.time === "number" ? new Date(rec.time).toISOString().slice(11, 23) : "";
  const fields = Object.entries(rec)
    .filter(([k, v]) => !HEAD_KEYS.has(k) && v !== undefined)
    .map(([k, v]) => `${paint("dim", `${k}=`)}${fieldValue(v)}`);
  const head = [paint("dim", time), paint(level.style, level.name.padEnd(5)), String(rec.msg ?? "")];
  return `${[...head, ...fields].join(" ")}\n`;
}

/** A pino destination writing human lines to `out`. */
export function prettyDestination(out: { write(text: string): unknown }, colour: boolean) {
  return {
    write(chunk: string): void {
      // pino writes one record per call, each ending in "\n".
      for (const line of chunk.split("\n")) if (line !== "") out.write(prettyLine(line, colour));
    },
  };
}
