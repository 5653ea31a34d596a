/**
 * `loom serve`: runs the spindle server until SIGINT/SIGTERM. The environment comes in from
 * main.ts (the one reader of process.env). With `--dev`, or when nothing is configured at all
 * (no SPINDLE_SERVER_HOSTNAME, no LOOM_CONFIG, no /etc/loom/config.yaml), the dev defaults of
 * `devDefaults` apply: everything under ./.loom/, the local engine, 127.0.0.1:6555, a generated
 * secrets key. Explicit variables and the config file always win over dev defaults.
 */
import { existsSync } from "node:fs";
import { type Logger, pino } from "pino";
import {
  type Config,
  DEFAULT_CONFIG_PATH,
  DEV_OWNER_PLACEHOLDER,
  devDefaults,
  loadConfig,
} from "../spindle/config/index.ts";
import { ensureSecretsKeyFile } from "../spindle/secrets/index.ts";
import { SpindleServer } from "../spindle/server.ts";
import { createRunTracer } from "../telemetry/index.ts";
import { type LogFormat, prettyDestination } from "./log-format.ts";

type Env = Readonly<Record<string, string | undefined>>;

export interface ServeOptions {
  env: Env;
  dev: boolean;
  /** Directory for dev state (default `.loom`). */
  devDir?: string;
  /** Environment local runners (and so the steps) inherit. */
  runnerEnv: Record<string, string>;
  /** `pretty` (human lines) or `json` (pino's lines); default: pretty when stdout is a terminal. */
  logFormat?: LogFormat;
  /** Colour in pretty logs (default: when stdout is a terminal). */
  colour?: boolean;
}

/**
 * In dev mode the spindle's name follows the address it listens on: with
 * SPINDLE_SERVER_LISTEN_ADDR=127.0.0.1:7000 and no SPINDLE_SERVER_HOSTNAME it is localhost:7000,
 * not the default's localhost:6555 (which the banner would then advertise in vain).
 */
export function devHostname(env: Env): Record<string, string> {
  if ((env.SPINDLE_SERVER_HOSTNAME ?? "").trim() !== "") return {};
  const m = /^(.*):(\d+)$/.exec((env.SPINDLE_SERVER_LISTEN_ADDR ?? "").trim());
  if (m === null || Number(m[2]) === 0) return {};
  const host = (m[1] ?? "").replace(/^\[|\]$/g, "");
  const local = host === "" || host === "0.0.0.0" || host === "::" || host === "127.0.0.1" || host === "::1";
  return { SPINDLE_SERVER_HOSTNAME: `${local ? "localhost" : host}:${m[2]}` };
}

/** True when the user configured nothing, so `make run` should just work. */
export function nothingConfigured(env: Env): boolean {
  const set = (k: string) => (env[k] ?? "").trim() !== "";
  return !set("SPINDLE_SERVER_HOSTNAME") && !set("LOOM_CONFIG") && !existsSync(DEFAULT_CONFIG_PATH);
}

function banner(config: Config, url: string): string {
  const { hostname, did, owner, dbPath, logDir } = config.server;
  const scheme = config.server.dev ? "ws" : "wss";
  const lines = [
    "",
    `loom spindle listening on ${url}`,
    `  DID            ${did}`,
    `  owner          ${owner}${owner === DEV_OWNER_PLACEHOLDER ? "   (placeholder: set SPINDLE_SERVER_OWNER to your DID)" : ""}`,
    `  engine         ${config.engine}`,
    `  database       ${dbPath}`,
    `  workflow logs  ${logDir}`,
    `  status stream  ${scheme}://${hostname}/events    logs: ${scheme}://${hostname}/logs/<knot>/<rkey>/<workflow>`,
    "",
    "To use it:",
    `  1. In the appview, register the spindle "${hostname}" (Settings → Spindles) as its owner,`,
    "     and add members; then choose it as the spindle of a repo (repo Settings → Pipelines).",
    `  2. The repo's sh.tangled.repo record then names "${hostname}": the spindle follows that repo's`,
    `     knot (${scheme}://<knot>/events) and runs the pipelines the knot emits on push.`,
    "  The appview must reach this address by the name above; for a local stack keep",
    "  SPINDLE_SERVER_DEV=true (plain ws/http towards knots and did:web).",
    "",
  ];
  return lines.join("\n");
}

export async function serveCommand(opts: ServeOptions): Promise<number> {
  const env: Env = opts.env;
  let fallbacks: Record<string, string> = {};
  if (opts.dev || nothingConfigured(opts.env)) {
    const dev = devDefaults(opts.env, opts.devDir ?? ".loom");
    if (dev.keyFile) ensureSecretsKeyFile(dev.keyFile);
    fallbacks = { ...dev.fallbacks, ...devHostname(opts.env) };
  }
  const config = loadConfig(env, { fallbacks });
  const format = opts.logFormat ?? (process.stdout.isTTY ? "pretty" : "json");
  const level = env.LOOM_LOG_LEVEL?.trim() || "info";
  const logger: Logger =
    format === "pretty"
      ? pino(
          { name: "loom", level },
          prettyDestination(process.stdout, opts.colour ?? process.stdout.isTTY === true),
        )
      : pino({ name: "loom", level });
  // Traces only when the OTEL_* variables ask (the SDK is not even loaded otherwise).
  const tracer = await createRunTracer(env);
  const server = await SpindleServer.create({
    config,
    logger,
    runnerEnv: opts.runnerEnv,
    ...(tracer && { tracer }),
  });
  const url = await server.start();
  // The handlers come before the banner: whoever reads the banner may signal at once.
  const stopped = new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`loom: ${signal} again, exiting now\n`);
        process.exit(130);
      }
      stopping = true;
      logger.info({ signal }, "shutting down");
      server.stop().then(
        async () => {
          // Spans still buffered go out before the process ends (a failed export is not fatal).
          await tracer?.shutdown().catch(() => {});
          resolve(0);
        },
        (err: Error) => {
          logger.error({ err }, "shutdown failed");
          resolve(1);
        },
      );
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
  process.stderr.write(banner(config, url));
  return stopped;
}
