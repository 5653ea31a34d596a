/**
 * A log sink for live tailing: LogFile batches lines in memory until a batch is large or the
 * relay flushes, which is right for throughput but means a `/logs` client following a quiet
 * workflow would see nothing until it ends. This wrapper flushes at most `delayMs` after the
 * first unflushed line, so followers lag by about that much and busy logs still batch.
 */
import type { LogFile } from "../../relay/logfile.ts";
import type { LogLine } from "../../relay/logline.ts";
import type { LogSink } from "../../relay/relay.ts";

export class LiveLogSink implements LogSink {
  readonly #file: LogFile;
  readonly #delayMs: number;
  readonly #bytes: { inc(n: number): void } | undefined;
  #timer: NodeJS.Timeout | undefined;

  /** `bytes` counts what is written (loom_log_bytes_total). */
  constructor(file: LogFile, delayMs = 100, bytes?: { inc(n: number): void }) {
    this.#file = file;
    this.#delayMs = delayMs;
    this.#bytes = bytes;
  }

  get backlog(): number {
    return this.#file.backlog;
  }

  write(line: LogLine, plainContent?: boolean): void {
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
    if (bytes > 0) this.#bytes?.inc(bytes);
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
