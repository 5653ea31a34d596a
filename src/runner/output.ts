import type { Readable } from "node:stream";
import type { Masker, StreamMasker } from "../mask/masker.ts";
import type { EventWriter } from "./events.ts";

/**
 * Relays one output stream of a step: bytes → streaming UTF-8 decode (invalid bytes become
 * U+FFFD, a character split across reads is kept whole) → secret masking → output events.
 * Memory stays bounded: each read is at most the pipe's chunk size, the masker holds back less
 * than one secret, and the pipe is paused while the event sink is full.
 */
export class OutputPump {
  readonly #stream: Readable;
  readonly #name: "stdout" | "stderr";
  readonly #step: number;
  readonly #writer: EventWriter;
  // ignoreBOM: keep a leading BOM as U+FEFF, relaying the output as written.
  readonly #decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
  readonly #masker: StreamMasker;
  #relaying = true;
  /** Resolves when the stream has ended (EOF, error or destroyed). */
  readonly done: Promise<void>;

  constructor(
    stream: Readable,
    name: "stdout" | "stderr",
    step: number,
    masker: Masker,
    writer: EventWriter,
  ) {
    this.#stream = stream;
    this.#name = name;
    this.#step = step;
    this.#writer = writer;
    this.#masker = masker.stream();
    this.done = new Promise((resolve) => {
      stream.once("close", resolve);
      stream.once("end", resolve);
      stream.once("error", () => resolve());
    });
    stream.on("data", (chunk: Buffer) => this.#onData(chunk));
  }

  #onData(chunk: Buffer): void {
    if (!this.#relaying) return;
    const text = this.#decoder.decode(chunk, { stream: true });
    const safe = this.#masker.write(text);
    if (safe !== "") this.#writer.output(this.#step, this.#name, safe);
    if (this.#writer.blocked) {
      this.#stream.pause();
      this.#writer.whenDrained(() => this.#stream.resume());
    }
  }

  /**
   * Stop relaying and emit what is still held (an incomplete character, a possible secret
   * prefix). Later data is read and dropped, so a background process still holding the pipe
   * neither blocks nor dies of SIGPIPE, and nothing is attributed to a step that has ended.
   */
  finish(): void {
    if (!this.#relaying) return;
    this.#relaying = false;
    const rest = this.#masker.write(this.#decoder.decode()) + this.#masker.end();
    if (rest !== "") this.#writer.output(this.#step, this.#name, rest);
    this.#stream.resume();
  }

  /** Close the pipe entirely (end of run). */
  destroy(): void {
    this.#stream.destroy();
  }
}
