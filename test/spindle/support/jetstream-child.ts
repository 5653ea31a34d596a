/**
 * A spindle's Jetstream intake alone, in a process of its own so a test can SIGKILL it
 * mid-handling (intake-jetstream-lanes.test.ts). Configured by environment: LOOM_JS_URL,
 * LOOM_PLC_URL, LOOM_DB, LOOM_OWNER, LOOM_HOST. Prints "ready" once started.
 */
import { pino } from "pino";
import { JetstreamCursor } from "../../../src/spindle/db/index.ts";
import { jetstreamIntake, spindleDb } from "./jetstream-intake.ts";

const env = (k: string) => {
  const v = process.env[k];
  if (v === undefined) throw new Error(`${k} is not set`);
  return v;
};
const { db, rbac, knownDids } = spindleDb(env("LOOM_DB"), env("LOOM_OWNER"));
const { consumer } = jetstreamIntake({
  db,
  rbac,
  knownDids,
  cursor: new JetstreamCursor(db),
  log: pino({ level: "info" }, pino.destination(2)),
  endpoint: env("LOOM_JS_URL"),
  plcUrl: env("LOOM_PLC_URL"),
  owner: env("LOOM_OWNER"),
  hostname: env("LOOM_HOST"),
  xrpcTimeoutMs: 60_000,
  nowUs: () => Date.now() * 1000,
});
consumer.start();
process.stdout.write("ready\n");
