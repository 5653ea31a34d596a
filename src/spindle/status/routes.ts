/**
 * The status page's routes, mounted under `/status` on the operations listener
 * (`server.metricsAddr`) and, only when the operator turns it on, on the public port behind the
 * owner's service auth (`guard`):
 *
 *   GET /status                     the page (server-rendered; reload to update without script)
 *   GET /status/stream              Server-Sent Events: `update` = the page's body, re-rendered
 *                                   on every status event and every few seconds
 *   GET /status/log/<wid>           one run's log so far, from the masked log file
 *   GET /status/log/<wid>/stream    Server-Sent Events: `line` per further log line, `end`
 *
 * Log lines come only from the workflow's log file, which holds the relay's masked LogLines
 * (the same source `/logs` streams), so a secret value never reaches this page.
 */

import { open } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { logFilePath } from "../../relay/logfile.ts";
import { followLogFile } from "../http/follow-log.ts";
import type { HttpRoute } from "../http/routes.ts";
import type { PipelineStore } from "../pipelines/store.ts";
import type { Html } from "./html.ts";
import { logLineHtml, logPage, statusBody, statusPage } from "./page.ts";
import { type StatusSources, statusSnapshot } from "./snapshot.ts";

export const STATUS_BASE = "/status";
const LOG_PATH = /^\/status\/log\/([^/]+)(\/stream)?$/;
/** The log page shows at most this much of a file's end (the stream has the rest live). */
const PAGE_LOG_BYTES = 2 << 20;
/** An event-stream client this far behind is dropped (it reconnects and gets a fresh page). */
const HIGH_WATER = 4 << 20;

export interface StatusDeps extends StatusSources {
  store: PipelineStore;
  logDir: string;
  scheduler: StatusSources["scheduler"] & {
    /** Wakes when a running workflow's step changes; returns the unsubscribe. */
    onStepChange(fn: () => void): () => void;
  };
  /** Wakes on every status change (EventLog.subscribe); returns the unsubscribe. */
  subscribe: (fn: () => void) => () => void;
  logger: Logger;
  /** Re-render period of the live page (durations, lag); default 5 s. */
  tickMs?: number;
  /** Log follow poll; default 250 ms. */
  pollMs?: number;
}

/** Throws an `AccessDenied` to refuse a request (the public port: owner's service auth). */
export type StatusGuard = (req: IncomingMessage) => Promise<void>;

export class AccessDenied extends Error {
  override readonly name = "AccessDenied";
  readonly status: 401 | 403;
  constructor(status: 401 | 403, message: string) {
    super(message);
    this.status = status;
  }
}

export class StatusRoutes {
  readonly #d: StatusDeps;
  readonly #streams = new Set<ServerResponse>();
  /** Bumped on every change (status event, step): a cached render older than that is stale. */
  #version = 0;
  #last: { at: number; version: number; html: Html } | undefined;
  readonly #unsubscribe: () => void;

  constructor(deps: StatusDeps) {
    this.#d = deps;
    this.#unsubscribe = this.#onChange(() => {
      this.#version++;
    });
  }

  /** Wakes `fn` on what changes the page: a status event or a running workflow's step. */
  #onChange(fn: () => void): () => void {
    const events = this.#d.subscribe(fn);
    const steps = this.#d.scheduler.onStepChange(fn);
    return () => {
      events();
      steps();
    };
  }

  /** The routes, each behind `guard` when one is given. */
  routes(guard?: StatusGuard): HttpRoute[] {
    const wrap =
      (fn: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>) =>
      async (req: IncomingMessage, res: ServerResponse, url: URL) => {
        if (req.method !== "GET" && req.method !== "HEAD") {
          res.writeHead(405, { allow: "GET", "content-type": "text/plain; charset=utf-8" });
          res.end("Method Not Allowed\n");
          return;
        }
        if (guard) {
          try {
            await guard(req);
          } catch (err) {
            const status = err instanceof AccessDenied ? err.status : 401;
            const msg =
              err instanceof AccessDenied ? err.message : "the spindle owner's service auth is required";
            res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
            res.end(`${msg}\n`);
            return;
          }
        }
        await fn(req, res, url);
      };
    return [
      { path: STATUS_BASE, handle: wrap((_req, res) => this.#page(res)) },
      { path: `${STATUS_BASE}/`, handle: wrap((_req, res) => this.#page(res)) },
      { path: `${STATUS_BASE}/stream`, handle: wrap((req, res) => this.#stream(req, res)) },
      {
        path: LOG_PATH,
        handle: wrap((req, res, url) => {
          const m = LOG_PATH.exec(url.pathname);
          let wid: string;
          try {
            wid = decodeURIComponent(m?.[1] ?? "");
          } catch {
            return Promise.resolve(send(res, 400, "Bad Request\n"));
          }
          return m?.[2] ? this.#logStream(req, res, wid, url) : this.#logPage(res, wid);
        }),
      },
    ];
  }

  /** Ends every open event stream (server shutdown). */
  close(): void {
    this.#unsubscribe();
    for (const res of this.#streams) res.destroy();
    this.#streams.clear();
  }

  /**
   * The live body, rendered once per change for every open page: a render made after the last
   * change is shared by the streams that ask within a second.
   */
  #render(): Html {
    const now = Date.now();
    if (this.#last && this.#last.version === this.#version && now - this.#last.at < 1000)
      return this.#last.html;
    const html = statusBody(statusSnapshot(this.#d), STATUS_BASE);
    this.#last = { at: now, version: this.#version, html };
    return html;
  }

  async #page(res: ServerResponse): Promise<void> {
    const body = statusPage(statusSnapshot(this.#d), STATUS_BASE).text;
    send(res, 200, body, "text/html; charset=utf-8");
  }

  #open(req: IncomingMessage, res: ServerResponse): (event: string, data: string) => boolean {
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    });
    res.flushHeaders();
    req.socket.setTimeout(0);
    this.#streams.add(res);
    res.on("close", () => this.#streams.delete(res));
    return (event, data) => {
      if (res.destroyed || res.writableEnded) return false;
      if (res.writableLength > HIGH_WATER) {
        this.#d.logger.warn({ stream: "status" }, "status stream client too slow; closed");
        res.destroy();
        return false;
      }
      res.write(sseEvent(event, data));
      return true;
    };
  }

  async #stream(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const emit = this.#open(req, res);
    let pending: NodeJS.Timeout | undefined;
    const push = () => {
      try {
        emit("update", this.#render().text);
      } catch (err) {
        this.#d.logger.error({ err }, "status page render failed");
      }
    };
    // Changes come in bursts (a pipeline's workflows, a run's quick steps): one render per burst.
    const unsubscribe = this.#onChange(() => {
      pending ??= setTimeout(() => {
        pending = undefined;
        push();
      }, 50);
    });
    const tick = setInterval(push, this.#d.tickMs ?? 5000);
    res.on("close", () => {
      unsubscribe();
      clearInterval(tick);
      clearTimeout(pending);
    });
    push();
  }

  async #logPage(res: ServerResponse, wid: string): Promise<void> {
    const run = this.#d.store.runByWid(wid);
    if (!run) return send(res, 404, "no such workflow run\n");
    const { lines, total } = await readLines(logFilePath(this.#d.logDir, wid));
    const repo = this.#d.store.pipelineRepo(run.knot, run.rkey);
    const body = logPage(
      { wid, workflow: run.name, repo: repo ? `${repo.did}/${repo.name}` : run.knot, status: run.status },
      lines,
      total,
      STATUS_BASE,
    ).text;
    send(res, 200, body, "text/html; charset=utf-8");
  }

  async #logStream(req: IncomingMessage, res: ServerResponse, wid: string, url: URL): Promise<void> {
    const run = this.#d.store.runByWid(wid);
    if (!run) return send(res, 404, "no such workflow run\n");
    let skip = Number(url.searchParams.get("skip") ?? "0");
    if (!Number.isSafeInteger(skip) || skip < 0) skip = 0;
    const emit = this.#open(req, res);
    let closed = false;
    let wake: (() => void) | undefined;
    const unsubscribe = this.#d.subscribe(() => wake?.());
    res.on("close", () => {
      closed = true;
      unsubscribe();
      wake?.();
    });
    const waitForChange = () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.#d.pollMs ?? 250);
        function done() {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        wake = done;
      });
    try {
      await followLogFile({
        path: logFilePath(this.#d.logDir, wid),
        run: () => this.#d.store.runByWid(wid),
        closed: () => closed,
        waitForChange,
        onLine: async (text) => {
          if (skip > 0) {
            skip--;
            return;
          }
          const line = logLineHtml(text).text;
          if (line !== "" && !emit("line", line)) closed = true;
        },
        onNoLog: async () => {},
      });
    } finally {
      emit("end", this.#d.store.runByWid(wid)?.status ?? "");
      unsubscribe();
      res.end();
    }
  }
}

/**
 * One Server-Sent Event. Every line break the event-stream format knows (CR, LF, CRLF) starts a
 * new `data:` line, so no text (a log line with a carriage return) can end the event early or
 * start a field of its own.
 */
export function sseEvent(event: string, data: string): string {
  return `event: ${event}\n${data
    .split(/\r\n|\r|\n/)
    .map((l) => `data: ${l}\n`)
    .join("")}\n`;
}

function send(res: ServerResponse, status: number, body: string, type = "text/plain; charset=utf-8"): void {
  res.writeHead(status, {
    "content-type": type,
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
  });
  res.end(body);
}

/**
 * The whole lines at a log file's end (at most PAGE_LOG_BYTES) and how many whole lines the file
 * holds: the stream skips exactly that many, so the page and its stream neither repeat nor miss.
 */
async function readLines(path: string): Promise<{ lines: string[]; total: number }> {
  const fh = await open(path, "r").catch(() => undefined);
  if (!fh) return { lines: [], total: 0 };
  try {
    const { size } = await fh.stat();
    const chunk = Buffer.alloc(1 << 20);
    let total = 0;
    let end = 0;
    for (let at = 0; at < size; ) {
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, at);
      if (bytesRead === 0) break;
      for (let i = chunk.indexOf(10); i !== -1 && i < bytesRead; i = chunk.indexOf(10, i + 1)) {
        total++;
        end = at + i + 1;
      }
      at += bytesRead;
    }
    const start = Math.max(0, end - PAGE_LOG_BYTES);
    const buf = Buffer.alloc(end - start);
    await fh.read(buf, 0, buf.length, start);
    const lines = buf.toString("utf8").split("\n");
    lines.pop();
    if (start > 0) lines.shift();
    return { lines, total };
  } finally {
    await fh.close();
  }
}
