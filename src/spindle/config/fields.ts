/** The settings table: every setting's environment name, config-file key, default and parser. */
import {
  boolean,
  did,
  duration,
  hostname,
  integer,
  listenAddr,
  oneOf,
  type Parser,
  retention,
  text,
  url,
} from "./parsers.ts";

export interface Field<T> {
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
  statusPagePublic: f("SPINDLE_SERVER_STATUS_PAGE_PUBLIC", "server.statusPagePublic", boolean, "false"),
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
  maxJobCountPerRepo: f(
    "SPINDLE_SERVER_MAX_JOB_COUNT_PER_REPO",
    "server.maxJobCountPerRepo",
    integer(1, 10_000),
  ),
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
