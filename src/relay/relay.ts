/**
 * The relay: runner events (JSON lines on the runner's stdout) → Tangled LogLines (spec §4.3).
 *
 * - Control lines: one `start` and one `end` per step, content = step name, step_command = the
 *   command on both, step_kind 1 for user steps. Steps still open when the runner's output ends
 *   get their `end` line, so a dead runner never leaves a step looking like it runs forever.
 * - Data lines: the runner already masks, but the relay masks again (§5.3) with its own copy of
 *   the secret values, so a runner bug or an old runner image cannot leak them. Output is split
 *   into one LogLine per line, trailing `\r` trimmed; partial lines wait for the rest (per step
 *   and stream) and are flushed at step end.
 * - Long lines: a line of up to `maxLineBytes` (MAX_LINE_BYTES, 1 MiB of UTF-8) is one LogLine.
 *   A longer one goes out in pieces as it grows, cut where line-cut.ts says (points that depend
 *   only on the masked line, never on how its bytes arrived), every piece but the last marked
 *   `partial` (logline.ts): no newline is invented between them.
 * - Step output travels as byte text (byte-text.ts): event lines are parsed from their bytes
 *   held one per character, masked and encoded as bytes, and only lines that need escaping are
 *   decoded to text. Lines that are not valid UTF-8, or with `\u` escapes of non-ASCII
 *   characters, are decoded first and their output converted: same result, slower.
 * - Memory is bounded whatever the step prints: runner event lines longer than `maxEventBytes`
 *   are dropped (with an error), partial lines are capped, the maskers hold back at most one
 *   secret's length.
 * - Bad runner output never throws: malformed or unknown events become RelayErrors; a hello with
 *   an unknown protocol version (or no hello first) is fatal: the relay stops relaying and
 *   reports it through `onFatal` so the engine can stop the runner.
 */
import { isAscii, isUtf8 } from "node:buffer";
import { Masker, type StreamMasker } from "../mask/masker.ts";
import {
  byteLinesArePlain,
  encodeByteTextLines,
  formatTime,
  type LogLine,
  type LogStream,
  MAX_LINE_BYTES,
  normalizeTime,
} from "../protocol/logline.ts";
import { RUNNER_PROTOCOL_VERSION, type RunnerEvent, type RunStatus } from "../runner/protocol.ts";
import { fromByteText, toByteText } from "./byte-text.ts";
import { checkRunnerEvent } from "./events.ts";
import { cutPoint, hasLineLongerThan } from "./line-cut.ts";
import { EventLineSplitter } from "./line-splitter.ts";
import { type LogSink, SINK_HIGH_WATER, waitForSink } from "./sink.ts";

export type RelayErrorCode =
  | "malformed_event"
  | "invalid_event"
  | "event_too_long"
  | "unsupported_version"
  | "no_hello";

export class RelayError extends Error {
  override readonly name = "RelayError";
  readonly code: RelayErrorCode;
  readonly fatal: boolean;
  constructor(code: RelayErrorCode, message: string, fatal = false) {
    super(message.length > 300 ? `${message.slice(0, 300)}…` : message);
    this.code = code;
    this.fatal = fatal;
  }
}

/** What the runner reported in its `result` event. */
export interface RunnerResult {
  status: RunStatus;
  /** Exit code of the failing step; 0 on success. */
  exitCode: number;
  failedStep: number | null;
  error?: string;
  /** Secret occurrences the runner masked. */
  masked?: number;
}

export interface RelayOptions {
  sink: LogSink;
  /** Secret values for the second masking pass. */
  secrets: Iterable<string>;
  /** Called once when the relay gives up on the runner (see RelayError.fatal). */
  onFatal?: (err: RelayError) => void;
  /** Fallback time for events whose own time is unusable. Injected for tests. */
  now?: () => Date;
  /** Longest runner event line accepted, in bytes (default 4 MiB). */
  maxEventBytes?: number;
  /** Longest data line before it is cut into pieces, in bytes of UTF-8 (default MAX_LINE_BYTES). */
  maxLineBytes?: number;
}

interface StepInfo {
  name: string;
  command: string;
  user: boolean;
  open: boolean;
}

interface StreamState {
  /** Masks byte text. */
  masker: StreamMasker;
  /** The unfinished last line, byte text. */
  partial: string;
  /** Whether every piece of `partial` passed byteLinesArePlain. */
  partialPlain: boolean;
  /** A high surrogate that ended the last output: its pair may start the next one. */
  high: string;
  /** Whether `partial` may hold control characters other than tab and ESC (see #output). */
  controls: boolean;
}

const KEEP_ERRORS = 20;
const MAX_STREAMS = 8;

export class Relay {
  readonly #sink: LogSink;
  readonly #masker: Masker;
  readonly #onFatal: ((err: RelayError) => void) | undefined;
  readonly #now: () => Date;
  readonly #maxEventBytes: number;
  readonly #maxLineBytes: number;

  readonly #steps = new Map<number, StepInfo>();
  /** Keyed by `step * 2 + (stderr ? 1 : 0)`. */
  readonly #streams = new Map<number, StreamState>();
  readonly #splitter: EventLineSplitter;
  #hello = false;
  #fatal: RelayError | undefined;
  #result: RunnerResult | undefined;
  #maskedReported = false;
  #lastTime = "";
  /** The runner's text of #lastTime, when it was a valid time. */
  #lastRawTime = "";
  #errorCount = 0;
  #lastInput = performance.now();
  #waitingOnSink = false;
  readonly #errors: RelayError[] = [];

  constructor(opts: RelayOptions) {
    this.#sink = opts.sink;
    this.#masker = new Masker(opts.secrets, { encode: toByteText });
    this.#onFatal = opts.onFatal;
    this.#now = opts.now ?? (() => new Date());
    this.#maxEventBytes = opts.maxEventBytes ?? 4 << 20;
    this.#splitter = new EventLineSplitter(this.#maxEventBytes, {
      onLine: (line) => this.#handleLineBytes(line),
      onTooLong: () =>
        this.#error(
          new RelayError("event_too_long", `runner event longer than ${this.#maxEventBytes} bytes dropped`),
        ),
    });
    this.#maxLineBytes = opts.maxLineBytes ?? MAX_LINE_BYTES;
  }

  /** The runner's result event, once seen. */
  get result(): RunnerResult | undefined {
    return this.#result;
  }
  /** The fatal error, if the relay gave up on the runner. */
  get fatal(): RelayError | undefined {
    return this.#fatal;
  }
  /** The first few errors (all counted in errorCount). */
  get errors(): readonly RelayError[] {
    return this.#errors;
  }
  get errorCount(): number {
    return this.#errorCount;
  }
  /**
   * Milliseconds since the runner last wrote anything, for a watchdog (the runner heartbeats).
   * 0 while the relay itself is not reading because it waits for a slow sink.
   */
  idleMs(now = performance.now()): number {
    return this.#waitingOnSink ? 0 : Math.max(0, now - this.#lastInput);
  }

  /** Relays a whole readable (the runner's stdout), waiting on the sink when it falls behind. */
  async pump(source: AsyncIterable<Buffer | string> | Iterable<Buffer | string>): Promise<void> {
    for await (const chunk of source) {
      this.feed(chunk);
      if (this.#sink.backlog > SINK_HIGH_WATER) {
        this.#waitingOnSink = true;
        try {
          await waitForSink(this.#sink);
        } finally {
          this.#waitingOnSink = false;
          this.#lastInput = performance.now();
        }
      }
    }
    this.end();
    await this.#sink.flush();
  }

  /** Feeds raw runner stdout (split into event lines by line-splitter.ts). */
  feed(chunk: Buffer | string): void {
    this.#lastInput = performance.now();
    this.#splitter.feed(chunk);
  }

  /**
   * One event line as bytes. Valid UTF-8 whose `\u` escapes (if any) name ASCII characters parses
   * from its bytes held one per character, which leaves every string in it as byte text: output
   * data stays so; the rare non-ASCII line of another event is parsed again as text.
   */
  #handleLineBytes(line: Buffer): void {
    if (this.#fatal) return;
    const ascii = isAscii(line);
    const escapes = ascii || isUtf8(line) ? escapesIn(line) : "non-ascii";
    if (escapes === "non-ascii") {
      this.handleLine(line.toString("utf8"));
      return;
    }
    const ev = this.#parse(line.toString("latin1"));
    if (ev === undefined) return;
    if (ev.type === "output") this.#event(ev, true, escapes === "controls");
    else if (ascii) this.#event(ev, false);
    else this.handleLine(line.toString("utf8"));
  }

  /** Handles one line of runner output (without its newline). Never throws. */
  handleLine(text: string): void {
    if (this.#fatal) return;
    const ev = this.#parse(text);
    if (ev !== undefined) this.#event(ev, false);
  }

  #parse(text: string): RunnerEvent | undefined {
    if (text.trim() === "") return undefined;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      // The line itself is not quoted: it did not go through masking and may hold a secret.
      this.#error(
        new RelayError("malformed_event", `runner wrote a line that is not JSON (${text.length} chars)`),
      );
      return undefined;
    }
    const ev = checkRunnerEvent(value);
    if (typeof ev === "string") {
      this.#error(new RelayError("invalid_event", `invalid runner event: ${ev}`));
      return undefined;
    }
    return ev;
  }

  /**
   * `bytes`: an output event's data is byte text (else text); `controls`: it may hold control
   * characters other than "\n", "\t" and ESC (known from the line's escapes; text: unknown).
   */
  #event(ev: RunnerEvent, bytes: boolean, controls = true): void {
    if (this.#fatal) return;
    const time = this.#time(ev.time);
    if (!this.#hello) {
      if (ev.type !== "hello") {
        this.#fail(new RelayError("no_hello", `runner sent ${ev.type} before hello`, true));
        return;
      }
      if (ev.version !== RUNNER_PROTOCOL_VERSION) {
        const msg = `runner speaks protocol version ${ev.version}; this relay knows version ${RUNNER_PROTOCOL_VERSION}`;
        this.#fail(new RelayError("unsupported_version", msg, true));
        return;
      }
      this.#hello = true;
      return;
    }
    switch (ev.type) {
      case "output":
        this.#output(ev.step, ev.stream, ev.data, bytes, controls, time);
        return;
      case "step_start":
        this.#stepStart(ev.step, ev.name, ev.command, ev.kind === "user", time);
        return;
      case "step_end":
        this.#stepEnd(ev.step, time);
        return;
      case "result":
        this.#result = {
          status: ev.status,
          exitCode: ev.exitCode,
          failedStep: ev.failedStep,
          ...(ev.error !== undefined ? { error: ev.error } : {}),
          ...(ev.masked !== undefined ? { masked: ev.masked } : {}),
        };
        return;
      default:
        // hello again, heartbeat: nothing to relay.
        return;
    }
  }

  /** The runner's output has ended: flushes partial lines and closes open steps. */
  end(): void {
    const time = this.#lastTime || formatTime(this.#now());
    for (const [id, step] of this.#steps) if (step.open) this.#stepEnd(id, time);
    for (const key of [...this.#streams.keys()]) this.#closeStream(key, time);
    if (!this.#maskedReported) {
      this.#maskedReported = true;
      const count = (this.#result?.masked ?? 0) + this.#masker.masked;
      if (count > 0) this.#sink.masked?.(count);
    }
  }

  #time(text: string): string {
    // The runner stamps events of a burst alike: normalise each distinct time once.
    if (text === this.#lastRawTime && this.#lastTime !== "") return this.#lastTime;
    const normal = normalizeTime(text);
    const t = normal ?? formatTime(this.#now());
    this.#lastRawTime = normal === undefined ? "" : text;
    this.#lastTime = t;
    return t;
  }

  #stepStart(id: number, name: string, command: string, user: boolean, time: string): void {
    // Steps run one at a time: an earlier step the runner never ended is over now.
    for (const [other, step] of this.#steps) if (step.open && other !== id) this.#stepEnd(other, time);
    for (const key of [...this.#streams.keys()]) this.#closeStream(key, time);
    this.#steps.set(id, { name, command, user, open: true });
    this.#control(id, "start", time);
  }

  #stepEnd(id: number, time: string): void {
    this.#closeStream(id * 2, time);
    this.#closeStream(id * 2 + 1, time);
    const step = this.#steps.get(id);
    if (step?.open === false) return;
    if (step) step.open = false;
    this.#control(id, "end", time);
  }

  #control(id: number, status: "start" | "end", time: string): void {
    const step = this.#steps.get(id);
    const line: LogLine = {
      kind: "control",
      content: step?.name ?? "",
      time,
      step_id: id,
      step_status: status,
    };
    if (step?.user) line.step_kind = 1;
    if (step?.command) line.step_command = step.command;
    this.#sink.write(line);
  }

  #output(
    step: number,
    stream: LogStream,
    data: string,
    bytes: boolean,
    controls: boolean,
    time: string,
  ): void {
    const key = step * 2 + (stream === "stderr" ? 1 : 0);
    let st = this.#streams.get(key);
    if (!st) {
      // Output for many steps at once is a runner bug; flushing keeps the maskers bounded.
      if (this.#streams.size >= MAX_STREAMS)
        for (const k of [...this.#streams.keys()]) this.#closeStream(k, time);
      st = { masker: this.#masker.stream(), partial: "", partialPlain: true, high: "", controls: false };
      this.#streams.set(key, st);
    }
    let text = st.high + data;
    st.high = "";
    if (!bytes) {
      // A surrogate pair the runner split across two events is joined again (as text would be).
      const last = text.charCodeAt(text.length - 1);
      if (last >= 0xd800 && last <= 0xdbff) {
        st.high = text.slice(-1);
        text = text.slice(0, -1);
      }
      text = toByteText(text);
    }
    // Text held back by the masker (a secret's possible start) or as the partial line came from
    // earlier output, which may have had control characters.
    const mayHaveControls = controls || st.controls || st.masker.pendingLength > 0;
    this.#lines(st, st.masker.write(text), step, stream, time, mayHaveControls);
    st.controls = st.partial !== "" && mayHaveControls;
  }

  #lines(
    st: StreamState,
    text: string,
    step: number,
    stream: LogStream,
    time: string,
    mayHaveControls = true,
  ): void {
    let from = 0;
    if (this.#sink.writeEncoded !== undefined)
      from = this.#encodedLines(st, text, step, stream, time, mayHaveControls);
    if (from === text.length) return;
    const plain = byteLinesArePlain(from === 0 ? text : text.slice(from));
    for (;;) {
      const nl = text.indexOf("\n", from);
      if (nl < 0) break;
      const piece = text.slice(from, nl);
      if (st.partial === "") {
        this.#data(piece, plain, step, stream, time);
      } else {
        this.#data(st.partial + piece, plain && st.partialPlain, step, stream, time);
        st.partial = "";
        st.partialPlain = true;
      }
      from = nl + 1;
    }
    if (from < text.length) {
      st.partial += from === 0 ? text : text.slice(from);
      st.partialPlain &&= plain;
    }
    // A line with no end in sight goes out in pieces as it grows, so one endless line cannot
    // fill memory; the cut points are those of the same line arriving whole (see #pieces).
    if (st.partial.length > this.#maxLineBytes)
      st.partial = this.#pieces(st.partial, st.partialPlain, step, stream, time);
  }

  /**
   * Writes the leading pieces of a line of byte text longer than maxLineBytes, marked `partial`,
   * and returns the rest (at most maxLineBytes), which the line's next bytes or its end continue.
   */
  #pieces(line: string, plain: boolean, step: number, stream: LogStream, time: string): string {
    let at = 0;
    while (line.length - at > this.#maxLineBytes) {
      const cut = cutPoint(line, at, this.#maxLineBytes);
      const content = fromByteText(line.slice(at, cut));
      this.#sink.write({ kind: "data", content, time, step_id: step, stream, partial: true }, plain);
      at = cut;
    }
    return line.slice(at);
  }

  /**
   * For sinks that take encoded lines: the whole lines of `text` (with the partial line before
   * them) in one piece when encodeByteTextLines can, returning where the rest of `text` starts (0
   * when it could not: the caller goes line by line).
   */
  #encodedLines(
    st: StreamState,
    text: string,
    step: number,
    stream: LogStream,
    time: string,
    mayHaveControls: boolean,
  ): number {
    const last = text.lastIndexOf("\n");
    if (last < 0) return 0;
    // The partial line held from earlier output is the start of the first line.
    const lines = st.partial + text.slice(0, last);
    // A line to cut into pieces goes the line-by-line way.
    if (hasLineLongerThan(lines, this.#maxLineBytes)) return 0;
    const encoded = encodeByteTextLines(lines, time, step, stream, mayHaveControls);
    if (encoded === undefined) return 0;
    this.#sink.writeEncoded?.(encoded);
    st.partial = "";
    st.partialPlain = true;
    return last + 1;
  }

  /** One whole line of byte text (the last piece of it, when it is longer than maxLineBytes). */
  #data(whole: string, plain: boolean, step: number, stream: LogStream, time: string): void {
    const line = whole.length > this.#maxLineBytes ? this.#pieces(whole, plain, step, stream, time) : whole;
    // A trailing \r makes a text not plain, so a plain line never needs trimming.
    const bytes = !plain && line.charCodeAt(line.length - 1) === 13 ? line.replace(/\r+$/, "") : line;
    this.#sink.write({ kind: "data", content: fromByteText(bytes), time, step_id: step, stream }, plain);
  }

  #closeStream(key: number, time: string): void {
    const st = this.#streams.get(key);
    if (!st) return;
    this.#streams.delete(key);
    // Written so the setup pseudo-step -1 (keys -2 and -1) decodes right too.
    const step = Math.floor(key / 2);
    const stream: LogStream = key - step * 2 === 1 ? "stderr" : "stdout";
    if (st.high !== "") this.#lines(st, st.masker.write(st.high), step, stream, time);
    this.#lines(st, st.masker.end(), step, stream, time);
    if (st.partial !== "") this.#data(st.partial, st.partialPlain, step, stream, time);
  }

  #error(err: RelayError): void {
    this.#errorCount++;
    if (this.#errors.length < KEEP_ERRORS) this.#errors.push(err);
  }

  #fail(err: RelayError): void {
    this.#error(err);
    this.#fatal = err;
    this.#onFatal?.(err);
  }
}

const BACKSLASH_U = Buffer.from("\\u");
const BACKSLASH_B = Buffer.from("\\b");
const BACKSLASH_F = Buffer.from("\\f");

/**
 * What the escapes of a JSON line say about its strings: "non-ascii" when a `\u` escape names a
 * character outside ASCII (parsing the line's bytes as latin1 would then not give byte text);
 * "controls" when one names a control character other than ESC, or there is a `\b` or `\f`;
 * else "plain" (only "\n", "\t", ESC, quotes and backslashes can be escaped). An escaped
 * backslash before a `u`, `b` or `f` looks like an escape here too: that only costs the slower
 * path.
 */
function escapesIn(line: Buffer): "non-ascii" | "controls" | "plain" {
  let controls = line.indexOf(BACKSLASH_B) >= 0 || line.indexOf(BACKSLASH_F) >= 0;
  for (let i = line.indexOf(BACKSLASH_U); i >= 0; i = line.indexOf(BACKSLASH_U, i + 2)) {
    const c = line[i + 4] ?? 0;
    if (line[i + 2] !== 0x30 || line[i + 3] !== 0x30 || c < 0x30 || c > 0x37) return "non-ascii";
    // \u001b (ESC, colours) is escaped by hand; any other is a job for JSON.stringify.
    if (!(c === 0x31 && line[i + 5] === 0x62)) controls = true;
  }
  return controls ? "controls" : "plain";
}
