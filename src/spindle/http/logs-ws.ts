/**
 * `GET /logs/{knot}/{rkey}/{workflow}` (spec §4.3): one text frame per line of the workflow's
 * JSON-lines log file. No status yet → close at once; `failed` with an error and no file → the
 * two synthetic lines; otherwise tail the file from the start. Unlike upstream (which follows
 * forever), the stream closes (1000, "log stream complete") once the workflow has finished and
 * the file is drained: the scheduler closes the file before it records the final status, so a
 * finished status means the file is complete.
 */
import type { Logger } from "pino";
import type { WebSocket } from "ws";
import { encodeLogLine, failedWithoutLogLines } from "../../protocol/logline.ts";
import { logFilePath } from "../../relay/logfile.ts";
import type { EventLog } from "../pipelines/event-log.ts";
import type { SpindleMetrics } from "../pipelines/metrics.ts";
import type { PipelineStore } from "../pipelines/store.ts";
import type { StreamOptions } from "./events-ws.ts";
import { followLogFile } from "./follow-log.ts";
import { endLogStream, SilencePinger, sendBounded } from "./ws-send.ts";

export const LOG_COMPLETE = "log stream complete";

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
    await followLogFile({
      path: logFilePath(deps.logDir, first.wid),
      run: () => deps.store.runByWid(first.wid),
      closed: () => closed,
      waitForChange,
      onLine: send,
      onNoLog: async (r) => {
        if (r.status !== "failed" || !r.error) return;
        for (const line of failedWithoutLogLines(r.error)) await send(encodeLogLine(line));
      },
    });
  };

  endLogStream(ws, run(), {
    name: "/logs",
    stream: "logs",
    completeReason: LOG_COMPLETE,
    slowClients: deps.metrics.slowClients,
    log,
  });
}
