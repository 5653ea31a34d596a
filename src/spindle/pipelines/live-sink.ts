/**
 * A log sink for live tailing: LogFile batches lines in memory until a batch is large or the
 * relay flushes, which is right for throughput but means a `/logs` client following a quiet
 * workflow would see nothing until it ends. This wrapper flushes at most `delayMs` after the
 * first unflushed line, so followers lag by about that much and busy logs still batch.
 *
 * It also knows the workflow's current step as the control lines go by (`step`), so the status
 * page reads it from memory instead of from the file; a sink opened on a recovered run's file
 * starts from the last control line already in it (the engine does not write those again).
 */

import { open } from "node:fs/promises";
import { decodeLogLine, type LogLine } from "../../protocol/logline.ts";
import { LogFile } from "../../relay/logfile.ts";
import type { LogSink } from "../../relay/sink.ts";

/** Counters a sink adds to: bytes written (loom_log_bytes_total), secrets masked (loom_secrets_masked_total). */
export interface LogCounters {
  bytes?: { inc(n: number): void };
  masked?: { inc(n: number): void };
}

export interface LiveLogOptions {
  /** Longest wait before written lines reach the file (default 100 ms). */
  delayMs?: number;
  counters?: LogCounters;
  /** Called after the current step changed (never throws into the run's log). */
  onStep?: () => void;
}

/**
 * The step a control line leaves a workflow in: a `start` names the step running now; an `end`
 * (or a control line without a status) means between steps.
 */
export function stepAfter(line: LogLine): string | null {
  return line.step_status === "start" ? line.content : null;
}

export class LiveLogSink implements LogSink {
  readonly #file: LogFile;
  readonly #delayMs: number;
  readonly #counters: LogCounters;
  readonly #onStep: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #step: string | null;

  constructor(file: LogFile, opts: LiveLogOptions = {}, step: string | null = null) {
    this.#file = file;
    this.#delayMs = opts.delayMs ?? 100;
    this.#counters = opts.counters ?? {};
    this.#onStep = opts.onStep;
    this.#step = step;
  }

  /** Opens `<logDir>/<wid>.log` for append, starting from the step its existing lines end in. */
  static async open(logDir: string, wid: string, opts: LiveLogOptions = {}): Promise<LiveLogSink> {
    const file = await LogFile.open(logDir, wid);
    return new LiveLogSink(file, opts, await lastStep(file.path).catch(() => null));
  }

  /** The log file's path (recovery counts the lines already in it: see the engines' recover). */
  get path(): string {
    return this.#file.path;
  }

  /** The step running now (its name), or null between steps and before the first. */
  get step(): string | null {
    return this.#step;
  }

  get backlog(): number {
    return this.#file.backlog;
  }

  write(line: LogLine, plainContent?: boolean): void {
    // Control lines come only through `write` (writeEncoded carries data lines).
    if (line.kind === "control") {
      const step = stepAfter(line);
      if (step !== this.#step) {
        this.#step = step;
        try {
          this.#onStep?.();
        } catch {
          // A listener never breaks a run's log.
        }
      }
    }
    // The backlog grows by exactly the encoded line: batches in flight shrink it only later.
    const before = this.#file.backlog;
    this.#file.write(line, plainContent);
    this.#count(this.#file.backlog - before);
    this.#schedule();
  }

  writeEncoded(utf8: string): void {
    const before = this.#file.backlog;
    this.#file.writeEncoded(utf8);
    this.#count(this.#file.backlog - before);
    this.#schedule();
  }

  #count(bytes: number): void {
    if (bytes > 0) this.#counters.bytes?.inc(bytes);
  }

  masked(count: number): void {
    this.#counters.masked?.inc(count);
  }

  waitBelow(bytes: number): Promise<void> {
    return this.#file.waitBelow(bytes);
  }

  #schedule(): void {
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        void this.#file.flush().catch(() => {});
      }, this.#delayMs);
      this.#timer.unref();
    }
  }

  flush(): Promise<void> {
    return this.#file.flush();
  }

  /** Flushes, fsyncs and closes the file (see LogFile.close). */
  close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    return this.#file.close();
  }
}

/** Read from a file's end, a chunk at a time, until a control line turns up. */
const CHUNK = 64 << 10;

/**
 * The step the lines of a log file leave its workflow in (stepAfter of the last control line),
 * read backwards from the end; null for a file with no control line (or none at all). Read once,
 * when a recovered run's file is opened again.
 */
export async function lastStep(path: string): Promise<string | null> {
  const fh = await open(path, "r").catch(() => undefined);
  if (!fh) return null;
  try {
    let end = (await fh.stat()).size;
    /** The start of the line cut by the last chunk read (its first bytes are in earlier chunks). */
    let carry = Buffer.alloc(0);
    while (end > 0) {
      // Chunks grow with the cut line, so a long line is copied a bounded number of times.
      const start = Math.max(0, end - Math.max(CHUNK, carry.length));
      const chunk = Buffer.alloc(end - start);
      await fh.read(chunk, 0, chunk.length, start);
      const buf = carry.length > 0 ? Buffer.concat([chunk, carry]) : chunk;
      // Whole lines only, last first: the text before the chunk's first newline goes on in the
      // chunk before it.
      for (let lineEnd = buf.length; ; ) {
        const nl = lineEnd > 0 ? buf.lastIndexOf(10, lineEnd - 1) : -1;
        if (nl < 0 && start > 0) {
          carry = buf.subarray(0, lineEnd);
          break;
        }
        const from = nl + 1;
        if (buf.subarray(from, from + CONTROL.length).equals(CONTROL)) {
          const line = decodeLogLine(buf.toString("utf8", from, lineEnd));
          if (line?.kind === "control") return stepAfter(line);
        }
        if (nl < 0) return null;
        lineEnd = nl;
      }
      end = start;
    }
    return null;
  } finally {
    await fh.close();
  }
}

/** How every encoded control line starts (kind is the first field: see encodeLogLine). */
const CONTROL = Buffer.from('{"kind":"control"');
