/**
 * The sink contract: where the relay's LogLines go (a LogFile, a live broadcast, a test's array),
 * and how a producer waits for a sink that falls behind.
 */
import type { LogLine } from "../protocol/logline.ts";

/** Where relayed lines go (a LogFile, or a test's array). `write` must not throw. */
export interface LogSink {
  /** `plainContent`: the relay checked that the content needs no JSON escaping (a speed hint). */
  write(line: LogLine, plainContent?: boolean): void;
  /**
   * Optional, for sinks that store encoded lines: `utf8` holds the UTF-8 bytes of one or more
   * whole LogLines as encodeLogLine writes them, each followed by "\n", as a latin1 ("binary")
   * string: one character per byte (write it with the "latin1" encoding). The relay then hands
   * over most data lines a chunk of output at a time this way and the rest through `write`, in
   * order; a sink that has both must keep the order of the two. Must not throw.
   */
  writeEncoded?(utf8: string): void;
  /** Bytes accepted but not yet written; the relay waits when it grows large. */
  readonly backlog: number;
  flush(): Promise<void>;
  /** Optional: resolves once the backlog is below `bytes` (else the relay waits on `flush`). */
  waitBelow?(bytes: number): Promise<void>;
  /**
   * Optional: told once, when the runner's output ends, how many secret occurrences were masked
   * (by the runner, as its `result` event says, plus the relay's own second pass). Must not throw.
   */
  masked?(count: number): void;
}

/** The backlog above which a producer should wait for its sink (see waitForSink). */
export const SINK_HIGH_WATER = 1 << 20;

/**
 * Waits until `sink` has room again: down to half its high water when it can say so (the disk
 * keeps writing while the producer works), else until it is empty.
 */
export function waitForSink(sink: LogSink): Promise<void> {
  return sink.waitBelow?.(SINK_HIGH_WATER / 2) ?? sink.flush();
}
