/**
 * The one XRPC router. A method is data (`XrpcMethod`): its kind (query = GET, procedure =
 * POST), whether it needs service auth, its parameter/input/output validators and a handler
 * from `(params, input, actor)` to an output. The router, for every method alike:
 *
 *   method known? (404) → HTTP method (405) → service auth (the caller's DID) → params →
 *   body (procedures: a JSON object) → input → handler → output validator → the answer, written
 *   once: an object as JSON, `raw(text)` as already-encoded JSON, `undefined` as an empty 200.
 *
 * Every thrown value goes through `toXrpcErrorResponse` (errors.ts): domain errors become XRPC
 * errors in one table there; anything unknown is a 500 that leaks nothing.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { ServiceJwtVerifier } from "../auth/index.ts";
import { bearerToken } from "../auth/index.ts";
import { missingActorDidError, toXrpcErrorResponse } from "../errors.ts";
import type { SpindleMetrics } from "../pipelines/metrics.ts";
import { readJsonObject } from "./body.ts";

/** JSON text written as is (a body that was encoded, and validated, once before). */
export interface RawJson {
  readonly raw: string;
}

export const raw = (text: string): RawJson => ({ raw: text });

export type XrpcOutput = object | RawJson | undefined;

export interface XrpcCall<P, I> {
  params: P;
  input: I;
  /** The authenticated caller's DID; "" for methods without auth. */
  actor: string;
}

export interface XrpcMethod<P = unknown, I = unknown, O extends XrpcOutput = XrpcOutput> {
  type: "query" | "procedure";
  /** Service auth (a JWT whose `lxm` is this method and whose `aud` is this spindle). */
  auth: boolean;
  /** The query string → params; throws a domain or XRPC error for bad ones. */
  params?: (query: URLSearchParams) => P;
  /** The JSON object body of a procedure → input. */
  input?: (body: Record<string, unknown>) => I;
  /** Checks (and may normalise) an object output before it is written. */
  output?: (output: O) => O;
  handler(call: XrpcCall<P, I>): Promise<O>;
}

/** A method table: NSID → method. `define` keeps each entry's types while the table is one type. */
export type XrpcMethods = Record<string, XrpcMethod<never, never>>;

export function define<P, I, O extends XrpcOutput>(m: XrpcMethod<P, I, O>): XrpcMethod<never, never> {
  return m as unknown as XrpcMethod<never, never>;
}

export interface XrpcRouterDeps {
  methods: XrpcMethods;
  verifier: ServiceJwtVerifier;
  audiences: readonly string[];
  metrics: SpindleMetrics;
  logger: Logger;
}

function text(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    ...headers,
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

function json(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

export class XrpcRouter {
  readonly #d: XrpcRouterDeps;

  constructor(d: XrpcRouterDeps) {
    this.#d = d;
  }

  /** The NSIDs served (the route table lists them). */
  get nsids(): string[] {
    return Object.keys(this.#d.methods).sort();
  }

  /** Answers `/xrpc/<nsid>`. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL, nsid: string): Promise<void> {
    const method = (this.#d.methods as Record<string, XrpcMethod | undefined>)[nsid];
    if (!method) return text(res, 404, "404 page not found\n");
    const http = method.type === "query" ? "GET" : "POST";
    if (req.method !== http) return text(res, 405, "Method Not Allowed\n", { allow: http });
    const started = performance.now();
    let status = 200;
    try {
      const out = await this.#call(method, req, url, nsid);
      if (out === undefined) {
        res.writeHead(200, { "content-length": 0 });
        res.end();
      } else if ("raw" in out && typeof out.raw === "string") {
        json(res, 200, out.raw);
      } else {
        json(res, 200, JSON.stringify(method.output ? method.output(out) : out));
      }
    } catch (err) {
      const answer = toXrpcErrorResponse(err);
      status = answer.status;
      if (answer.internal) this.#d.logger.error({ method: nsid, err }, "xrpc method failed");
      else this.#d.logger.info({ method: nsid, status, error: answer.body.error }, "xrpc request refused");
      if (!res.headersSent) json(res, status, JSON.stringify(answer.body));
    } finally {
      this.#d.metrics.xrpc.inc({ method: nsid, status: String(status) });
      this.#d.metrics.xrpcSeconds.observe({ method: nsid }, (performance.now() - started) / 1000);
    }
  }

  async #call(method: XrpcMethod, req: IncomingMessage, url: URL, nsid: string): Promise<XrpcOutput> {
    let actor = "";
    if (method.auth) {
      const auth = await this.#d.verifier.verify(bearerToken(req.headers.authorization), {
        audiences: this.#d.audiences,
        method: nsid,
      });
      if (!auth.iss) throw missingActorDidError();
      actor = auth.iss;
    }
    const params = method.params ? method.params(url.searchParams) : undefined;
    let input: unknown;
    if (method.type === "procedure") {
      const body = await readJsonObject(req);
      input = method.input ? method.input(body) : body;
    }
    return method.handler({ params, input, actor });
  }
}
