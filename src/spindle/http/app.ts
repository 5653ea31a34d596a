/**
 * The spindle's HTTP surface (spec §3): dispatches the one route table (routes.ts) — plain
 * routes, `/xrpc/*` through the XRPC router, and the WebSocket upgrades on one shared server.
 * Unknown paths answer 404 and wrong methods 405 in plain text, as upstream's router does.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { WebSocketServer } from "ws";
import { type HttpRoute, type RouteTable, text, type UpgradeRoute } from "./routes.ts";

function find<R extends { path: string | RegExp }>(
  routes: readonly R[],
  path: string,
): { route: R; match: RegExpExecArray | null } | null {
  for (const route of routes) {
    if (typeof route.path === "string") {
      if (route.path === path) return { route, match: null };
    } else {
      const match = route.path.exec(path);
      if (match) return { route, match };
    }
  }
  return null;
}

export class SpindleApp {
  readonly #routes: RouteTable;
  readonly #logger: Logger;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false });

  constructor(routes: RouteTable, logger: Logger) {
    this.#routes = routes;
    this.#logger = logger;
  }

  /** All open WebSocket connections (for shutdown). */
  get clients(): Set<import("ws").WebSocket> {
    return this.#wss.clients;
  }

  onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    void this.#request(req, res).catch((err: Error) => {
      this.#logger.error({ err }, "request handler failed");
      if (!res.headersSent) text(res, 500, "Internal Server Error\n");
      else res.destroy();
    });
  };

  async #request(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://spindle.invalid");
    const path = url.pathname;
    if (path.startsWith("/xrpc/")) return this.#routes.xrpc.handle(req, res, url, path.slice(6));
    return this.#serve(this.#routes.http, req, res, url);
  }

  /**
   * The operations listener (`server.metricsAddr`): `/metrics`, `/healthz` and `/readyz` only,
   * on a port that is not published to the internet.
   */
  onOperationsRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? "/", "http://spindle.invalid");
    void this.#serve(this.#routes.operations, req, res, url).catch((err: Error) => {
      this.#logger.error({ err }, "metrics request failed");
      if (!res.headersSent) text(res, 500, "Internal Server Error\n");
    });
  };

  async #serve(
    routes: readonly HttpRoute[],
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
  ): Promise<void> {
    const hit = find(routes, url.pathname);
    if (!hit) return text(res, 404, "404 page not found\n");
    await hit.route.handle(req, res, url);
  }

  onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on("error", () => {});
    const url = new URL(req.url ?? "/", "http://spindle.invalid");
    const reject = (status: number, reason: string) => {
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (req.method !== "GET") {
      reject(405, "Method Not Allowed");
      return;
    }
    const hit = find<UpgradeRoute>(this.#routes.upgrades, url.pathname);
    if (!hit) {
      reject(404, "Not Found");
      return;
    }
    hit.route.handle(
      req,
      socket,
      head,
      url,
      hit.match,
      (fn) => this.#wss.handleUpgrade(req, socket, head, fn),
      this.#wss,
    );
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
