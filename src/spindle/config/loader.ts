/**
 * Spindle configuration, read once at start-up (style: "Config read once").
 *
 * Sources, highest precedence first:
 *   1. environment variables — every `SPINDLE_SERVER_*` / `SPINDLE_NIXERY_*` name of spec §6.4,
 *      plus Loom's own (`SPINDLE_SERVER_SECRETS_KEY[_FILE]`, `SPINDLE_SERVER_ENGINE`,
 *      `SPINDLE_SERVER_REPO_DIR`, `SPINDLE_SERVER_SECRETS_OPENBAO_TOKEN_FILE`, `LOOM_CONFIG`);
 *   2. Loom's YAML config file (`LOOM_CONFIG`, default `/etc/loom/config.yaml`), whose keys are
 *      listed in `FIELDS` (fields.ts) (e.g. `server.hostname`, `secrets.provider`, `engine`);
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
import { FIELDS } from "./fields.ts";
import {
  type Env,
  isSet,
  type Layers,
  type LoadConfigOptions,
  readConfigFile,
  required,
  resolve,
} from "./file.ts";
import { kubernetesSection } from "./kubernetes.ts";
import { loadOpenbaoToken, loadSecretsKey } from "./secrets.ts";

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
    /** Also serve the status page (/status) on the public port, to the owner's service auth only. */
    readonly statusPagePublic: boolean;
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
    /** Pipelines that may wait; see `schedulerLimits` for the Kubernetes engine's default. */
    readonly queueSize: number;
    /** Pipelines running at once; see `schedulerLimits` for the Kubernetes engine's default. */
    readonly maxJobCount: number;
    /** Pipelines of one repo running at once; null: no per-repo limit. */
    readonly maxJobCountPerRepo: number | null;
    /** Whether queueSize / maxJobCount were set (environment, file or fallbacks), not defaulted. */
    readonly limitsSet: { readonly queueSize: boolean; readonly maxJobCount: boolean };
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
  /**
   * The config file's `kubernetes` section with the original Loom's top-level `maxConcurrentJobs`
   * and `template` merged in (kubernetes.ts); validated by the Kubernetes engine.
   */
  readonly kubernetes: unknown;
  /** Keys of `kubernetes` that came from the file's top level (for error messages). */
  readonly kubernetesTopLevel: readonly string[];
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
  const k8s = kubernetesSection(file.data, file.path, env);
  const host = required(FIELDS.hostname, env, file);
  const provider = required(FIELDS.secretsProvider, env, file);
  const config: Config = {
    configFile: file.path,
    server: {
      listen: required(FIELDS.listen, env, file),
      metricsListen: resolve(FIELDS.metricsListen, env, file) ?? null,
      statusPagePublic: required(FIELDS.statusPagePublic, env, file),
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
      maxJobCountPerRepo: resolve(FIELDS.maxJobCountPerRepo, env, file) ?? null,
      limitsSet: {
        queueSize: isSet(FIELDS.queueSize, env, file),
        maxJobCount: isSet(FIELDS.maxJobCount, env, file),
      },
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
    kubernetes: k8s.section,
    kubernetesTopLevel: k8s.topLevel,
  };
  return deepFreeze(config);
}

/** Upstream's defaults wait 100 pipelines for 2 workers: the same 50 per slot, at least 100. */
export const QUEUE_PER_SLOT = 50;

/**
 * The queue's limits for the engine in use. With the Kubernetes engine the cluster's capacity
 * (`kubernetes.maxConcurrentJobs`) is what bounds work, so unless set explicitly
 * `maxJobCount` follows it (a pipeline holds its worker until its workflows finish, so fewer
 * workers than Job slots would leave the cluster idle) and `queueSize` is 50 per slot (at least
 * the §6.4 default of 100). Explicit settings always win; the local engine keeps §6.4's defaults.
 */
export function schedulerLimits(
  server: Config["server"],
  maxConcurrentJobs: number | null,
): { maxJobCount: number; queueSize: number } {
  if (maxConcurrentJobs === null) return { maxJobCount: server.maxJobCount, queueSize: server.queueSize };
  return {
    maxJobCount: server.limitsSet.maxJobCount ? server.maxJobCount : maxConcurrentJobs,
    queueSize: server.limitsSet.queueSize
      ? server.queueSize
      : Math.max(server.queueSize, QUEUE_PER_SLOT * maxConcurrentJobs),
  };
}

/** A placeholder owner for `make run` with no configuration; the CLI prints it so users notice. */
export const DEV_OWNER_PLACEHOLDER = "did:plc:loomdevownerplaceholder";

/**
 * The defaults for local development (`make run` with no configuration, or `loom serve --dev`),
 * as `LoadConfigOptions.fallbacks`: they sit under the environment and the config file, so
 * anything set explicitly wins. Everything lives under `baseDir` (default `./.loom`). When the
 * result names a secrets key file (`keyFile`), the CLI creates it first with
 * `ensureSecretsKeyFile` from `../secrets/key-file.ts`, then calls `loadConfig`.
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
