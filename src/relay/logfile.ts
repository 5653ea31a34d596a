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
import { encodeLogLine, type LogLine } from "../protocol/logline.ts";
import type { LogSink } from "./sink.ts";

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
  /**
   * Lines are UTF-8-encoded straight into this buffer: one encoder call per line is several
   * times cheaper than joining strings and encoding the batch (which flattens every line twice).
   */
  #buf = Buffer.allocUnsafe(BATCH_BYTES);
  #used = 0;
  #inFlight = 0;
  #chain: Promise<void> = Promise.resolve();
  /** Pending batch writes, oldest first, with their sizes (see waitBelow). */
  #pending: { size: number; done: Promise<void> }[] = [];
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
    return this.#used + this.#inFlight;
  }

  write(line: LogLine, plainContent = false): void {
    if (this.#error || this.#closed) return;
    const text = encodeLogLine(line, plainContent);
    // A UTF-16 unit takes at most 3 UTF-8 bytes; plus the newline.
    this.#reserve(text.length * 3 + 1);
    this.#used += this.#buf.write(text, this.#used, "utf8");
    this.#buf[this.#used++] = 10;
    if (this.#used >= BATCH_BYTES) void this.#writeBatch();
  }

  /** Whole encoded lines, each ending in "\n", as UTF-8 bytes (see LogSink.writeEncoded). */
  writeEncoded(utf8: string): void {
    if (this.#error || this.#closed) return;
    this.#reserve(utf8.length);
    // One character per byte: a copy, where UTF-8-encoding text costs several times more.
    this.#used += this.#buf.write(utf8, this.#used, "latin1");
    if (this.#used >= BATCH_BYTES) void this.#writeBatch();
  }

  /** Makes room for `bytes` more bytes. */
  #reserve(bytes: number): void {
    if (this.#used + bytes > this.#buf.length) {
      void this.#writeBatch();
      if (bytes > this.#buf.length) this.#buf = Buffer.allocUnsafe(bytes);
    }
  }

  /** Resolves when every line accepted so far is written (or writing has failed). */
  flush(): Promise<void> {
    return this.#writeBatch();
  }

  /**
   * Resolves once the backlog is below `bytes`: a producer that waits for this instead of
   * `flush` keeps the disk busy while it makes the next lines (writes run on libuv's threads).
   */
  async waitBelow(bytes: number): Promise<void> {
    if (this.backlog >= bytes && this.#used > 0) void this.#writeBatch();
    while (this.backlog >= bytes && this.#pending.length > 0) await this.#pending[0]?.done;
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
    if (this.#used > 0) {
      const data = this.#buf.subarray(0, this.#used);
      const size = this.#used;
      // The buffer now belongs to the pending write; later lines go to a fresh one.
      this.#buf = Buffer.allocUnsafe(BATCH_BYTES);
      this.#used = 0;
      this.#inFlight += size;
      const entry = { size, done: Promise.resolve() };
      this.#chain = this.#chain.then(async () => {
        try {
          if (!this.#error) await this.#fh.appendFile(data);
        } catch (err) {
          this.#error = err instanceof Error ? err : new Error(String(err));
        } finally {
          this.#inFlight -= size;
          this.#pending.shift();
        }
      });
      entry.done = this.#chain;
      this.#pending.push(entry);
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
