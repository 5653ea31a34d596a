/**
 * An HTTP(S) client for URLs that come from other people's records (a pull author's PDS, a
 * knot host): gen2 §2.5 says upstream fetches patch blobs through an SSRF-guarded client.
 *
 * The guard is applied to the address actually connected to: the host name is resolved once, a
 * forbidden address (loopback, private, link-local, unique-local, CGNAT, multicast, reserved,
 * documentation, IPv4-mapped/NAT64 IPv6…) fails the request, and the connection is pinned to the
 * checked address through `http.request`'s `lookup` hook, so a second DNS answer cannot swap in
 * an internal one (DNS rebinding). Redirects are followed only a few times, each re-checked.
 * Bodies are capped; the whole exchange has a deadline.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { request as httpRequest, type IncomingHttpHeaders, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import { BlockList, isIP, type LookupFunction } from "node:net";

export type GuardedFetchErrorCode =
  | "InvalidUrl"
  | "ForbiddenAddress"
  | "DnsFailed"
  | "ConnectFailed"
  | "Timeout"
  | "TooLarge"
  | "TooManyRedirects";

export class GuardedFetchError extends Error {
  override readonly name = "GuardedFetchError";
  readonly code: GuardedFetchErrorCode;
  constructor(code: GuardedFetchErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

export interface GuardedFetchOptions {
  /** Allow loopback/private targets (dev stacks and tests only). Default false. */
  allowPrivate?: boolean;
  /** Whole exchange, redirects included. Default 15 s. */
  timeoutMs?: number;
  /** Response body cap. Default 10 MiB. */
  maxBytes?: number;
  /** Non-public addresses allowed anyway (e.g. one known in-cluster PDS); exact match. */
  allowAddresses?: readonly string[];
  /** Default 3. */
  maxRedirects?: number;
  headers?: Record<string, string>;
  /** For tests: resolve names differently (e.g. a name that maps to 127.0.0.1). */
  resolve?: (host: string) => Promise<LookupAddress[]>;
}

export interface GuardedResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The URL that answered (after redirects). */
  url: string;
}

// Two lists: Node's BlockList matches IPv4 addresses against IPv4-mapped IPv6 rules, so a
// `::ffff:0:0/96` rule in a shared list would refuse every IPv4 address.
const FORBIDDEN_V4 = new BlockList();
const FORBIDDEN_V6 = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local, cloud metadata
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.88.99.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
] as const) {
  FORBIDDEN_V4.addSubnet(net, prefix, "ipv4");
}
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["::ffff:0:0", 96], // IPv4-mapped: refused outright rather than unwrapped
  ["::", 96], // IPv4-compatible (deprecated)
  ["64:ff9b::", 96], // NAT64 can reach any IPv4, private ones included
  ["64:ff9b:1::", 48],
  ["100::", 64], // discard
  ["2001::", 23], // IETF protocol assignments (Teredo, ORCHID…)
  ["2001:db8::", 32], // documentation
  ["2002::", 16], // 6to4 wraps arbitrary IPv4
  ["fc00::", 7], // unique-local
  ["fe80::", 10], // link-local
  ["fec0::", 10], // site-local (deprecated)
  ["ff00::", 8], // multicast
] as const) {
  FORBIDDEN_V6.addSubnet(net, prefix, "ipv6");
}

/** True when connecting to this literal address could reach something internal. */
export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  return family === 4 ? FORBIDDEN_V4.check(address, "ipv4") : FORBIDDEN_V6.check(address, "ipv6");
}

const defaultResolve = (host: string): Promise<LookupAddress[]> =>
  new Promise((resolve, reject) => {
    dnsLookup(host, { all: true, verbatim: true }, (err, addresses) =>
      err ? reject(err) : resolve(addresses),
    );
  });

export async function guardedFetch(
  url: string | URL,
  opts: GuardedFetchOptions = {},
): Promise<GuardedResponse> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  let current = parseUrl(url);
  for (let hop = 0; ; hop++) {
    const res = await requestOnce(current, opts, deadline, timeoutMs);
    const location = res.headers.location;
    if (res.status >= 300 && res.status < 400 && res.status !== 304 && location !== undefined) {
      if (hop >= (opts.maxRedirects ?? 3)) {
        throw new GuardedFetchError(
          "TooManyRedirects",
          `more than ${opts.maxRedirects ?? 3} redirects from ${String(url)}`,
        );
      }
      current = parseUrl(new URL(location, current));
      continue;
    }
    return res;
  }
}

function parseUrl(url: string | URL): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch (err) {
    throw new GuardedFetchError("InvalidUrl", `not a URL: ${JSON.stringify(String(url))}`, { cause: err });
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") {
    throw new GuardedFetchError("InvalidUrl", `only http(s) URLs are fetched, not ${u.protocol}`);
  }
  if (u.username !== "" || u.password !== "")
    throw new GuardedFetchError("InvalidUrl", "URLs with credentials are refused");
  return u;
}

/** Resolves and checks the host; returns the one address to connect to. */
async function pickAddress(u: URL, opts: GuardedFetchOptions): Promise<LookupAddress> {
  return checkedAddress(u.hostname, opts);
}

/**
 * Resolves `hostname` once and applies the guard: the address to connect to, or a
 * GuardedFetchError (`DnsFailed`, `ForbiddenAddress`). For clients other than guardedFetch
 * (e.g. git, pinned with `http.curloptResolve`).
 */
export async function checkedAddress(
  hostname: string,
  opts: Pick<GuardedFetchOptions, "allowPrivate" | "allowAddresses" | "resolve"> = {},
): Promise<LookupAddress> {
  const host = hostname.replace(/^\[|\]$/g, "");
  let addresses: LookupAddress[];
  const literal = isIP(host);
  if (literal !== 0) {
    addresses = [{ address: host, family: literal }];
  } else {
    try {
      addresses = await (opts.resolve ?? defaultResolve)(host);
    } catch (err) {
      throw new GuardedFetchError("DnsFailed", `cannot resolve ${host}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  if (addresses.length === 0) throw new GuardedFetchError("DnsFailed", `${host} has no addresses`);
  if (opts.allowPrivate === true) return addresses[0] as LookupAddress;
  // Any forbidden answer refuses the host: a name that mixes public and internal addresses is
  // not one we want to talk to, and picking "the public one" invites games.
  const allowed = opts.allowAddresses ?? [];
  const bad = addresses.find((a) => isForbiddenAddress(a.address) && !allowed.includes(a.address));
  if (bad !== undefined) {
    throw new GuardedFetchError(
      "ForbiddenAddress",
      `${host} resolves to ${bad.address}, a non-public address`,
    );
  }
  return addresses[0] as LookupAddress;
}

/**
 * A `lookup` hook for `http.request` (and clients built on it, e.g. `ws`): whatever name Node asks
 * about, it gets the address checkedAddress vetted, so a second DNS answer cannot swap in an
 * internal one (DNS rebinding).
 */
export function pinnedLookup(picked: LookupAddress): LookupFunction {
  return (_host, options, cb) => {
    if ((options as { all?: boolean }).all === true) {
      (cb as unknown as (e: null, a: LookupAddress[]) => void)(null, [picked]);
    } else {
      cb(null, picked.address, picked.family);
    }
  };
}

async function requestOnce(
  u: URL,
  opts: GuardedFetchOptions,
  deadline: number,
  timeoutMs: number,
): Promise<GuardedResponse> {
  const picked = await pickAddress(u, opts);
  const remaining = deadline - Date.now();
  if (remaining <= 0)
    throw new GuardedFetchError("Timeout", `no answer from ${u.origin} within ${timeoutMs} ms`);
  const maxBytes = opts.maxBytes ?? 10 * 1024 * 1024;
  const lookup = pinnedLookup(picked);
  const reqOpts: RequestOptions = {
    method: "GET",
    headers: { "user-agent": "loom-spindle", ...opts.headers },
    lookup,
    agent: false,
  };
  const send = u.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(u, reqOpts, (res) => {
      const declared = Number(res.headers["content-length"]);
      if (Number.isFinite(declared) && declared > maxBytes) {
        req.destroy();
        reject(
          new GuardedFetchError(
            "TooLarge",
            `${u.origin} answered ${declared} bytes; the limit is ${maxBytes}`,
          ),
        );
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.byteLength;
        if (size > maxBytes) {
          req.destroy();
          reject(new GuardedFetchError("TooLarge", `${u.origin} sent more than ${maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on("end", () => {
        clearTimeout(timer);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
          url: u.toString(),
        });
      });
      res.on("error", (err) => {
        clearTimeout(timer);
        reject(
          new GuardedFetchError("ConnectFailed", `reading from ${u.origin}: ${err.message}`, { cause: err }),
        );
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new GuardedFetchError("Timeout", `no answer from ${u.origin} within ${timeoutMs} ms`));
    }, remaining);
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(
        new GuardedFetchError("ConnectFailed", `connecting to ${u.origin}: ${err.message}`, { cause: err }),
      );
    });
    req.end();
  });
}

/**
 * `guardedFetch` behind the `fetch` signature, for clients that take one (e.g. the intake's
 * XrpcClient reading a pull record from its author's PDS). GET only; the request's own signal
 * and redirect mode are replaced by the guard's deadline and re-checked redirects.
 */
export function guardedFetchFunction(opts: GuardedFetchOptions = {}): typeof fetch {
  return async (input, init) => {
    const method = init?.method ?? (input instanceof Request ? input.method : "GET");
    if (method !== "GET") throw new GuardedFetchError("InvalidUrl", `only GET is supported, not ${method}`);
    const url = input instanceof Request ? input.url : input;
    const res = await guardedFetch(url, opts);
    const headers = new Headers();
    for (const [k, v] of Object.entries(res.headers)) {
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one);
    }
    const empty = res.status === 204 || res.status === 304;
    return new Response(empty ? null : new Uint8Array(res.body), { status: res.status, headers });
  };
}
