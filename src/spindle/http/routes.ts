/**
 * Every route the spindle serves, in one table (app.ts dispatches it):
 *
 *   public listener                        what
 *   GET  /                                 the motd (any method, as upstream)
 *   GET  /healthz, /readyz                 liveness, readiness
 *   GET  /metrics                          Prometheus (here unless `server.metricsAddr` is set)
 *   GET  /.well-known/did.json             the spindle's did:web document
 *   WS   /events                           status events (spec §4.1)
 *   WS   /logs/<knot>/<rkey>/<workflow>    one workflow's log lines (spec §4.2)
 *   WS   /xrpc/sh.tangled.ci.subscribePipelineLogs   Generation 2 log frames
 *   *    /xrpc/<nsid>                      XRPC methods (router.ts): repo-methods.ts (Gen1),
 *                                          ci-methods.ts (sh.tangled.ci.*)
 *   operations listener (`server.metricsAddr`): /metrics, /healthz, /readyz, /status… (the
 *   status page, src/spindle/status; on the public port too, behind the owner's service auth,
 *   when `server.statusPagePublic` is set)
 *
 * `/events` and `/logs/…` asked without an upgrade answer 400; unknown paths 404, wrong methods
 * 405, in plain text as upstream's router does.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { WebSocket, WebSocketServer } from "ws";
import { spindleDidDocument } from "../../protocol/did-web.ts";
import type { CiPipelines } from "../db/ci-pipelines.ts";
import type { EventLog } from "../pipelines/event-log.ts";
import type { SpindleMetrics } from "../pipelines/metrics.ts";
import type { PipelineStore } from "../pipelines/store.ts";
import { handleLogsUpgrade } from "./ci-logs-ws.ts";
import { type StreamOptions, serveEvents } from "./events-ws.ts";
import { serveLogs } from "./logs-ws.ts";
import type { XrpcRouter } from "./router.ts";

export const MOTD = `****
 ___ ___  _ _  _ ___  _    ___
/ __| _ \\| | \\| |   \\| |  | __|
\\__ \\  _/| | .\` | |) | |__| _|
|___/_|  |_|_|\\_|___/|____|___|   (loom)

This is a spindle server. More info at https://tangled.sh/@tangled.sh/core/tree/master/docs/spindle

Most API routes are under /xrpc/
`;

export interface RouteDeps {
  xrpc: XrpcRouter;
  events: EventLog;
  store: PipelineStore;
  ciPipelines: CiPipelines;
  logDir: string;
  metrics: SpindleMetrics;
  /** What `/metrics` serves: the spindle's registry, merged with the embedded controller's. */
  exposition: Registry;
  /** True when `/metrics` has its own listener (`server.metricsAddr`): the public port hides it. */
  metricsElsewhere: boolean;
  /** The spindle's hostname (did:web) and whether its endpoint is plain http (dev). */
  hostname: string;
  dev: boolean;
  logger: Logger;
  stream: StreamOptions & { pollMs: number };
  motd?: string;
  /** The status page's routes (src/spindle/status): for the operations listener, and the public one. */
  status?: { operations: HttpRoute[]; public: HttpRoute[] };
  /** Readiness: null when ready, else why not (one line, shown to whoever asks). */
  notReady: () => string | null;
}

/** A plain HTTP route: `path` exact, or a pattern. */
export interface HttpRoute {
  path: string | RegExp;
  handle(req: IncomingMessage, res: ServerResponse, url: URL): void | Promise<void>;
}

/** A WebSocket route (GET with `Upgrade`); `accept` upgrades on the shared server. */
export interface UpgradeRoute {
  path: string | RegExp;
  handle(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    url: URL,
    match: RegExpExecArray | null,
    accept: (fn: (ws: WebSocket) => void) => void,
    wss: WebSocketServer,
  ): void;
}

export interface RouteTable {
  /** The public listener. `/xrpc/` + NSID goes to `xrpc`. */
  http: HttpRoute[];
  xrpc: XrpcRouter;
  upgrades: UpgradeRoute[];
  /** The operations listener (`server.metricsAddr`). */
  operations: HttpRoute[];
}

export function text(
  res: ServerResponse,
  status: number,
  body: string,
  type = "text/plain; charset=utf-8",
): void {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

const LOGS_PATH = /^\/logs\/([^/]+)\/([^/]+)\/([^/]+)$/;

export function routeTable(d: RouteDeps): RouteTable {
  const healthz: HttpRoute = { path: "/healthz", handle: (_req, res) => text(res, 200, "ok\n") };
  const readyz: HttpRoute = {
    path: "/readyz",
    handle: (_req, res) => {
      const why = d.notReady();
      return why === null ? text(res, 200, "ready\n") : text(res, 503, `not ready: ${why}\n`);
    },
  };
  const metrics: HttpRoute = {
    path: "/metrics",
    handle: async (_req, res) => text(res, 200, await d.exposition.metrics(), d.exposition.contentType),
  };
  const didDocument: HttpRoute = {
    path: "/.well-known/did.json",
    handle: (req, res) => {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET", "content-type": "text/plain; charset=utf-8" });
        res.end("Method Not Allowed\n");
        return;
      }
      const body = JSON.stringify(spindleDidDocument(d.hostname, { dev: d.dev }));
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(req.method === "HEAD" ? undefined : body);
    },
  };
  return {
    http: [
      { path: "/", handle: (_req, res) => text(res, 200, d.motd ?? MOTD) },
      healthz,
      readyz,
      ...(d.metricsElsewhere ? [] : [metrics]),
      didDocument,
      ...(d.status?.public ?? []),
      {
        path: "/events",
        handle: (_req, res) => text(res, 400, "Bad Request: /events is a WebSocket endpoint\n"),
      },
      {
        path: LOGS_PATH,
        handle: (_req, res) => text(res, 400, "Bad Request: /logs is a WebSocket endpoint\n"),
      },
    ],
    xrpc: d.xrpc,
    upgrades: [
      {
        path: "/events",
        handle: (_req, _socket, _head, url, _m, accept) =>
          accept((ws) =>
            serveEvents(ws, url.searchParams.get("cursor"), {
              events: d.events,
              metrics: d.metrics,
              logger: d.logger,
              opts: d.stream,
            }),
          ),
      },
      {
        path: LOGS_PATH,
        handle: (_req, socket, _head, _url, m, accept) => {
          let parts: string[];
          try {
            parts = [m?.[1], m?.[2], m?.[3]].map((p) => decodeURIComponent(p as string));
          } catch {
            socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
            return;
          }
          const [knot, rkey, workflow] = parts as [string, string, string];
          accept((ws) =>
            serveLogs(ws, knot, rkey, workflow, {
              store: d.store,
              events: d.events,
              logDir: d.logDir,
              metrics: d.metrics,
              logger: d.logger,
              opts: d.stream,
            }),
          );
        },
      },
      {
        path: "/xrpc/sh.tangled.ci.subscribePipelineLogs",
        handle: (req, socket, head, url, _m, _accept, wss) =>
          handleLogsUpgrade(req, socket, head, url, wss, {
            query: d.ciPipelines,
            store: d.store,
            metrics: d.metrics,
            logDir: d.logDir,
            logger: d.logger,
            subscribe: (fn) => d.events.subscribe(fn),
            ...d.stream,
          }),
      },
    ],
    operations: [metrics, healthz, readyz, ...(d.status?.operations ?? [])],
  };
}
