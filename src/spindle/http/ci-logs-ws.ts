/**
 * `sh.tangled.ci.subscribePipelineLogs` (gen2 §2.8): a WebSocket at
 * `/xrpc/sh.tangled.ci.subscribePipelineLogs?pipeline=<tid>&workflows=<name>…`.
 *
 * Before the upgrade: bad parameters (not a TID, no workflows) → 400 `BadRequest`, unknown
 * pipeline or workflow → 404 `NotFound`, as JSON on the raw socket. After it: each requested
 * workflow's JSON-lines log file (`<logDir>/<wid>.log`) is replayed from its start and followed
 * while the workflow runs; every line is one binary message (`encodeLogFrame`); lines of several
 * workflows interleave. When every workflow has finished and its file is drained, the socket is
 * closed with 1000 (upstream drops the TCP connection without a close frame [I]; the appview
 * treats both as "done"). A ping goes out after 30 s without a message.
 *
 * GUESS: naming a workflow the pipeline does not have is a 404 (upstream's behaviour is not
 * known); a workflow that failed before it had a log (bad workflow file, knot unreachable) is
 * answered with the two synthetic lines `/logs` sends, so its error is visible.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { isValidTid } from "@atproto/syntax";
import type { Logger } from "pino";
import type { WebSocket, WebSocketServer } from "ws";
import { encodeLogFrame, LexiconValidationError, validate } from "../../protocol/index.ts";
import { decodeLogLine, failedWithoutLogLines } from "../../protocol/logline.ts";
import { logFilePath } from "../../relay/logfile.ts";
import type { CiPipelines } from "../db/ci-pipelines.ts";
import type { SpindleMetrics } from "../pipelines/metrics.ts";
import type { PipelineStore, RunRow } from "../pipelines/store.ts";
import { followLogFile } from "./follow-log.ts";
import { ClosedError, endLogStream, SilencePinger, SlowConsumerError } from "./ws-send.ts";

export interface LogStreamDeps {
  query: CiPipelines;
  /** Counts the stream in `loom_log_subscribers` and its slow clients as `stream="ci-logs"`. */
  metrics: SpindleMetrics;
  store: PipelineStore;
  logDir: string;
  logger: Logger;
  /** Wakes followers (the event log's publish). Returns the unsubscribe function. */
  subscribe: (fn: () => void) => () => void;
  pingMs: number;
  pollMs: number;
  highWaterBytes: number;
  stallMs: number;
}

/** Writes a JSON error answer on a socket that was about to be upgraded. */
function refuse(socket: Duplex, status: 400 | 404, error: string, message: string): void {
  const body = JSON.stringify({ error, message });
  const reason = status === 400 ? "Bad Request" : "Not Found";
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

export interface ResolvedLogRequest {
  runs: RunRow[];
}

/**
 * Checks the parameters and finds the runs; on failure answers the socket (or, for a plain GET,
 * throws an error the caller maps) and returns null.
 */
export function resolveLogRequest(
  query: URLSearchParams,
  deps: Pick<LogStreamDeps, "query" | "store">,
): { ok: true; runs: RunRow[] } | { ok: false; status: 400 | 404; error: string; message: string } {
  let params: { pipeline: string; workflows?: string[] };
  try {
    params = validate.subscribePipelineLogsParams(query);
  } catch (err) {
    const message = err instanceof LexiconValidationError ? err.message : "invalid parameters";
    return { ok: false, status: 400, error: "BadRequest", message };
  }
  if (!isValidTid(params.pipeline)) {
    return {
      ok: false,
      status: 400,
      error: "BadRequest",
      message: `pipeline is not a TID: ${params.pipeline}`,
    };
  }
  const names = [...new Set(params.workflows ?? [])];
  if (names.length === 0) {
    return { ok: false, status: 400, error: "BadRequest", message: "at least one workflow is required" };
  }
  const row = deps.query.row(params.pipeline);
  if (row === null) {
    return { ok: false, status: 404, error: "NotFound", message: `no pipeline ${params.pipeline}` };
  }
  const runs: RunRow[] = [];
  for (const name of names) {
    const run = deps.store.runByName(row.knot, row.tid, name);
    if (run === null) {
      return {
        ok: false,
        status: 404,
        error: "NotFound",
        message: `pipeline ${params.pipeline} has no workflow ${name}`,
      };
    }
    runs.push(run);
  }
  return { ok: true, runs };
}

export function handleLogsUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  url: URL,
  wss: WebSocketServer,
  deps: LogStreamDeps,
): void {
  const r = resolveLogRequest(url.searchParams, deps);
  if (!r.ok) {
    refuse(socket, r.status, r.error, r.message);
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => serveCiLogs(ws, r.runs, deps));
}

export function serveCiLogs(ws: WebSocket, runs: RunRow[], deps: LogStreamDeps): void {
  const log = deps.logger.child({ stream: "ci-logs", rkey: runs[0]?.rkey });
  const pinger = new SilencePinger(ws, deps.pingMs);
  deps.metrics.logSubscribers.inc();
  let closed = false;
  const wakers = new Set<() => void>();
  const unsubscribe = deps.subscribe(() => {
    for (const w of wakers) w();
  });
  ws.on("close", () => {
    closed = true;
    for (const w of wakers) w();
    unsubscribe();
    pinger.stop();
    deps.metrics.logSubscribers.dec();
  });
  ws.on("error", () => {});

  const waitForChange = () =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, deps.pollMs);
      function done() {
        clearTimeout(timer);
        wakers.delete(done);
        resolve();
      }
      wakers.add(done);
    });

  const send = async (frame: Uint8Array) => {
    if (ws.readyState !== ws.OPEN) throw new ClosedError("connection closed");
    if (ws.bufferedAmount < deps.highWaterBytes) {
      ws.send(frame, { binary: true });
    } else {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          new Promise<void>((res, rej) =>
            ws.send(frame, { binary: true }, (err) => (err ? rej(new ClosedError(err.message)) : res())),
          ),
          new Promise<never>((_, rej) => {
            timer = setTimeout(
              () =>
                rej(
                  new SlowConsumerError(
                    `client did not read ${deps.highWaterBytes} bytes in ${deps.stallMs} ms`,
                  ),
                ),
              deps.stallMs,
            );
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    }
    pinger.touch();
  };

  const sendLine = async (text: string, workflow: string) => {
    const line = decodeLogLine(text);
    if (!line) return; // a torn or foreign line: nothing a reader could use
    await send(encodeLogFrame(line, workflow));
  };

  const follow = (run: RunRow): Promise<void> =>
    followLogFile({
      path: logFilePath(deps.logDir, run.wid),
      run: () => deps.store.runByWid(run.wid),
      closed: () => closed,
      waitForChange,
      onLine: (text) => sendLine(text, run.name),
      onNoLog: async (r) => {
        if (!r.error) return;
        for (const line of failedWithoutLogLines(r.error)) await send(encodeLogFrame(line, run.name));
      },
    });

  endLogStream(ws, Promise.all(runs.map(follow)), {
    name: "subscribePipelineLogs",
    stream: "ci-logs",
    completeReason: "log stream complete",
    slowClients: deps.metrics.slowClients,
    log,
  });
}
