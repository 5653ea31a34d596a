/**
 * Value parsers of the settings table: each accepts an environment string or the YAML scalar
 * types and returns the typed value, or throws `Expected` with what was wanted (the loader turns
 * it into a ConfigError naming where the value came from).
 */
import { isValidDid } from "@atproto/syntax";
import { z } from "zod";

export type Parser<T> = (raw: unknown) => T;

/** Thrown by parsers; turned into a ConfigError naming where the value came from. */
export class Expected extends Error {}

export const text =
  (what: string): Parser<string> =>
  (raw) => {
    const r = z.union([z.string(), z.number()]).safeParse(raw);
    const s = r.success ? String(r.data).trim() : "";
    if (s === "") throw new Expected(`expected ${what}`);
    return s;
  };

export const integer =
  (min: number, max: number): Parser<number> =>
  (raw) => {
    const s = typeof raw === "number" ? String(raw) : typeof raw === "string" ? raw.trim() : "";
    const r = z.coerce.number().int().min(min).max(max).safeParse(s);
    if (!/^[0-9]+$/.test(s) || !r.success) {
      throw new Expected(`expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
    }
    return r.data;
  };

// Go's strconv.ParseBool, which upstream's envconfig uses.
export const boolean: Parser<boolean> = (raw) => {
  if (typeof raw === "boolean") return raw;
  const s = typeof raw === "string" ? raw.trim() : "";
  if (["1", "t", "T", "true", "TRUE", "True"].includes(s)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(s)) return false;
  throw new Expected(`expected true or false, got ${JSON.stringify(raw)}`);
};

export const oneOf =
  <T extends string>(values: readonly T[]): Parser<T> =>
  (raw) => {
    const s = typeof raw === "string" ? raw.trim() : raw;
    const r = z.enum(values as [T, ...T[]]).safeParse(s);
    if (!r.success) throw new Expected(`expected one of ${values.join(", ")}, got ${JSON.stringify(raw)}`);
    return r.data;
  };

export const url =
  (protocols: readonly string[]): Parser<string> =>
  (raw) => {
    const s = text("a URL")(raw);
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new Expected(`expected a ${protocols.join("/")} URL, got ${JSON.stringify(s)}`);
    }
    if (!protocols.includes(u.protocol.slice(0, -1))) {
      throw new Expected(`expected a ${protocols.join("/")} URL, got ${JSON.stringify(s)}`);
    }
    return s;
  };

export const did: Parser<string> = (raw) => {
  const s = text("a DID (did:plc:… or did:web:…)")(raw);
  if (!isValidDid(s)) throw new Expected(`expected a DID (did:plc:… or did:web:…), got ${JSON.stringify(s)}`);
  return s;
};

// A DNS name or IPv4 address with an optional port: what follows `did:web:` unencoded.
const HOSTNAME_RE =
  /^(?=.{1,253}(?::|$))[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*(:[0-9]{1,5})?$/;
export const hostname: Parser<string> = (raw) => {
  const s = text("a host name such as spindle.example.com or localhost:6555")(raw);
  if (!HOSTNAME_RE.test(s)) {
    throw new Expected(
      `expected a bare host name with optional :port (no scheme or path), got ${JSON.stringify(s)}`,
    );
  }
  return s;
};

export const listenAddr: Parser<{ host: string; port: number }> = (raw) => {
  const s = text("host:port")(raw);
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]*):([0-9]{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port > 65535)
    throw new Expected(`expected host:port such as 0.0.0.0:6555, got ${JSON.stringify(s)}`);
  const host = (m[1] ?? "").replace(/^\[|\]$/g, "");
  return { host: host === "" ? "0.0.0.0" : host, port };
};

const GO_DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Go's time.ParseDuration syntax (`5m`, `1h30m`, `1.5h`, `300ms`), in milliseconds; > 0. */
export function parseGoDuration(s: string): number {
  const src = s.trim();
  const re = /([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < src.length) {
    re.lastIndex = pos;
    const m = re.exec(src);
    if (!m || m[1] === "" || m[1] === ".")
      throw new Expected(`expected a Go duration such as 5m or 1h30m, got ${JSON.stringify(s)}`);
    total += Number(m[1]) * (GO_DURATION_UNITS[m[2] as string] as number);
    pos = re.lastIndex;
  }
  if (src === "" || !(total > 0))
    throw new Expected(`expected a positive Go duration such as 5m or 1h30m, got ${JSON.stringify(s)}`);
  return Math.round(total);
}

export const duration: Parser<number> = (raw) => parseGoDuration(text("a Go duration such as 5m")(raw));

const HOUR_MS = 3_600_000;
/** `0` (keep forever) or a Go duration of at least an hour (`720h` is 30 days). */
export const retention: Parser<number> = (raw) => {
  const s = text("0 or a Go duration such as 720h")(raw);
  if (s.trim() === "0") return 0;
  const ms = parseGoDuration(s);
  if (ms < HOUR_MS) throw new Expected(`expected 0 (keep forever) or at least 1h, got ${JSON.stringify(s)}`);
  return ms;
};
