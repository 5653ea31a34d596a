/**
 * Recovery's log bookkeeping: a recovered run re-reads its pod log from the start, and because
 * the relay turns the same runner output into the same lines, the lines its log file already
 * holds are dropped (SkipSink) instead of written twice.
 */
import { readFile, truncate } from "node:fs/promises";
import type { LogLine } from "../../protocol/logline.ts";
import type { LogSink } from "../../relay/sink.ts";

/** Drops the first `skip` lines: they are already in the log file of a recovered run. */
export class SkipSink implements LogSink {
  readonly #inner: LogSink;
  #skip: number;
  /** Offered only when the inner sink takes encoded lines (the relay asks by its presence). */
  readonly writeEncoded?: (utf8: string) => void;
  readonly waitBelow?: (bytes: number) => Promise<void>;
  readonly masked?: (count: number) => void;

  constructor(inner: LogSink, skip: number) {
    this.#inner = inner;
    this.#skip = skip;
    const encoded = inner.writeEncoded?.bind(inner);
    if (encoded !== undefined) {
      // Encoded lines each end in "\n": whole lines of the batch are skipped while any are due.
      this.writeEncoded = (utf8) => {
        let text = utf8;
        while (this.#skip > 0 && text !== "") {
          text = text.slice(text.indexOf("\n") + 1);
          this.#skip--;
        }
        if (text !== "") encoded(text);
      };
    }
    const waitBelow = inner.waitBelow?.bind(inner);
    if (waitBelow !== undefined) this.waitBelow = waitBelow;
    const masked = inner.masked?.bind(inner);
    if (masked !== undefined) this.masked = masked;
  }
  get backlog(): number {
    return this.#inner.backlog;
  }
  write(line: LogLine, plain?: boolean): void {
    if (this.#skip > 0) {
      this.#skip--;
      return;
    }
    this.#inner.write(line, plain);
  }
  flush(): Promise<void> {
    return this.#inner.flush();
  }
}

/**
 * Complete lines already in a recovered run's log file (a LogFile has a `path`), else 0. A
 * line the previous process left half-written (it died mid-write) is cut off: the replay writes
 * it again, whole.
 */
export async function existingLines(sink: LogSink): Promise<number> {
  const path = (sink as { path?: unknown }).path;
  if (typeof path !== "string") return 0;
  try {
    await sink.flush();
    const buf = await readFile(path);
    let n = 0;
    for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) n++;
    const end = buf.lastIndexOf(10) + 1;
    if (end < buf.length) await truncate(path, end);
    return n;
  } catch {
    return 0;
  }
}
