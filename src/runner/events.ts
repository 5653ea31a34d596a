import type { Writable } from "node:stream";
import type { Clock } from "./clock.ts";
import type { RunnerEvent } from "./protocol.ts";

/** Largest `data` of one output event, in UTF-16 units, so a 1 MB line streams in pieces. */
export const MAX_OUTPUT_UNITS = 16 * 1024;

type Payload<T extends RunnerEvent["type"]> = Omit<Extract<RunnerEvent, { type: T }>, "time" | "type">;

/**
 * Writes RunnerEvents as JSON lines. Tracks the sink's backpressure so output pumps can pause
 * the step's pipes instead of buffering without bound.
 */
export class EventWriter {
  readonly #sink: Writable;
  readonly #clock: Clock;
  #seq = 0;
  #blocked = false;
  #broken = false;
  #waiters: (() => void)[] = [];

  /**
   * `onBroken` is called once if the sink fails (EPIPE: the reader is gone). Nobody can see
   * the run any more, so the runner cancels it; later events are dropped.
   */
  constructor(sink: Writable, clock: Clock, onBroken: (err: Error) => void = () => {}) {
    this.#sink = sink;
    this.#clock = clock;
    sink.on("drain", () => this.#release());
    sink.on("error", (err) => {
      if (this.#broken) return;
      this.#broken = true;
      this.#release();
      onBroken(err);
    });
  }

  #release(): void {
    this.#blocked = false;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  emit<T extends RunnerEvent["type"]>(type: T, payload: Payload<T>): void {
    if (this.#broken) return;
    const line = `${JSON.stringify({ type, time: this.#clock(), ...payload })}\n`;
    if (!this.#sink.write(line)) this.#blocked = true;
  }

  /** The sink failed; events are being dropped. */
  get broken(): boolean {
    return this.#broken;
  }

  /** Emit `data` as output events of at most MAX_OUTPUT_UNITS each; seq runs across streams. */
  output(step: number, stream: "stdout" | "stderr", data: string): void {
    for (let at = 0; at < data.length; ) {
      let end = Math.min(at + MAX_OUTPUT_UNITS, data.length);
      // Never split a surrogate pair: each event's data must be well-formed text on its own.
      const last = data.charCodeAt(end - 1);
      if (end < data.length && last >= 0xd800 && last <= 0xdbff) end--;
      this.#seq++;
      this.emit("output", { step, stream, seq: this.#seq, data: data.slice(at, end) });
      at = end;
    }
  }

  get blocked(): boolean {
    return this.#blocked && !this.#broken;
  }

  /** Call `fn` once the sink has drained (now, if it is not blocked). */
  whenDrained(fn: () => void): void {
    if (this.blocked) this.#waiters.push(fn);
    else fn();
  }
}
