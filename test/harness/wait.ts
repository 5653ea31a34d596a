// Readiness probes: plain HTTP(S) GETs against the components' health endpoints, polled until
// they answer 200 or the component dies (then the error carries its log tail).
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
import type { ManagedProcess } from "./processes.ts";

export interface TlsClient {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  /** For components that serve a self-signed certificate on loopback (KCM, scheduler). */
  readonly insecure?: boolean;
}

export interface HttpResult {
  readonly status: number;
  readonly body: string;
}

export function get(url: string, tls: TlsClient = {}, timeoutMs = 5_000): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const opts = {
      method: "GET",
      timeout: timeoutMs,
      ...(u.protocol === "https:"
        ? { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: !tls.insecure }
        : {}),
    };
    const req = (u.protocol === "https:" ? httpsRequest : httpRequest)(u, opts, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

export class StartupError extends Error {
  override name = "StartupError";
}

/**
 * Polls `probe` until it returns true. Fails early, with the component's log tail, if the
 * component exits; fails after `timeoutMs` with the last probe result.
 */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean | string>,
  opts: { timeoutMs: number; process?: ManagedProcess; intervalMs?: number },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = "no answer yet";
  for (;;) {
    const p = opts.process;
    if (p && !p.running) {
      const exit = p.exitInfo;
      throw new StartupError(
        `${p.name} exited (code ${exit?.code ?? "?"}, signal ${exit?.signal ?? "none"}) while waiting for ${what}; ` +
          `log ${p.logPath}:\n${p.tail()}`,
      );
    }
    try {
      const r = await probe();
      if (r === true) return;
      if (typeof r === "string") last = r;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      const tail = p ? `\nlog ${p.logPath}:\n${p.tail()}` : "";
      throw new StartupError(
        `timed out after ${opts.timeoutMs} ms waiting for ${what} (last: ${last})${tail}`,
      );
    }
    await sleep(opts.intervalMs ?? 100);
  }
}

/** A probe that is satisfied by HTTP 200 from `url`. */
export function http200(url: string, tls: TlsClient = {}): () => Promise<boolean | string> {
  return async () => {
    const r = await get(url, tls);
    return r.status === 200 || `HTTP ${r.status}: ${r.body.slice(0, 300)}`;
  };
}
