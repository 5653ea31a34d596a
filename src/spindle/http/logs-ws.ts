/**
 * `GET /logs/{knot}/{rkey}/{workflow}` (spec §4.3): one text frame per line of the workflow's
 * JSON-lines log file. No status yet → close at once; `failed` with an error and no file → the
 * two synthetic lines; otherwise tail the file from the start. Unlike upstream (which follows
 * forever), the stream closes (1000, "log stream complete") once the workflow has finished and
 * the file is drained: the scheduler closes the file before it records the final status, so a
 * finished status means the file is complete.
 */
import { constants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import type { Logger } from "pino";
import type { WebSocket } from "ws";
import { logFilePath } from "../../relay/logfile.ts";
import { encodeLogLine, failedWithoutLogLines } from "../../relay/logline.ts";
import type { EventLog } from "../pipelines/event-log.ts";
import type { SpindleMetrics } from "../pipelines/metrics.ts";
import { FINISHED } from "../pipelines/status.ts";
import type { PipelineStore } from "../pipelines/store.ts";
import type { StreamOptions } from "./events-ws.ts";
import { ClosedError, SilencePinger, SlowConsumerError, sendBounded } from "./ws-send.ts";

export const LOG_COMPLETE = "log stream complete";
const CHUNK = 64 * 1024;
/** A line longer than this is cut (the relay already bounds lines; this guards odd files). */
const MAX_LINE = 4 * 1024 * 1024;

export interface LogsDeps {
  store: PipelineStore;
  events: EventLog;
  logDir: string;
  metrics: SpindleMetrics;
  logger: Logger;
  opts: StreamOptions & { pollMs: number };
}

export function serveLogs(ws: WebSocket, knot: string, rkey: string, workflow: string, deps: LogsDeps): void {
  const log = deps.logger.child({ stream: "logs", knot, rkey, workflow });
  deps.metrics.logSubscribers.inc();
  const pinger = new SilencePinger(ws, deps.opts.pingMs);
  let closed = false;
  let wake: (() => void) | undefined;
  const unsubscribe = deps.events.subscribe(() => wake?.());
  ws.on("close", () => {
    closed = true;
    wake?.();
    unsubscribe();
    pinger.stop();
    deps.metrics.logSubscribers.dec();
  });
  ws.on("error", () => {});

  const waitForChange = () =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, deps.opts.pollMs);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  const send = async (frame: string) => {
    const wait = sendBounded(ws, frame, deps.opts);
    if (wait) await wait;
    pinger.touch();
  };

  const run = async (): Promise<void> => {
    const first = deps.store.runByName(knot, rkey, workflow);
    if (!first) return;
    const path = logFilePath(deps.logDir, first.wid);
    let fh: FileHandle | undefined;
    try {
      let offset = 0;
      let pending = Buffer.alloc(0);
      const buf = Buffer.allocUnsafe(CHUNK);
      for (;;) {
        if (closed) return;
        // Status first, then read to EOF: if it was finished here, EOF below is the true end.
        const status = deps.store.runByWid(first.wid);
        const finished = status !== null && FINISHED.has(status.status);
        if (!fh) {
          fh = await open(path, constants.O_RDONLY).catch(() => undefined);
          if (!fh) {
            if (finished && status?.status === "failed" && status.error && offset === 0) {
              for (const line of failedWithoutLogLines(status.error)) await send(encodeLogLine(line));
              return;
            }
            if (finished) return;
            await waitForChange();
            continue;
          }
        }
        for (;;) {
          const { bytesRead } = await fh.read(buf, 0, CHUNK, offset);
          if (bytesRead === 0) break;
          offset += bytesRead;
          let data =
            pending.length > 0
              ? Buffer.concat([pending, buf.subarray(0, bytesRead)])
              : buf.subarray(0, bytesRead);
          let nl = data.indexOf(10);
          while (nl !== -1) {
            await send(data.toString("utf8", 0, nl));
            data = data.subarray(nl + 1);
            nl = data.indexOf(10);
          }
          pending = Buffer.from(data.length > MAX_LINE ? data.subarray(0, MAX_LINE) : data);
          if (closed) return;
        }
        if (finished) {
          if (pending.length > 0) await send(pending.toString("utf8"));
          return;
        }
        await waitForChange();
      }
    } finally {
      await fh?.close().catch(() => {});
    }
  };

  run()
    .then(() => {
      if (ws.readyState === ws.OPEN) ws.close(1000, LOG_COMPLETE);
    })
    .catch((err: Error) => {
      if (err instanceof SlowConsumerError) {
        deps.metrics.slowClients.inc({ stream: "logs" });
        log.warn({ reason: err.message }, "slow /logs client closed");
        ws.close(1008, "slow consumer");
        setTimeout(() => ws.terminate(), 1000).unref();
      } else if (!(err instanceof ClosedError)) {
        log.error({ err: err.message }, "/logs stream failed");
        ws.close(1011, "internal error");
      }
    });
}
