/**
 * `GET /events` (spec §4.1): status envelopes with `created > cursor` in ascending order,
 * batches of 100 (each batch queued before the next is read; unlike upstream, a backlog of more
 * than 100 drains at once instead of waiting for new events), then live. Every connection has
 * its own pump, so a slow client only delays itself.
 */
import type { Socket } from "node:net";
import type { Logger } from "pino";
import type { WebSocket } from "ws";
import type { EventLog } from "../pipelines/event-log.ts";
import type { SpindleMetrics } from "../pipelines/metrics.ts";
import {
  type BoundedSendOptions,
  ClosedError,
  SilencePinger,
  SlowConsumerError,
  sendBounded,
} from "./ws-send.ts";

export const EVENTS_BATCH = 100;

let connections = 0;

/**
 * The TCP socket under a `ws` WebSocket, corked. `ws` has no public cork; its `_socket` field
 * has been stable across ws 8 (the version is pinned). Without it each frame is its own write
 * system call, which is most of the cost of fanning one burst out to hundreds of subscribers.
 */
function corkedSocket(ws: WebSocket): Socket | undefined {
  const socket = (ws as unknown as { _socket?: Socket })._socket;
  socket?.cork();
  return socket;
}

export interface StreamOptions extends BoundedSendOptions {
  pingMs: number;
}

export function serveEvents(
  ws: WebSocket,
  cursorParam: string | null,
  deps: { events: EventLog; metrics: SpindleMetrics; logger: Logger; opts: StreamOptions },
): void {
  const { events, metrics, opts } = deps;
  let last = events.cursorFrom(cursorParam);
  const log = deps.logger.child({ stream: "events", conn: ++connections });
  const pinger = new SilencePinger(ws, opts.pingMs);
  let pumping = false;
  let again = false;
  let closed = false;
  metrics.eventSubscribers.inc();

  const pump = async (): Promise<void> => {
    if (pumping) {
      again = true;
      return;
    }
    pumping = true;
    try {
      do {
        again = false;
        for (;;) {
          const batch = events.after(last, EVENTS_BATCH);
          if (batch.length === 0) break;
          // One write for the whole batch while the socket keeps up (see corkedSocket).
          const socket = batch.length > 1 ? corkedSocket(ws) : undefined;
          try {
            for (const e of batch) {
              if (closed) return;
              const wait = sendBounded(ws, e.bytes, opts);
              if (wait) {
                socket?.uncork();
                await wait;
                socket?.cork();
              }
              last = e.created;
            }
          } finally {
            socket?.uncork();
          }
          pinger.touch();
        }
      } while (again && !closed);
    } catch (err) {
      if (err instanceof SlowConsumerError) {
        metrics.slowClients.inc({ stream: "events" });
        log.warn({ reason: err.message, cursor: last.toString() }, "slow /events client closed");
        ws.close(1008, "slow consumer");
        setTimeout(() => ws.terminate(), 1000).unref();
      } else if (!(err instanceof ClosedError)) {
        log.error({ err }, "/events pump failed");
        ws.terminate();
      }
    } finally {
      pumping = false;
    }
  };

  const unsubscribe = events.subscribe(() => void pump());
  log.debug({ cursor: last.toString() }, "/events client connected");
  ws.on("close", () => {
    closed = true;
    unsubscribe();
    pinger.stop();
    metrics.eventSubscribers.dec();
  });
  ws.on("error", () => {});
  void pump();
}
