/**
 * The spindle's HTTP surface (spec §3): plain routes, XRPC methods, and the two WebSocket
 * streams, dispatched by path. Unknown paths answer 404 and wrong methods 405 in plain text, as
 * upstream's router does; XRPC errors go through `toXrpcErrorResponse`, the one boundary.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { WebSocketServer } from "ws";
import { toXrpcErrorResponse } from "../errors.ts";
import type { EventLog } from "../pipelines/event-log.ts";
import type { SpindleMetrics } from "../pipelines/metrics.ts";
import type { PipelineStore } from "../pipelines/store.ts";
import { type StreamOptions, serveEvents } from "./events-ws.ts";
import { serveLogs } from "./logs-ws.ts";
import type { XrpcMethod } from "./xrpc.ts";

export const MOTD = `****
 ___ ___  _ _  _ ___  _    ___
/ __| _ \\| | \\| |   \\| |  | __|
\\__ \\  _/| | .\` | |) | |__| _|
|___/_|  |_|_|\\_|___/|____|___|   (loom)

This is a spindle server. More info at https://tangled.sh/@tangled.sh/core/tree/master/docs/spindle

Most API routes are under /xrpc/
`;

export interface AppDeps {
  xrpc: Record<string, XrpcMethod>;
  events: EventLog;
  store: PipelineStore;
  logDir: string;
  metrics: SpindleMetrics;
  /** What `/metrics` serves: the spindle's registry, merged with the embedded controller's. */
  exposition: Registry;
  /** True when `/metrics` has its own listener (`server.metricsAddr`): the public port hides it. */
  metricsElsewhere: boolean;
  logger: Logger;
  stream: StreamOptions & { pollMs: number };
  motd?: string;
  /** Readiness: null when ready, else why not (one line, shown to whoever asks). */
  notReady: () => string | null;
}

function text(res: ServerResponse, status: number, body: string, type = "text/plain; charset=utf-8"): void {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

export class SpindleApp {
  readonly #d: AppDeps;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false });

  constructor(deps: AppDeps) {
    this.#d = deps;
  }

  /** All open WebSocket connections (for shutdown). */
  get clients(): Set<import("ws").WebSocket> {
    return this.#wss.clients;
  }

  onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    void this.#request(req, res).catch((err: Error) => {
      this.#d.logger.error({ err }, "request handler failed");
      if (!res.headersSent) text(res, 500, "Internal Server Error\n");
      else res.destroy();
    });
  };

  async #request(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://spindle.invalid");
    const path = url.pathname;
    if (path.startsWith("/xrpc/")) return this.#xrpc(req, res, url, path.slice(6));
    switch (path) {
      case "/":
        return text(res, 200, this.#d.motd ?? MOTD);
      case "/healthz":
      case "/readyz":
        return this.#operations(path, res);
      case "/metrics":
        if (this.#d.metricsElsewhere) break;
        return this.#operations(path, res);
      case "/events":
        return text(res, 400, "Bad Request: /events is a WebSocket endpoint\n");
    }
    if (/^\/logs\/[^/]+\/[^/]+\/[^/]+$/.test(path)) {
      return text(res, 400, "Bad Request: /logs is a WebSocket endpoint\n");
    }
    return text(res, 404, "404 page not found\n");
  }

  /**
   * The operations listener (`server.metricsAddr`): `/metrics`, `/healthz` and `/readyz` only,
   * on a port that is not published to the internet.
   */
  onOperationsRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? "/", "http://spindle.invalid").pathname;
    if (path !== "/metrics" && path !== "/healthz" && path !== "/readyz") {
      text(res, 404, "404 page not found\n");
      return;
    }
    void this.#operations(path, res).catch((err: Error) => {
      this.#d.logger.error({ err }, "metrics request failed");
      if (!res.headersSent) text(res, 500, "Internal Server Error\n");
    });
  };

  async #operations(path: "/metrics" | "/healthz" | "/readyz", res: ServerResponse): Promise<void> {
    if (path === "/healthz") return text(res, 200, "ok\n");
    if (path === "/readyz") {
      const why = this.#d.notReady();
      return why === null ? text(res, 200, "ready\n") : text(res, 503, `not ready: ${why}\n`);
    }
    const body = await this.#d.exposition.metrics();
    return text(res, 200, body, this.#d.exposition.contentType);
  }

  async #xrpc(req: IncomingMessage, res: ServerResponse, url: URL, nsid: string): Promise<void> {
    const method = this.#d.xrpc[nsid];
    if (!method) return text(res, 404, "404 page not found\n");
    if (req.method !== method.http) {
      res.setHeader("allow", method.http);
      return text(res, 405, "Method Not Allowed\n");
    }
    const started = performance.now();
    let status = 200;
    try {
      await method.handle(req, res, url);
    } catch (err) {
      const answer = toXrpcErrorResponse(err);
      status = answer.status;
      if (answer.internal) this.#d.logger.error({ method: nsid, err }, "xrpc method failed");
      else this.#d.logger.info({ method: nsid, status, error: answer.body.error }, "xrpc request refused");
      if (!res.headersSent) {
        const body = JSON.stringify(answer.body);
        res.writeHead(status, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
        });
        res.end(body);
      }
    } finally {
      this.#d.metrics.xrpc.inc({ method: nsid, status: String(status) });
      this.#d.metrics.xrpcSeconds.observe({ method: nsid }, (performance.now() - started) / 1000);
    }
  }

  onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on("error", () => {});
    const url = new URL(req.url ?? "/", "http://spindle.invalid");
    const path = url.pathname;
    const reject = (status: number, reason: string) => {
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (req.method !== "GET") {
      reject(405, "Method Not Allowed");
      return;
    }
    if (path === "/events") {
      this.#wss.handleUpgrade(req, socket, head, (ws) =>
        serveEvents(ws, url.searchParams.get("cursor"), {
          events: this.#d.events,
          metrics: this.#d.metrics,
          logger: this.#d.logger,
          opts: this.#d.stream,
        }),
      );
      return;
    }
    const m = /^\/logs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(path);
    if (m) {
      let parts: string[];
      try {
        parts = [m[1], m[2], m[3]].map((p) => decodeURIComponent(p as string));
      } catch {
        reject(400, "Bad Request");
        return;
      }
      const [knot, rkey, workflow] = parts as [string, string, string];
      this.#wss.handleUpgrade(req, socket, head, (ws) =>
        serveLogs(ws, knot, rkey, workflow, {
          store: this.#d.store,
          events: this.#d.events,
          logDir: this.#d.logDir,
          metrics: this.#d.metrics,
          logger: this.#d.logger,
          opts: this.#d.stream,
        }),
      );
      return;
    }
    reject(404, "Not Found");
  };

  /** Closes every stream connection (going away) and stops accepting upgrades. */
  close(): void {
    for (const ws of this.#wss.clients) ws.close(1001, "server shutting down");
    setTimeout(() => {
      for (const ws of this.#wss.clients) ws.terminate();
    }, 1000).unref();
    this.#wss.close();
  }
}
