/**
 * A workflow's log file: `<logDir>/<wid>.log`, one encoded LogLine per line (spec §4.3), opened
 * for append so a relay that resumes after a restart continues the same file.
 *
 * Lines are buffered and written in batches by one chain of async writes, so order is kept and
 * the event loop is never blocked. fsync happens once, at close: tailers read through the page
 * cache and see lines as soon as they are written, a per-line fsync would cap throughput at the
 * disk's latency, and the close-time fsync makes a finished workflow's log durable before its
 * final status is recorded. A write error (disk full) is kept, later lines are dropped, and
 * close() rejects with it — a broken disk must not crash the run.
 */
import { type FileHandle, mkdir, open } from "node:fs/promises";
import { join } from "node:path";
import { encodeLogLine, type LogLine } from "./logline.ts";
import type { LogSink } from "./relay.ts";

/** The log file of a workflow. Refuses a wid that could escape logDir. */
export function logFilePath(logDir: string, wid: string): string {
  if (wid === "" || wid === "." || wid === ".." || /[/\\\0]/.test(wid)) {
    throw new Error(`not a usable workflow id for a file name: ${JSON.stringify(wid)}`);
  }
  return join(logDir, `${wid}.log`);
}

const BATCH_BYTES = 256 << 10;

export class LogFile implements LogSink {
  readonly path: string;
  readonly #fh: FileHandle;
  #batch: string[] = [];
  #batchBytes = 0;
  #inFlight = 0;
  #chain: Promise<void> = Promise.resolve();
  #error: Error | undefined;
  #closed: Promise<void> | undefined;

  private constructor(path: string, fh: FileHandle) {
    this.path = path;
    this.#fh = fh;
  }

  static async open(logDir: string, wid: string): Promise<LogFile> {
    const path = logFilePath(logDir, wid);
    await mkdir(logDir, { recursive: true });
    return new LogFile(path, await open(path, "a", 0o640));
  }

  get backlog(): number {
    return this.#batchBytes + this.#inFlight;
  }

  write(line: LogLine, plainContent = false): void {
    if (this.#error || this.#closed) return;
    const text = `${encodeLogLine(line, plainContent)}\n`;
    this.#batch.push(text);
    // UTF-16 length: a cheap stand-in for bytes, only used to size batches.
    this.#batchBytes += text.length;
    if (this.#batchBytes >= BATCH_BYTES) void this.#writeBatch();
  }

  /** Resolves when every line accepted so far is written (or writing has failed). */
  flush(): Promise<void> {
    return this.#writeBatch();
  }

  /** Flushes, fsyncs and closes. Idempotent; rejects with the first write error, if any. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.#writeBatch();
      try {
        if (!this.#error) await this.#fh.sync();
      } finally {
        await this.#fh.close();
      }
      if (this.#error) throw this.#error;
    })();
    return this.#closed;
  }

  #writeBatch(): Promise<void> {
    if (this.#batch.length > 0) {
      const data = this.#batch.join("");
      const size = this.#batchBytes;
      this.#batch = [];
      this.#batchBytes = 0;
      this.#inFlight += size;
      this.#chain = this.#chain.then(async () => {
        try {
          if (!this.#error) await this.#fh.appendFile(data, "utf8");
        } catch (err) {
          this.#error = err instanceof Error ? err : new Error(String(err));
        } finally {
          this.#inFlight -= size;
        }
      });
    }
    return this.#chain;
  }
}

/** An in-memory sink, for tests and for callers that want lines as objects. */
export class MemorySink implements LogSink {
  readonly lines: LogLine[] = [];
  readonly backlog = 0;
  write(line: LogLine): void {
    this.lines.push(line);
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
}
