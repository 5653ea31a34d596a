/**
 * A small XRPC query client for reading other people's PDSes (`com.atproto.repo.getRecord`,
 * `listRecords`). Those servers are not ours, so every call has a deadline (default 5 s, covering
 * headers and body) and a response-size cap (default 1 MiB), and every failure is an `XrpcClientError`
 * with a stable `reason` the caller can log.
 */

export type XrpcFailure = "timeout" | "network" | "too-large" | "http-status" | "bad-json" | "bad-url";

export class XrpcClientError extends Error {
  override readonly name = "XrpcClientError";
  readonly reason: XrpcFailure;
  /** HTTP status when the server answered, else null. */
  readonly status: number | null;
  /** The XRPC `error` field of an error body (e.g. `RecordNotFound`), when there was one. */
  readonly xrpcError: string | null;
  constructor(
    reason: XrpcFailure,
    message: string,
    extra: { status?: number; xrpcError?: string | null; cause?: unknown } = {},
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.reason = reason;
    this.status = extra.status ?? null;
    this.xrpcError = extra.xrpcError ?? null;
  }
}

export interface XrpcClientOptions {
  timeoutMs?: number;
  maxResponseBytes?: number;
  fetch?: typeof fetch;
}

export class XrpcClient {
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #fetch: typeof fetch;

  constructor(opts: XrpcClientOptions = {}) {
    this.#timeoutMs = opts.timeoutMs ?? 5000;
    this.#maxBytes = opts.maxResponseBytes ?? 1024 * 1024;
    this.#fetch = opts.fetch ?? fetch;
  }

  /** `GET <service>/xrpc/<nsid>?<params>`; resolves to the parsed JSON body of a 200 answer. */
  async query(service: string, nsid: string, params: Record<string, string | number>): Promise<unknown> {
    let url: URL;
    try {
      url = new URL(`/xrpc/${nsid}`, service);
    } catch (err) {
      throw new XrpcClientError("bad-url", `invalid service endpoint ${JSON.stringify(service)}`, {
        cause: err,
      });
    }
    if (url.protocol !== "https:" && url.protocol !== "http:")
      throw new XrpcClientError("bad-url", `service endpoint is not http(s): ${JSON.stringify(service)}`);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, String(v));

    const signal = AbortSignal.timeout(this.#timeoutMs);
    let text: string;
    let status: number;
    try {
      const res = await this.#fetch(url, {
        headers: { accept: "application/json" },
        redirect: "error",
        signal,
      });
      status = res.status;
      text = await readCapped(res, this.#maxBytes);
    } catch (err) {
      if (err instanceof XrpcClientError) throw err;
      if (signal.aborted)
        throw new XrpcClientError(
          "timeout",
          `${nsid} at ${url.origin} took longer than ${this.#timeoutMs} ms`,
          {
            cause: err,
          },
        );
      throw new XrpcClientError("network", `${nsid} at ${url.origin} failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      if (status === 200)
        throw new XrpcClientError("bad-json", `${nsid} at ${url.origin} answered invalid JSON`, {
          status,
          cause: err,
        });
      body = null;
    }
    if (status !== 200) {
      const xrpcError =
        body !== null && typeof body === "object" && typeof (body as { error?: unknown }).error === "string"
          ? (body as { error: string }).error
          : null;
      throw new XrpcClientError(
        "http-status",
        `${nsid} at ${url.origin} answered ${status}${xrpcError ? ` ${xrpcError}` : ""}`,
        {
          status,
          xrpcError,
        },
      );
    }
    return body;
  }
}

async function readCapped(res: Response, maxBytes: number): Promise<string> {
  const declared = Number(res.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel();
    throw new XrpcClientError("too-large", `response of ${declared} bytes exceeds the ${maxBytes}-byte cap`);
  }
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new XrpcClientError("too-large", `response exceeds the ${maxBytes}-byte cap`);
    }
    chunks.push(value);
  }
  // fatal: a PDS answering invalid UTF-8 is a broken PDS, not text to guess at.
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks));
  } catch (err) {
    throw new XrpcClientError("bad-json", "response is not valid UTF-8", { status: res.status, cause: err });
  }
}
