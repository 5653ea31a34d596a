/**
 * Spindle configuration, read once at start-up (style: "Config read once").
 *
 * Sources, highest precedence first:
 *   1. environment variables — every `SPINDLE_SERVER_*` / `SPINDLE_NIXERY_*` name of spec §6.4,
 *      plus Loom's own (`SPINDLE_SERVER_SECRETS_KEY[_FILE]`, `SPINDLE_SERVER_ENGINE`,
 *      `SPINDLE_SERVER_REPO_DIR`, `SPINDLE_SERVER_SECRETS_OPENBAO_TOKEN_FILE`, `LOOM_CONFIG`);
 *   2. Loom's YAML config file (`LOOM_CONFIG`, default `/etc/loom/config.yaml`), whose keys are
 *      listed in `FIELDS` below (e.g. `server.hostname`, `secrets.provider`, `engine`);
 *   3. the defaults of §6.4.
 * An empty environment value counts as unset (as upstream's `SECRETS_PROVIDER=""` = sqlite).
 *
 * `loadConfig` never touches `process.env`: the CLI entry passes the environment in. Every
 * problem throws one `ConfigError` naming the variable (or file key) and what was expected.
 * The result is deeply frozen.
 *
 * Deliberately stricter than upstream (documented so nobody "fixes" it back):
 * - an invalid workflow timeout stops start-up instead of silently becoming 5m;
 * - the sqlite secrets provider needs an AES-256 key (values are encrypted at rest).
 */
import { readFileSync } from "node:fs";
import { isValidDid } from "@atproto/syntax";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { ConfigError } from "./errors.ts";

export { ConfigError } from "./errors.ts";

export type SecretsProviderName = "sqlite" | "openbao";
export type EngineName = "local" | "kubernetes";

export interface Config {
  /** Absolute or cwd-relative path of the config file that was read, or null if none was. */
  readonly configFile: string | null;
  readonly server: {
    /** `SPINDLE_SERVER_LISTEN_ADDR` split into host and port. */
    readonly listen: { readonly host: string; readonly port: number };
    /**
     * Where `/metrics` (with `/healthz` and `/readyz`) is served instead of the public port;
     * null serves it on the public port.
     */
    readonly metricsListen: { readonly host: string; readonly port: number } | null;
    readonly dbPath: string;
    /** `host[:port]`, as compared with `sh.tangled.repo.spindle` and `spindle.member.instance`. */
    readonly hostname: string;
    /** `did:web:<hostname>` unencoded (Gen1 §1.1). `auth/audience.ts` derives the other forms. */
    readonly did: string;
    readonly owner: string;
    readonly jetstreamEndpoint: string;
    readonly plcUrl: string;
    /** ws/http instead of wss/https towards knots and did:web, `localhost` clone-URL rewriting. */
    readonly dev: boolean;
    readonly logDir: string;
    /** Workflow log files older than this are removed; 0 keeps them forever. */
    readonly logRetentionMs: number;
    readonly queueSize: number;
    readonly maxJobCount: number;
    /** Gen2: where sparse clones of repos live. */
    readonly repoDir: string;
  };
  readonly secrets: {
    readonly provider: SecretsProviderName;
    /** AES-256 key for the sqlite provider (32 bytes); null when the provider is openbao. */
    readonly key: Uint8Array | null;
    readonly openbao: {
      readonly proxyAddr: string;
      readonly mount: string;
      /** Token sent as `X-Vault-Token`; null when the proxy injects its auto-auth token. */
      readonly token: string | null;
    };
  };
  readonly nixery: {
    readonly registry: string;
    /** `SPINDLE_NIXERY_PIPELINES_WORKFLOW_TIMEOUT` in milliseconds. */
    readonly workflowTimeoutMs: number;
  };
  readonly engine: EngineName;
  /** The config file's `kubernetes` section, untouched (validated by the Kubernetes engine). */
  readonly kubernetes: unknown;
}

export const DEFAULT_CONFIG_PATH = "/etc/loom/config.yaml";

export interface LoadConfigOptions {
  /** Where the config file is looked for when `LOOM_CONFIG` is unset (tests point elsewhere). */
  defaultConfigPath?: string;
  /**
   * Values by environment name that sit under the environment AND the config file, above the
   * built-in defaults: `loom serve --dev`'s defaults (`devDefaults`), so a config file still wins.
   */
  fallbacks?: Readonly<Record<string, string>>;
}

type Env = Readonly<Record<string, string | undefined>>;
type Parser<T> = (raw: unknown) => T;

/** Thrown by parsers; turned into a ConfigError naming where the value came from. */
class Expected extends Error {}

// --- value parsers: accept env strings and the YAML scalar types ---------------------------

const text =
  (what: string): Parser<string> =>
  (raw) => {
    const r = z.union([z.string(), z.number()]).safeParse(raw);
    const s = r.success ? String(r.data).trim() : "";
    if (s === "") throw new Expected(`expected ${what}`);
    return s;
  };

const integer =
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
const boolean: Parser<boolean> = (raw) => {
  if (typeof raw === "boolean") return raw;
  const s = typeof raw === "string" ? raw.trim() : "";
  if (["1", "t", "T", "true", "TRUE", "True"].includes(s)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(s)) return false;
  throw new Expected(`expected true or false, got ${JSON.stringify(raw)}`);
};

const oneOf =
  <T extends string>(values: readonly T[]): Parser<T> =>
  (raw) => {
    const s = typeof raw === "string" ? raw.trim() : raw;
    const r = z.enum(values as [T, ...T[]]).safeParse(s);
    if (!r.success) throw new Expected(`expected one of ${values.join(", ")}, got ${JSON.stringify(raw)}`);
    return r.data;
  };

const url =
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

const did: Parser<string> = (raw) => {
  const s = text("a DID (did:plc:… or did:web:…)")(raw);
  if (!isValidDid(s)) throw new Expected(`expected a DID (did:plc:… or did:web:…), got ${JSON.stringify(s)}`);
  return s;
};

// A DNS name or IPv4 address with an optional port: what follows `did:web:` unencoded.
const HOSTNAME_RE =
  /^(?=.{1,253}(?::|$))[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*(:[0-9]{1,5})?$/;
const hostname: Parser<string> = (raw) => {
  const s = text("a host name such as spindle.example.com or localhost:6555")(raw);
  if (!HOSTNAME_RE.test(s)) {
    throw new Expected(
      `expected a bare host name with optional :port (no scheme or path), got ${JSON.stringify(s)}`,
    );
  }
  return s;
};

const listenAddr: Parser<{ host: string; port: number }> = (raw) => {
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

const duration: Parser<number> = (raw) => parseGoDuration(text("a Go duration such as 5m")(raw));

const HOUR_MS = 3_600_000;
/** `0` (keep forever) or a Go duration of at least an hour (`720h` is 30 days). */
const retention: Parser<number> = (raw) => {
  const s = text("0 or a Go duration such as 720h")(raw);
  if (s.trim() === "0") return 0;
  const ms = parseGoDuration(s);
  if (ms < HOUR_MS) throw new Expected(`expected 0 (keep forever) or at least 1h, got ${JSON.stringify(s)}`);
  return ms;
};

// --- the settings table --------------------------------------------------------------------

interface Field<T> {
  env: string;
  /** Dotted key in the config file, or null when the setting is environment-only. */
  file: string | null;
  default?: string;
  parse: Parser<T>;
}

const f = <T>(env: string, file: string | null, parse: Parser<T>, def?: string): Field<T> =>
  def === undefined ? { env, file, parse } : { env, file, parse, default: def };

/** Every setting: environment name, config-file key, §6.4 default, parser. */
export const FIELDS = {
  listen: f("SPINDLE_SERVER_LISTEN_ADDR", "server.listenAddr", listenAddr, "0.0.0.0:6555"),
  metricsListen: f("SPINDLE_SERVER_METRICS_ADDR", "server.metricsAddr", listenAddr),
  dbPath: f("SPINDLE_SERVER_DB_PATH", "server.dbPath", text("a file path"), "spindle.db"),
  hostname: f("SPINDLE_SERVER_HOSTNAME", "server.hostname", hostname),
  owner: f("SPINDLE_SERVER_OWNER", "server.owner", did),
  jetstreamEndpoint: f(
    "SPINDLE_SERVER_JETSTREAM_ENDPOINT",
    "server.jetstreamEndpoint",
    url(["ws", "wss"]),
    "wss://jetstream1.us-west.bsky.network/subscribe",
  ),
  plcUrl: f("SPINDLE_SERVER_PLC_URL", "server.plcUrl", url(["http", "https"]), "https://plc.directory"),
  dev: f("SPINDLE_SERVER_DEV", "server.dev", boolean, "false"),
  logDir: f("SPINDLE_SERVER_LOG_DIR", "server.logDir", text("a directory path"), "/var/log/spindle"),
  logRetention: f("SPINDLE_SERVER_LOG_RETENTION", "server.logRetention", retention, "0"),
  queueSize: f("SPINDLE_SERVER_QUEUE_SIZE", "server.queueSize", integer(1, 1_000_000), "100"),
  maxJobCount: f("SPINDLE_SERVER_MAX_JOB_COUNT", "server.maxJobCount", integer(1, 10_000), "2"),
  repoDir: f("SPINDLE_SERVER_REPO_DIR", "server.repoDir", text("a directory path"), "repos"),
  secretsProvider: f(
    "SPINDLE_SERVER_SECRETS_PROVIDER",
    "secrets.provider",
    oneOf(["sqlite", "openbao"] as const),
    "sqlite",
  ),
  // Environment-only on purpose: key material does not belong in a world-readable YAML file.
  secretsKey: f("SPINDLE_SERVER_SECRETS_KEY", null, text("a 32-byte key in base64 or hex")),
  secretsKeyFile: f("SPINDLE_SERVER_SECRETS_KEY_FILE", "secrets.keyFile", text("a file path")),
  openbaoProxyAddr: f(
    "SPINDLE_SERVER_SECRETS_OPENBAO_PROXY_ADDR",
    "secrets.openbao.proxyAddr",
    url(["http", "https"]),
    "http://127.0.0.1:8200",
  ),
  openbaoMount: f(
    "SPINDLE_SERVER_SECRETS_OPENBAO_MOUNT",
    "secrets.openbao.mount",
    text("a mount name"),
    "spindle",
  ),
  openbaoTokenFile: f(
    "SPINDLE_SERVER_SECRETS_OPENBAO_TOKEN_FILE",
    "secrets.openbao.tokenFile",
    text("a file path"),
  ),
  nixery: f(
    "SPINDLE_NIXERY_PIPELINES_NIXERY",
    "nixery.registry",
    text("a registry host"),
    "nixery.tangled.sh",
  ),
  workflowTimeout: f("SPINDLE_NIXERY_PIPELINES_WORKFLOW_TIMEOUT", "nixery.workflowTimeout", duration, "5m"),
  engine: f("SPINDLE_SERVER_ENGINE", "engine", oneOf(["local", "kubernetes"] as const), "kubernetes"),
} as const;

// The file's shape: known sections are objects, unknown top-level keys are refused so typos
// surface at start-up. Values themselves are checked by the field parsers above.
const fileSchema = z
  .object({
    server: z.record(z.string(), z.unknown()).optional(),
    secrets: z.record(z.string(), z.unknown()).optional(),
    nixery: z.record(z.string(), z.unknown()).optional(),
    engine: z.unknown().optional(),
    kubernetes: z.unknown().optional(),
  })
  .strict();

const KNOWN_FILE_KEYS = new Set(
  Object.values(FIELDS)
    .map((x) => x.file)
    .filter((x): x is string => x !== null),
);

function lookup(obj: unknown, dotted: string): unknown {
  let cur: unknown = obj;
  for (const part of dotted.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Lists dotted leaf keys of the file's sections, to reject misspelt ones. */
function leafKeys(obj: unknown, prefix: string): string[] {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) return [prefix];
  return Object.entries(obj).flatMap(([k, v]) =>
    prefix === "secrets" && k === "openbao" ? leafKeys(v, `${prefix}.${k}`) : [`${prefix}.${k}`],
  );
}

/** What sits under the environment: the config file, then the fallbacks. */
interface Layers {
  path: string | null;
  data: unknown;
  fallbacks: Readonly<Record<string, string>>;
}

function readConfigFile(env: Env, opts: LoadConfigOptions): Omit<Layers, "fallbacks"> {
  const explicit = env.LOOM_CONFIG?.trim() || undefined;
  const path = explicit ?? opts.defaultConfigPath ?? DEFAULT_CONFIG_PATH;
  let source: string;
  try {
    source = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Only the default location may be absent: an explicit path that is missing is a mistake.
    if (explicit === undefined && code === "ENOENT") return { path: null, data: {} };
    throw new ConfigError("LOOM_CONFIG", `cannot read config file ${path} (${code ?? "error"})`, {
      cause: err,
    });
  }
  let data: unknown;
  try {
    data = parseYaml(source) ?? {};
  } catch (err) {
    throw new ConfigError("LOOM_CONFIG", `config file ${path} is not valid YAML: ${(err as Error).message}`);
  }
  const shape = fileSchema.safeParse(data);
  if (!shape.success) {
    const issue = shape.error.issues[0];
    const where = issue?.path.join(".") || (issue?.code === "unrecognized_keys" ? issue.keys.join(", ") : "");
    throw new ConfigError(`${path}${where ? `: ${where}` : ""}`, issue?.message ?? "unexpected content");
  }
  for (const section of ["server", "secrets", "nixery"] as const) {
    for (const key of shape.data[section] ? leafKeys(shape.data[section], section) : []) {
      if (!KNOWN_FILE_KEYS.has(key)) throw new ConfigError(`${path}: ${key}`, "unknown setting");
    }
  }
  return { path, data: shape.data };
}

function resolve<T>(field: Field<T>, env: Env, file: Layers): T | undefined {
  const fromEnv = env[field.env];
  let raw: unknown;
  let source = field.env;
  if (fromEnv !== undefined && fromEnv.trim() !== "") {
    raw = fromEnv;
  } else if (field.file !== null && lookup(file.data, field.file) !== undefined) {
    raw = lookup(file.data, field.file);
    source = `${field.env} (${file.path}: ${field.file})`;
  } else if (file.fallbacks[field.env] !== undefined) {
    raw = file.fallbacks[field.env];
  } else if (field.default !== undefined) {
    raw = field.default;
  } else {
    return undefined;
  }
  try {
    return field.parse(raw);
  } catch (err) {
    if (err instanceof Expected) throw new ConfigError(source, err.message);
    throw err;
  }
}

function required<T>(field: Field<T>, env: Env, file: Layers): T {
  const v = resolve(field, env, file);
  if (v === undefined) {
    const alt = field.file ? ` (or ${field.file} in the config file)` : "";
    throw new ConfigError(field.env, `is required${alt}`);
  }
  return v;
}

/**
 * The config file's `kubernetes` section alone, for `loom controller` (which needs no spindle
 * settings): the same file lookup and checks as `loadConfig` (LOOM_CONFIG, unknown keys refused).
 */
export function loadKubernetesSection(
  env: Env,
  opts: LoadConfigOptions = {},
): { configFile: string | null; kubernetes: unknown } {
  const file = readConfigFile(env, opts);
  return { configFile: file.path, kubernetes: lookup(file.data, "kubernetes") ?? null };
}

/** Decodes a 32-byte AES key written as 64 hex digits or base64 (with or without padding). */
export function decodeSecretsKey(text: string): Uint8Array | null {
  const s = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(s)) return new Uint8Array(Buffer.from(s, "hex"));
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(s)) {
    const bytes = Buffer.from(s.replace(/-/g, "+").replace(/_/g, "/"), "base64");
    if (bytes.length === 32) return new Uint8Array(bytes);
  }
  return null;
}

const KEY_EXPECTED =
  "expected a 32-byte AES-256 key as 64 hex digits or base64 (generate one with `openssl rand -base64 32`)";

function loadSecretsKey(env: Env, file: Layers): Uint8Array {
  const inline = resolve(FIELDS.secretsKey, env, file);
  const keyFile = resolve(FIELDS.secretsKeyFile, env, file);
  if (inline !== undefined && keyFile !== undefined) {
    throw new ConfigError(
      "SPINDLE_SERVER_SECRETS_KEY",
      "set either SPINDLE_SERVER_SECRETS_KEY or SPINDLE_SERVER_SECRETS_KEY_FILE, not both",
    );
  }
  if (inline !== undefined) {
    // Never echo the value: it is the key.
    const key = decodeSecretsKey(inline);
    if (!key) throw new ConfigError("SPINDLE_SERVER_SECRETS_KEY", KEY_EXPECTED);
    return key;
  }
  if (keyFile === undefined) {
    throw new ConfigError(
      "SPINDLE_SERVER_SECRETS_KEY_FILE",
      "is required with the sqlite secrets provider (secret values are encrypted at rest); or set SPINDLE_SERVER_SECRETS_KEY",
    );
  }
  let contents: string;
  try {
    contents = readFileSync(keyFile, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new ConfigError("SPINDLE_SERVER_SECRETS_KEY_FILE", `cannot read ${keyFile} (${code})`, {
      cause: err,
    });
  }
  const key = decodeSecretsKey(contents);
  if (!key) throw new ConfigError("SPINDLE_SERVER_SECRETS_KEY_FILE", `${keyFile}: ${KEY_EXPECTED}`);
  return key;
}

function loadOpenbaoToken(env: Env, file: Layers): string | null {
  const tokenFile = resolve(FIELDS.openbaoTokenFile, env, file);
  if (tokenFile === undefined) return null;
  try {
    const token = readFileSync(tokenFile, "utf8").trim();
    if (token === "")
      throw new ConfigError("SPINDLE_SERVER_SECRETS_OPENBAO_TOKEN_FILE", `${tokenFile} is empty`);
    return token;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new ConfigError("SPINDLE_SERVER_SECRETS_OPENBAO_TOKEN_FILE", `cannot read ${tokenFile} (${code})`, {
      cause: err,
    });
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    // Typed arrays cannot be frozen; the key is copied in and never handed out mutable elsewhere.
    if (ArrayBuffer.isView(value)) return value;
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Builds the validated, deeply frozen configuration. Throws `ConfigError` on the first problem.
 * @param env the process environment, passed in by the CLI entry (the only `process.env` reader)
 */
export function loadConfig(env: Env, opts: LoadConfigOptions = {}): Config {
  const file: Layers = { ...readConfigFile(env, opts), fallbacks: opts.fallbacks ?? {} };
  const host = required(FIELDS.hostname, env, file);
  const provider = required(FIELDS.secretsProvider, env, file);
  const config: Config = {
    configFile: file.path,
    server: {
      listen: required(FIELDS.listen, env, file),
      metricsListen: resolve(FIELDS.metricsListen, env, file) ?? null,
      dbPath: required(FIELDS.dbPath, env, file),
      hostname: host,
      did: `did:web:${host}`,
      owner: required(FIELDS.owner, env, file),
      jetstreamEndpoint: required(FIELDS.jetstreamEndpoint, env, file),
      plcUrl: required(FIELDS.plcUrl, env, file),
      dev: required(FIELDS.dev, env, file),
      logDir: required(FIELDS.logDir, env, file),
      logRetentionMs: required(FIELDS.logRetention, env, file),
      queueSize: required(FIELDS.queueSize, env, file),
      maxJobCount: required(FIELDS.maxJobCount, env, file),
      repoDir: required(FIELDS.repoDir, env, file),
    },
    secrets: {
      provider,
      key: provider === "sqlite" ? loadSecretsKey(env, file) : null,
      openbao: {
        proxyAddr: required(FIELDS.openbaoProxyAddr, env, file),
        mount: required(FIELDS.openbaoMount, env, file).replace(/^\/+|\/+$/g, ""),
        token: provider === "openbao" ? loadOpenbaoToken(env, file) : null,
      },
    },
    nixery: {
      registry: required(FIELDS.nixery, env, file),
      workflowTimeoutMs: required(FIELDS.workflowTimeout, env, file),
    },
    engine: required(FIELDS.engine, env, file),
    kubernetes: lookup(file.data, "kubernetes") ?? null,
  };
  return deepFreeze(config);
}

/** A placeholder owner for `make run` with no configuration; the CLI prints it so users notice. */
export const DEV_OWNER_PLACEHOLDER = "did:plc:loomdevownerplaceholder";

/**
 * The defaults for local development (`make run` with no configuration, or `loom serve --dev`),
 * as `LoadConfigOptions.fallbacks`: they sit under the environment and the config file, so
 * anything set explicitly wins. Everything lives under `baseDir` (default `./.loom`). When the
 * result names a secrets key file (`keyFile`), the CLI creates it first with
 * `ensureSecretsKeyFile` from `./secrets/key-file.ts`, then calls `loadConfig`.
 */
export function devDefaults(
  env: Env,
  baseDir = ".loom",
): { fallbacks: Record<string, string>; ownerPlaceholder: string; keyFile: string | null } {
  const dir = baseDir.replace(/\/+$/, "");
  const set = (name: string) => (env[name] ?? "").trim() !== "";
  const fallbacks: Record<string, string> = {
    SPINDLE_SERVER_HOSTNAME: "localhost:6555",
    SPINDLE_SERVER_LISTEN_ADDR: "127.0.0.1:6555",
    SPINDLE_SERVER_OWNER: DEV_OWNER_PLACEHOLDER,
    SPINDLE_SERVER_DEV: "true",
    SPINDLE_SERVER_DB_PATH: `${dir}/spindle.db`,
    SPINDLE_SERVER_LOG_DIR: `${dir}/logs`,
    SPINDLE_SERVER_REPO_DIR: `${dir}/repos`,
    SPINDLE_SERVER_ENGINE: "local",
  };
  // An explicit inline key replaces the dev key file (setting both is an error in loadConfig).
  const keyFile = set("SPINDLE_SERVER_SECRETS_KEY")
    ? null
    : env.SPINDLE_SERVER_SECRETS_KEY_FILE?.trim() || `${dir}/secrets.key`;
  if (keyFile !== null) fallbacks.SPINDLE_SERVER_SECRETS_KEY_FILE = keyFile;
  return { fallbacks, ownerPlaceholder: DEV_OWNER_PLACEHOLDER, keyFile };
}
