/**
 * Tangled's log line (spec §4.3) and an encoder that reproduces, byte for byte, what the Go
 * spindle writes: `encoding/json` of its LogLine struct. Tailers send each file line verbatim as
 * one WebSocket frame, so the appview sees exactly these bytes.
 *
 * Field order is the struct order: kind, content, time, step_id, then the `omitempty` fields
 * stream, step_status, step_kind, step_command, each left out when empty (step_kind when 0, i.e.
 * a system step). Loom adds one field of its own, last and only when true: `partial` (below);
 * Go's decoder, like most JSON readers, ignores a field it does not know.
 *
 * Long lines: a data line's content is one output line, whole, up to MAX_LINE_BYTES. A longer
 * line is stored and sent as pieces of at most that size, cut at points that depend only on the
 * line (src/relay/line-cut.ts); every piece but the last has `partial: true` ("the line goes on
 * in the next data line of this step and stream"). No newline is added between pieces: the
 * `sh.tangled.ci` frames (log-frames.ts) end a `#data` content with "\n" only on a line's last
 * piece, so a viewer that joins contents sees the line as the program printed it.
 */

export type LogKind = "data" | "control";
export type LogStream = "stdout" | "stderr";
export type StepStatus = "start" | "end";

/** Wire names are Tangled's (snake_case), so a parsed file line is a LogLine as is. */
export interface LogLine {
  kind: LogKind;
  content: string;
  /** Go RFC3339Nano text in UTC, e.g. `2026-02-10T12:00:00.000000001Z`; see formatTime(). */
  time: string;
  step_id: number;
  stream?: LogStream;
  step_status?: StepStatus;
  /** 1 = user step; 0 (system) is never written. */
  step_kind?: number;
  step_command?: string;
  /** A piece of a longer line that goes on in the next data line (never written when false). */
  partial?: boolean;
}

/**
 * Longest data line content stored and sent whole, in bytes of UTF-8: 1 MiB. Real CI output
 * stays below it (minified bundles, JSON dumps and base64 blobs of a few hundred KiB come through
 * as one line), while the relay's memory stays bounded (it holds at most one such line per
 * stream of the running step) and an encoded line (at most six bytes per content byte when
 * every byte is escaped) stays far below the 16 MiB message caps of common WebSocket clients.
 */
export const MAX_LINE_BYTES = 1 << 20;

/** Longest encoded log file line a reader must accept: every content byte escaped, plus fields. */
export const MAX_ENCODED_LINE_BYTES = 6 * MAX_LINE_BYTES + (64 << 10);

/** Go's zero time.Time, used by the synthetic lines of a workflow that failed without a log. */
export const ZERO_TIME = "0001-01-01T00:00:00Z";

// Characters Go's HTML-safe encoder escapes that JSON.stringify leaves alone, plus lone UTF-16
// surrogates (JSON.stringify writes them as `\udXXX`; Go never sees them because they cannot
// be UTF-8, and writes `\ufffd` for the invalid bytes they would be). Escaped backslashes are
// matched as a pair so a literal `\` followed by text like `ud800` is never mistaken for one.
const NEEDS_ESCAPE = /["\\\x00-\x1f<>&\u2028\u2029\ud800-\udfff]/;
const NEEDS_FIXUP = /[<>&\u2028\u2029\ud800-\udfff]/;
const FIXUP = /\\\\|\\ud[89a-f][0-9a-f]{2}|[<>&\u2028\u2029]/g;
const FIXUP_MAP: Record<string, string> = {
  "<": "\\u003c",
  ">": "\\u003e",
  "&": "\\u0026",
  "\u2028": "\\u2028",
  "\u2029": "\\u2029",
};

function fixup(match: string): string {
  if (match === "\\\\") return match;
  return FIXUP_MAP[match] ?? "\\ufffd";
}

/** A JSON string literal exactly as Go's encoding/json (HTML escaping on) writes it. */
export function goJsonString(s: string): string {
  // Most log text needs no escaping at all; one regex scan is several times cheaper than
  // JSON.stringify's per-call cost, and this is the relay's hottest line.
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  // JSON.stringify already matches Go for quotes, backslashes and control characters
  // (\b \f \n \r \t short forms, others as lowercase \u00XX, DEL left raw), and is native-fast.
  const json = JSON.stringify(s);
  return NEEDS_FIXUP.test(s) ? json.replace(FIXUP, fixup) : json;
}

/**
 * One LogLine as Go encodes it, without the trailing newline. `plainContent` promises that the
 * content needs no escaping (see byteLinesArePlain); a wrong promise yields invalid JSON.
 */
export function encodeLogLine(line: LogLine, plainContent = false): string {
  // The common case, a data line as the relay makes it, in one template (this is hot).
  const partial = line.partial === true ? `,"partial":true` : "";
  if (line.kind === "data" && !line.step_status && !line.step_kind && !line.step_command) {
    const stream = line.stream === "stdout" || line.stream === "stderr" ? `,"stream":"${line.stream}"` : "";
    if (stream || !line.stream) {
      const content = plainContent ? `"${line.content}"` : goJsonString(line.content);
      return `{"kind":"data","content":${content},"time":${timeJson(line.time)},"step_id":${intText(line.step_id)}${stream}${partial}}`;
    }
  }
  let out = `{"kind":${goJsonString(line.kind)},"content":${goJsonString(line.content)},"time":${timeJson(line.time)},"step_id":${intText(line.step_id)}`;
  if (line.stream) out += `,"stream":${goJsonString(line.stream)}`;
  if (line.step_status) out += `,"step_status":${goJsonString(line.step_status)}`;
  if (line.step_kind) out += `,"step_kind":${intText(line.step_kind)}`;
  if (line.step_command) out += `,"step_command":${goJsonString(line.step_command)}`;
  return `${out}${partial}}`;
}

/**
 * One log file line (an encoded LogLine, without its newline) back to a LogLine; undefined for a
 * torn line (a reader that caught a write half-way), a blank one or anything that is not a
 * LogLine. The one decoder of the format: every reader of log files goes through it. Fields Loom
 * does not know are dropped; a known field of the wrong type makes the line foreign.
 */
export function decodeLogLine(text: string): LogLine | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (o.kind !== "data" && o.kind !== "control") return undefined;
  if (typeof o.content !== "string" || typeof o.time !== "string") return undefined;
  if (typeof o.step_id !== "number" || !Number.isSafeInteger(o.step_id)) return undefined;
  const line: LogLine = { kind: o.kind, content: o.content, time: o.time, step_id: o.step_id };
  if (o.stream !== undefined) {
    if (o.stream !== "stdout" && o.stream !== "stderr") return undefined;
    line.stream = o.stream;
  }
  if (o.step_status !== undefined) {
    if (o.step_status !== "start" && o.step_status !== "end") return undefined;
    line.step_status = o.step_status;
  }
  if (o.step_kind !== undefined) {
    if (typeof o.step_kind !== "number" || !Number.isSafeInteger(o.step_kind)) return undefined;
    line.step_kind = o.step_kind;
  }
  if (o.step_command !== undefined) {
    if (typeof o.step_command !== "string") return undefined;
    line.step_command = o.step_command;
  }
  if (o.partial !== undefined) {
    if (typeof o.partial !== "boolean") return undefined;
    if (o.partial) line.partial = true;
  }
  return line;
}

/**
 * Data lines for each line of `bytes` (byte text, see byte-text.ts; split on "\n", one more line
 * than it has newlines), each followed by "\n": exactly the UTF-8 bytes of what encodeLogLine
 * writes for `{kind: "data", content, time, step_id, stream}` one line at a time, built for a
 * whole output chunk at once and returned as byte text.
 *
 * Without a backslash or carriage return in the text, JSON.stringify of byte text differs from
 * Go only by the fix-ups below (bytes ≥ 0x80 stay as they are, as Go leaves valid UTF-8), and
 * each `\n` in it is a line break. Returns undefined (the caller then goes line by line) for
 * text with a backslash or a carriage return (trailing ones are trimmed per line).
 */
export function encodeByteTextLines(
  bytes: string,
  time: string,
  step: number,
  stream: LogStream,
  /** False when the caller knows there is no control character but "\n", "\t" and ESC. */
  mayHaveControls = true,
): string | undefined {
  // indexOf is a vectorised scan, far cheaper than a regex over the text.
  if (bytes.indexOf("\\") >= 0 || bytes.indexOf("\r") >= 0) return undefined;
  // The time is ASCII (see normalizeTime), so these are bytes too.
  const end = `,"time":${timeJson(time)},"step_id":${intText(step)},"stream":"${stream}"}\n`;
  const between = `"${end}{"kind":"data","content":"`;
  // A `$` would be a substitution pattern in replaceAll's replacement (a time never has one).
  const breakLines = (text: string, nl: string) =>
    between.includes("$") ? text.split(nl).join(between) : text.replaceAll(nl, between);
  // Long text (a line of hundreds of KiB): JSON.stringify's one native pass beats the
  // replacements below once quotes are frequent (JSON dumps), and costs little more otherwise.
  if (bytes.length > LONG_TEXT || (mayHaveControls && RARE_CONTROLS.test(bytes))) {
    // Quotes and control characters come out of JSON.stringify as Go writes them.
    const json = goFixups(JSON.stringify(bytes), bytes).replace(LONE_ESCAPE, "\\ufffd");
    return `{"kind":"data","content":${breakLines(json, "\\n")}${end}`;
  }
  // Only quotes, tabs and ESC (colours) to escape, by hand: JSON.stringify of a text with any
  // escape in it costs several times more than these replacements.
  let text = bytes;
  if (text.indexOf('"') >= 0) text = text.replaceAll('"', '\\"');
  if (text.indexOf("\t") >= 0) text = text.replaceAll("\t", "\\t");
  if (text.indexOf("\x1b") >= 0) text = text.replaceAll("\x1b", "\\u001b");
  return `{"kind":"data","content":"${breakLines(goFixups(text, bytes), "\n")}"${end}`;
}

/** Text longer than this is escaped by JSON.stringify (see encodeByteTextLines). */
const LONG_TEXT = 64 << 10;
/** Control characters other than \n, \t and ESC, and lone surrogates: JSON.stringify's work. */
const RARE_CONTROLS = /[\x00-\x08\x0b-\x1a\x1c-\x1f\u0100-\uffff]/;
/** JSON.stringify's escape of a lone surrogate (with no backslash in the text, every `\u` is one). */
const LONE_ESCAPE = /\\ud[89a-f][0-9a-f]{2}/g;

/** What Go's HTML-safe encoder escapes beyond JSON.stringify: `<>&` and U+2028/2029 (as bytes). */
function goFixups(json: string, bytes: string): string {
  if (bytes.indexOf("<") >= 0) json = json.replaceAll("<", "\\u003c");
  if (bytes.indexOf(">") >= 0) json = json.replaceAll(">", "\\u003e");
  if (bytes.indexOf("&") >= 0) json = json.replaceAll("&", "\\u0026");
  if (bytes.indexOf("\xe2\x80\xa8") >= 0) json = json.replaceAll("\xe2\x80\xa8", "\\u2028");
  if (bytes.indexOf("\xe2\x80\xa9") >= 0) json = json.replaceAll("\xe2\x80\xa9", "\\u2029");
  return json;
}

// What JSON needs escaped, but the newline, as byte text: conservative on 0xe2 (the lead byte of
// U+2028/2029) and on lone surrogates (the only characters above 0xff byte text holds).
const BYTES_NEED_ESCAPE_BUT_NL = /["\\\x00-\x09\x0b-\x1f<>&\xe2\u0100-\uffff]/;

/**
 * True when no line of `bytes` (byte text, split on "\n"), decoded, needs JSON escaping. The relay
 * checks each output chunk once and passes the answer to encodeLogLine, instead of a regex scan
 * per line.
 */
export function byteLinesArePlain(bytes: string): boolean {
  return !BYTES_NEED_ESCAPE_BUT_NL.test(bytes);
}

// Consecutive lines mostly share a time (all lines of one output event do): encode it once.
let lastTime = "";
let lastTimeJson = '""';
function timeJson(time: string): string {
  if (time !== lastTime) {
    lastTimeJson = goJsonString(time);
    lastTime = time;
  }
  return lastTimeJson;
}

function intText(n: number): string {
  // Go ints are integers; never let a stray float or NaN produce invalid or foreign JSON.
  return Number.isSafeInteger(n) ? String(n) : "0";
}

const pad = (n: number, width: number): string => String(n).padStart(width, "0");

/**
 * Go's RFC3339Nano for an instant in UTC: fractional seconds with trailing zeros trimmed (no dot
 * at all when they are zero) and `Z`. `nanos` (0..999999) adds precision below the millisecond
 * a Date carries.
 */
export function formatTime(date: Date, nanos = 0): string {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) return ZERO_TIME;
  const d = new Date(ms);
  const base = `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}T${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}`;
  const frac = (d.getUTCMilliseconds() * 1_000_000 + Math.trunc(nanos)).toString().padStart(9, "0");
  const trimmed = frac.replace(/0+$/, "");
  return trimmed ? `${base}.${trimmed}Z` : `${base}Z`;
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Re-expresses an RFC 3339 time (the runner's clock, any zone, up to nanoseconds) in Go's
 * RFC3339Nano UTC form. Returns undefined when the text is not a valid RFC 3339 time.
 */
export function normalizeTime(text: string): string | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac = "", , sign, oh, om] = m;
  const offsetMin = sign ? (sign === "-" ? -1 : 1) * (Number(oh) * 60 + Number(om)) : 0;
  // setUTCFullYear, not Date.UTC: the latter maps years 0..99 to 1900..1999.
  const date = new Date(0);
  date.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
  date.setUTCHours(Number(h), Number(mi), Number(s), 0);
  // Out-of-range fields (month 13, second 61) roll over silently; refuse them instead.
  if (
    date.getUTCFullYear() !== Number(y) ||
    date.getUTCMonth() !== Number(mo) - 1 ||
    date.getUTCDate() !== Number(d) ||
    date.getUTCHours() !== Number(h) ||
    date.getUTCMinutes() !== Number(mi) ||
    date.getUTCSeconds() !== Number(s)
  ) {
    return undefined;
  }
  date.setTime(date.getTime() - offsetMin * 60_000);
  const nanos = Number(frac.padEnd(9, "0"));
  date.setUTCMilliseconds(Math.trunc(nanos / 1_000_000));
  return formatTime(date, nanos % 1_000_000);
}

/**
 * The two lines the Go spindle sends for a workflow that failed with an error and has no log
 * file (§4.3): a control line with empty content and no step status, then a data line carrying
 * the error; both step 0, zero time. Only the control line is marked as a user step.
 */
export function failedWithoutLogLines(error: string): LogLine[] {
  return [
    { kind: "control", content: "", time: ZERO_TIME, step_id: 0, step_kind: 1 },
    { kind: "data", content: error, time: ZERO_TIME, step_id: 0 },
  ];
}
