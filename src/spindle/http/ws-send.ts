/**
 * Bounded sending on a WebSocket shared by `/events` and `/logs`: below the high-water mark a
 * frame is queued at once; above it the sender waits until the socket has drained that frame,
 * so a slow client holds at most about `highWater` bytes in memory and only its own pump waits.
 * A client that does not drain within `stallMs` is a slow consumer: closed with 1008.
 */
import type { Logger } from "pino";
import type { WebSocket } from "ws";

export interface BoundedSendOptions {
  highWaterBytes: number;
  stallMs: number;
}

export class SlowConsumerError extends Error {
  override name = "SlowConsumerError";
}

export class ClosedError extends Error {
  override name = "ClosedError";
}

/**
 * Sends `frame` (a text frame; a Buffer must hold UTF-8). Returns undefined when the frame was
 * queued at once — the common case, kept free of promise overhead for fan-out — or a promise
 * that settles once the socket drained it (rejecting with SlowConsumerError after `stallMs`).
 */
export function sendBounded(
  ws: WebSocket,
  frame: string | Buffer,
  opts: BoundedSendOptions,
): Promise<void> | undefined {
  if (ws.readyState !== ws.OPEN) throw new ClosedError("connection closed");
  if (ws.bufferedAmount < opts.highWaterBytes) {
    ws.send(frame, { binary: false });
    return undefined;
  }
  return sendDrained(ws, frame, opts);
}

async function sendDrained(ws: WebSocket, frame: string | Buffer, opts: BoundedSendOptions): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      new Promise<void>((resolve, reject) =>
        ws.send(frame, { binary: false }, (err) => (err ? reject(new ClosedError(err.message)) : resolve())),
      ),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new SlowConsumerError(`client did not read ${opts.highWaterBytes} bytes in ${opts.stallMs} ms`),
            ),
          opts.stallMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Pings after `intervalMs` of silence (spec §4.1: every 30 s). Call `touch` on every send. */
export class SilencePinger {
  #last = Date.now();
  readonly #timer: NodeJS.Timeout;

  constructor(ws: WebSocket, intervalMs: number) {
    const tick = Math.max(10, Math.min(intervalMs, 1000));
    this.#timer = setInterval(() => {
      if (ws.readyState !== ws.OPEN) return;
      if (Date.now() - this.#last >= intervalMs) {
        ws.ping();
        this.#last = Date.now();
      }
    }, tick);
    this.#timer.unref();
  }

  touch(): void {
    this.#last = Date.now();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/**
 * Ends a log stream (`/logs`, `subscribePipelineLogs`) once its pump settles: 1000 when it
 * finished; a slow consumer is counted under `stream`, closed with 1008 and terminated a second
 * later; a closed client needs nothing; anything else is logged and closed with 1011.
 */
export function endLogStream(
  ws: WebSocket,
  pump: Promise<unknown>,
  o: {
    name: string;
    stream: string;
    completeReason: string;
    slowClients: { inc(l: { stream: string }): void };
    log: Logger;
  },
): void {
  pump
    .then(() => {
      if (ws.readyState === ws.OPEN) ws.close(1000, o.completeReason);
    })
    .catch((err: Error) => {
      if (err instanceof SlowConsumerError) {
        o.slowClients.inc({ stream: o.stream });
        o.log.warn({ reason: err.message }, `slow ${o.name} client closed`);
        ws.close(1008, "slow consumer");
        setTimeout(() => ws.terminate(), 1000).unref();
      } else if (!(err instanceof ClosedError)) {
        o.log.error({ err: err.message }, `${o.name} stream failed`);
        ws.close(1011, "internal error");
      }
    });
}
