/**
 * Splits the runner's stdout into event lines (one JSON event per line). Splitting on the
 * newline byte is safe in UTF-8. Memory stays bounded: a line longer than `maxBytes` is dropped
 * (`onTooLong`, once per line), including the rest of it that arrives later.
 */
export interface LineHandlers {
  /** One whole line, without its newline. The buffer may be reused after the call. */
  onLine(line: Buffer): void;
  onTooLong(): void;
}

export class EventLineSplitter {
  readonly #maxBytes: number;
  readonly #on: LineHandlers;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Dropping the rest of a line that was too long. */
  #skipping = false;

  constructor(maxBytes: number, on: LineHandlers) {
    this.#maxBytes = maxBytes;
    this.#on = on;
  }

  feed(chunk: Buffer | string): void {
    const buf = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    let from = 0;
    for (;;) {
      const nl = buf.indexOf(10, from);
      if (nl < 0) {
        this.#hold(buf.subarray(from));
        return;
      }
      const piece = buf.subarray(from, nl);
      from = nl + 1;
      if (this.#skipping) {
        this.#skipping = false;
        continue;
      }
      if (this.#pendingBytes + piece.length > this.#maxBytes) {
        this.#tooLong();
        continue;
      }
      let line: Buffer = piece;
      if (this.#pendingBytes > 0) {
        this.#pending.push(piece);
        line = Buffer.concat(this.#pending);
        this.#pending = [];
        this.#pendingBytes = 0;
      }
      this.#on.onLine(line);
    }
  }

  #hold(rest: Buffer): void {
    if (rest.length === 0 || this.#skipping) return;
    if (this.#pendingBytes + rest.length > this.#maxBytes) {
      this.#tooLong();
      this.#skipping = true;
      return;
    }
    // Copy: the caller may reuse its buffer.
    this.#pending.push(Buffer.from(rest));
    this.#pendingBytes += rest.length;
  }

  #tooLong(): void {
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#on.onTooLong();
  }
}
