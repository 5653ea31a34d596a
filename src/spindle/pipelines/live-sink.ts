/**
 * A log sink for live tailing: LogFile batches lines in memory until a batch is large or the
 * relay flushes, which is right for throughput but means a `/logs` client following a quiet
 * workflow would see nothing until it ends. This wrapper flushes at most `delayMs` after the
 * first unflushed line, so followers lag by about that much and busy logs still batch.
 */

import type { LogLine } from "../../protocol/logline.ts";
import type { LogFile } from "../../relay/logfile.ts";
import type { LogSink } from "../../relay/sink.ts";

export class LiveLogSink implements LogSink {
  readonly #file: LogFile;
  readonly #delayMs: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(file: LogFile, delayMs = 100) {
    this.#file = file;
    this.#delayMs = delayMs;
  }

  get backlog(): number {
    return this.#file.backlog;
  }

  write(line: LogLine, plainContent?: boolean): void {
    this.#file.write(line, plainContent);
    this.#schedule();
  }

  writeEncoded(utf8: string): void {
    this.#file.writeEncoded(utf8);
    this.#schedule();
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
