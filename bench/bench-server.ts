/**
 * The spindle server the benches measure: local config under `dir` (dev mode, an unbounded
 * queue, one job slot), the HoldingEngine (runs are held, not executed), silent logs. `seed`
 * writes to the database before the server opens it (repos, knot cursors); with `knots` the
 * knot intake runs with short backoffs, without it there is no intake at all.
 */
import { join } from "node:path";
import { pino } from "pino";
import { loadConfig } from "../src/spindle/config/index.ts";
import { type DatabaseSync, openDatabase } from "../src/spindle/db/index.ts";
import { SpindleServer } from "../src/spindle/server.ts";
import { HoldingEngine } from "./holding-engine.ts";

export const BENCH_OWNER = "did:plc:benchowner";
export const BENCH_ALICE = "did:plc:benchalice";

/** The benches' spindle configuration, everything under `dir`. */
export function benchConfig(dir: string) {
  return loadConfig(
    {
      SPINDLE_SERVER_HOSTNAME: "spindle.bench",
      SPINDLE_SERVER_OWNER: BENCH_OWNER,
      SPINDLE_SERVER_LISTEN_ADDR: "127.0.0.1:0",
      SPINDLE_SERVER_DB_PATH: join(dir, "spindle.db"),
      SPINDLE_SERVER_LOG_DIR: join(dir, "logs"),
      SPINDLE_SERVER_REPO_DIR: join(dir, "repos"),
      SPINDLE_SERVER_SECRETS_KEY: "22".repeat(32),
      SPINDLE_SERVER_ENGINE: "local",
      SPINDLE_SERVER_DEV: "true",
      SPINDLE_SERVER_QUEUE_SIZE: "1000000",
      SPINDLE_SERVER_MAX_JOB_COUNT: "1",
      SPINDLE_SERVER_JETSTREAM_ENDPOINT: "ws://127.0.0.1:9/subscribe",
    },
    { defaultConfigPath: join(dir, "absent.yaml") },
  );
}

export async function bootBenchServer(
  dir: string,
  o: { seed?: (db: DatabaseSync) => void; knots: boolean },
): Promise<{ server: SpindleServer; url: string; wsUrl: string }> {
  const config = benchConfig(dir);
  if (o.seed) {
    const db = openDatabase(config.server.dbPath);
    o.seed(db);
    db.close();
  }
  const server = await SpindleServer.create({
    config,
    logger: pino({ level: "silent" }),
    engine: new HoldingEngine(),
    intake: o.knots ? { knots: { backoff: { baseMs: 20, capMs: 200, minMs: 10 } } } : false,
  });
  const url = await server.start();
  return { server, url, wsUrl: url.replace(/^http/, "ws") };
}
