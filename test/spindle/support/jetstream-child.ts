/**
 * A spindle's Jetstream intake alone, in a process of its own so a test can SIGKILL it
 * mid-handling (intake-jetstream-lanes.test.ts). Configured by environment: LOOM_JS_URL,
 * LOOM_PLC_URL, LOOM_DB, LOOM_OWNER, LOOM_HOST. Prints "ready" once started.
 */
import { pino } from "pino";
import { IdentityResolver } from "../../../src/net/identity.ts";
import { XrpcClient } from "../../../src/net/xrpc-client.ts";
import {
  JetstreamCursor,
  KnownDids,
  openDatabase,
  Repos,
  SpindleMembers,
} from "../../../src/spindle/db/index.ts";
import { DidFilter, JetstreamConsumer, JetstreamHandlers } from "../../../src/spindle/intake/index.ts";
import { Rbac } from "../../../src/spindle/rbac/index.ts";

const env = (k: string) => {
  const v = process.env[k];
  if (v === undefined) throw new Error(`${k} is not set`);
  return v;
};
const db = openDatabase(env("LOOM_DB"));
const rbac = new Rbac(db);
rbac.setOwner(env("LOOM_OWNER"));
const knownDids = new KnownDids(db);
const filter = new DidFilter(env("LOOM_OWNER"), knownDids);
const log = pino({ level: "info" }, pino.destination(2));
const handlers = new JetstreamHandlers({
  db,
  hostname: env("LOOM_HOST"),
  rbac,
  members: new SpindleMembers(db),
  knownDids,
  repos: new Repos(db),
  filter,
  identity: new IdentityResolver({ plcUrl: env("LOOM_PLC_URL"), dev: true, timeoutMs: 5000 }),
  xrpc: new XrpcClient({ timeoutMs: 60_000 }),
  knots: { addKnot: () => {} },
  log,
});
const consumer = new JetstreamConsumer({
  endpoint: env("LOOM_JS_URL"),
  filter,
  cursor: new JetstreamCursor(db),
  handlers,
  log,
  nowUs: () => Date.now() * 1000,
  backoff: { baseMs: 20, capMs: 100, minMs: 10 },
});
consumer.start();
process.stdout.write("ready\n");
