/**
 * One WebSocket connection to an event stream (Jetstream or a knot's `/events`), shared by both
 * consumers. It owns the parts that are the same for every stream:
 *
 * - text frames go into a bounded queue and are handed to `onText` one at a time, in order; when
 *   the queue is full the socket is paused (TCP back-pressure) until it has drained to half;
 * - binary frames are ignored (neither stream sends them in plain-JSON mode);
 * - a frame larger than `maxPayload` or a text frame that is not UTF-8 ends the session with a
 *   specific reason (the `ws` library closes with 1009/1007);
 * - liveness: a ping every `pingMs`; if nothing at all (message, ping, pong) arrived for
 *   `livenessMs` the socket is terminated (a half-open TCP connection otherwise hangs forever);
 * - frames received before the socket closed are still processed; then `runSession` resolves;
 * - frames are processed in batches: at most `maxBatch` frames or `sliceMs` of work, then
 *   `onFlush` (the knot consumer writes the batch's rows and its cursor in one transaction),
 *   then a yield to the event loop (`setImmediate`), so a flood of frames never keeps the
 *   process from answering `/healthz` or other sockets: without it a full queue is a chain of
 *   promise jobs, and the loop polls I/O only when it is empty.
 *
 * If `onText` or `onFlush` rejects, the session ends at once and the rest of the queue is
 * dropped: the caller did not advance its cursor, so a reconnect asks for those events again.
 */
import type { LookupFunction } from "node:net";
import type { Logger } from "pino";
import WebSocket from "ws";

export interface SessionOptions {
  url: string;
  log: Logger;
  /** Ends the session (socket terminated, queue dropped after the frame in hand). */
  signal: AbortSignal;
  /** Largest accepted frame (bytes). */
  maxPayload: number;
  /** Nothing received for this long → terminate (ms). */
  livenessMs: number;
  /** Ping interval (ms). */
  pingMs: number;
  /** Dial + opening handshake deadline (ms). */
  handshakeTimeoutMs: number;
  /** Frames buffered before the socket is paused. */
  maxQueued: number;
  /** Longest stretch of frame processing before a flush and a yield to the event loop (ms); default 10. */
  sliceMs?: number;
  /** Most frames handed to `onText` between two `onFlush` calls; default 100. */
  maxBatch?: number;
  /** Milliseconds clock for receive stamps; default Date.now. */
  now?: () => number;
  headers?: Record<string, string>;
  /** DNS hook for the dial (e.g. pinned to an address the SSRF guard checked). */
  lookup?: LookupFunction;
  onOpen?: () => void;
  /** One text frame; `receivedAt` is `now()` when it arrived. Rejecting ends the session. */
  onText: (text: string, receivedAt: number) => Promise<void>;
  /**
   * Called after each batch of `onText` calls (also when the session is stopped mid-batch, not
   * after an `onText` rejected). Rejecting ends the session.
   */
  onFlush?: () => Promise<void>;
  /** Called whenever the queue becomes empty after processing (all received frames handled). */
  onIdle?: () => void;
  /**
   * Called as soon as a frame over `maxPayload` is announced (its header is read), before the
   * close handshake: the session itself ends only when the peer answers the 1009 close, which
   * it sends after the rest of the oversize frame, so that can take long.
   */
  onOversize?: () => void;
}

export interface SessionEnd {
  /** Whether the WebSocket handshake completed. */
  opened: boolean;
  /** Why the session ended, for the log (specific, human-readable). */
  reason: string;
  /** The close code, when the socket got as far as closing. */
  code: number | null;
  /** `onText` rejected (the caller's processing or storage failed). */
  handlerFailed: boolean;
  /**
   * The peer sent a frame over `maxPayload` (closed with 1009). Its content is never seen, so a
   * stream that stores it sends it again on every reconnect at the same cursor; the caller must
   * step past it (knot-consumer.ts).
   */
  oversize?: boolean;
  /** Text frames handed to `onText` (processed or not) before the session ended. */
  frames?: number;
}

const ERROR_REASONS: Record<string, (err: Error, opts: SessionOptions) => string> = {
  WS_ERR_INVALID_UTF8: () => "peer sent a text frame that is not valid UTF-8 (closed with 1007)",
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: (_e, o) =>
    `peer sent a frame larger than the ${o.maxPayload}-byte cap (closed with 1009)`,
  WS_ERR_INVALID_OPCODE: (e) => `peer sent an invalid frame: ${e.message}`,
  WS_ERR_UNEXPECTED_RSV_1: (e) => `peer sent an invalid frame: ${e.message}`,
  WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH: (e) => `peer sent an invalid frame: ${e.message}`,
  WS_ERR_EXPECTED_MASK: (e) => `peer sent an invalid frame: ${e.message}`,
  WS_ERR_UNEXPECTED_MASK: (e) => `peer sent an invalid frame: ${e.message}`,
};

function describeClose(code: number, reason: string): string {
  if (code === 1006) return "connection dropped without a close frame (1006; e.g. cut mid-frame)";
  return `peer closed the connection (${code}${reason ? ` ${reason}` : ""})`;
}

export function runSession(opts: SessionOptions): Promise<SessionEnd> {
  const now = opts.now ?? Date.now;
  return new Promise<SessionEnd>((resolve) => {
    const queue: { text: string; at: number }[] = [];
    let opened = false;
    let closed = false;
    let processing = false;
    let finished = false;
    let failure: string | null = null;
    let handlerFailed = false;
    let closeCode: number | null = null;
    let oversize = false;
    let frames = 0;
    let pingTimer: NodeJS.Timeout | undefined;
    let watchdog: NodeJS.Timeout | undefined;

    if (opts.signal.aborted) {
      resolve({ opened: false, reason: "stopped", code: null, handlerFailed: false });
      return;
    }
    let ws: WebSocket;
    try {
      ws = new WebSocket(opts.url, {
        maxPayload: opts.maxPayload,
        handshakeTimeout: opts.handshakeTimeoutMs,
        perMessageDeflate: false,
        followRedirects: false,
        ...(opts.headers ? { headers: opts.headers } : {}),
        ...(opts.lookup ? { lookup: opts.lookup } : {}),
      });
    } catch (err) {
      // An unusable URL throws synchronously; report it like any other failed dial.
      resolve({
        opened: false,
        reason: `cannot connect: ${(err as Error).message}`,
        code: null,
        handlerFailed: false,
      });
      return;
    }

    const fail = (reason: string) => {
      failure ??= reason;
    };
    const touch = () => {
      clearTimeout(watchdog);
      if (closed || ws.isPaused) return;
      watchdog = setTimeout(() => {
        fail(`no message, ping or pong for ${opts.livenessMs} ms; connection presumed dead`);
        ws.terminate();
      }, opts.livenessMs);
    };
    const finish = () => {
      if (finished) return;
      finished = true;
      clearInterval(pingTimer);
      clearTimeout(watchdog);
      opts.signal.removeEventListener("abort", onAbort);
      const reason = opts.signal.aborted ? "stopped" : (failure ?? "connection closed");
      resolve({ opened, reason, code: closeCode, handlerFailed, oversize, frames });
    };
    const maybeFinish = () => {
      if (closed && !processing && (queue.length === 0 || handlerFailed || opts.signal.aborted)) finish();
    };
    const onAbort = () => {
      queue.length = 0;
      ws.terminate();
      maybeFinish();
    };
    opts.signal.addEventListener("abort", onAbort, { once: true });

    const sliceMs = opts.sliceMs ?? 10;
    const maxBatch = opts.maxBatch ?? 100;
    const drain = async () => {
      if (processing) return;
      processing = true;
      while (queue.length > 0 && !handlerFailed && !opts.signal.aborted) {
        const sliceStart = performance.now();
        let n = 0;
        while (queue.length > 0 && !handlerFailed && !opts.signal.aborted) {
          const item = queue.shift() as { text: string; at: number };
          if (ws.isPaused && queue.length <= opts.maxQueued / 2 && !closed) {
            ws.resume();
            touch();
          }
          try {
            await opts.onText(item.text, item.at);
          } catch (err) {
            handlerFailed = true;
            queue.length = 0;
            fail(`processing failed: ${(err as Error).message}`);
            ws.terminate();
            break;
          }
          if (++n >= maxBatch || performance.now() - sliceStart >= sliceMs) break;
        }
        if (!handlerFailed && opts.onFlush) {
          try {
            await opts.onFlush();
          } catch (err) {
            handlerFailed = true;
            queue.length = 0;
            fail(`processing failed: ${(err as Error).message}`);
            ws.terminate();
            break;
          }
        }
        await new Promise((r) => setImmediate(r));
        if (queue.length === 0 && !handlerFailed && !opts.signal.aborted) {
          try {
            opts.onIdle?.();
          } catch (err) {
            opts.log.error({ err: (err as Error).message }, "idle callback failed");
          }
        }
      }
      processing = false;
      maybeFinish();
    };

    ws.on("open", () => {
      opened = true;
      opts.onOpen?.();
      touch();
      pingTimer = setInterval(() => {
        if (ws.readyState === WebSocket.OPEN) ws.ping();
      }, opts.pingMs);
    });
    ws.on("message", (data, isBinary) => {
      touch();
      if (isBinary) {
        opts.log.debug({ bytes: rawLength(data) }, "binary frame ignored");
        return;
      }
      frames++;
      queue.push({ text: rawText(data), at: now() });
      if (queue.length >= opts.maxQueued && !ws.isPaused) {
        ws.pause();
        clearTimeout(watchdog);
      }
      void drain();
    });
    ws.on("ping", touch);
    ws.on("pong", touch);
    ws.on("error", (err: Error & { code?: string }) => {
      if (err.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH" && !oversize) {
        oversize = true;
        try {
          opts.onOversize?.();
        } catch (e) {
          opts.log.error({ err: (e as Error).message }, "oversize callback failed");
        }
      }
      const describe = err.code ? ERROR_REASONS[err.code] : undefined;
      fail(describe ? describe(err, opts) : opened ? err.message : `cannot connect: ${err.message}`);
    });
    ws.on("close", (code, reason) => {
      closed = true;
      closeCode = code;
      fail(describeClose(code, reason.toString("utf8")));
      clearInterval(pingTimer);
      clearTimeout(watchdog);
      maybeFinish();
    });
  });
}

function rawLength(data: WebSocket.RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0);
  return data instanceof ArrayBuffer ? data.byteLength : data.length;
}

function rawText(data: WebSocket.RawData): string {
  // `ws` has already validated UTF-8 for text frames (skipUTF8Validation is off).
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  if (Buffer.isBuffer(data)) return data.toString("utf8");
  return Buffer.from(data).toString("utf8");
}
