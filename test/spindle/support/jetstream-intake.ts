/**
 * A spindle's Jetstream intake (handlers + consumer) wired as the server wires it, for the intake
 * tests and the jetstream-child process (no node:test here: the child is no test).
 */
import type { Logger } from "pino";
import { IdentityResolver } from "../../../src/net/identity.ts";
import { XrpcClient } from "../../../src/net/xrpc-client.ts";
import {
  type DatabaseSync,
  type JetstreamCursor,
  KnownDids,
  openDatabase,
  Repos,
  SpindleMembers,
} from "../../../src/spindle/db/index.ts";
import {
  DidFilter,
  JetstreamConsumer,
  type JetstreamConsumerOptions,
  JetstreamHandlers,
} from "../../../src/spindle/intake/index.ts";
import { Rbac } from "../../../src/spindle/rbac/index.ts";

/** A spindle database at `path` with its owner and `members` on record (members are known DIDs). */
export function spindleDb(
  path: string,
  owner: string,
  members: string[] = [],
): { db: DatabaseSync; rbac: Rbac; knownDids: KnownDids } {
  const db = openDatabase(path);
  const rbac = new Rbac(db);
  rbac.setOwner(owner);
  const knownDids = new KnownDids(db);
  for (const m of members) {
    rbac.addMember(m);
    knownDids.add(m);
  }
  return { db, rbac, knownDids };
}

export interface IntakeOptions {
  db: DatabaseSync;
  rbac: Rbac;
  knownDids: KnownDids;
  cursor: JetstreamCursor;
  log: Logger;
  /** The Jetstream endpoint and the PLC the intake resolves identities at. */
  endpoint: string;
  plcUrl: string;
  owner: string;
  hostname: string;
  /** The PDS request timeout. */
  xrpcTimeoutMs: number;
  nowUs: () => number;
  /** Knots the handlers add (default: none kept). */
  addKnot?: (knot: string) => void;
  consumer?: Partial<JetstreamConsumerOptions>;
}

/** A spindle's Jetstream intake over `db`: its handlers and consumer (not started). */
export function jetstreamIntake(o: IntakeOptions): { consumer: JetstreamConsumer; filter: DidFilter } {
  const filter = new DidFilter(o.owner, o.knownDids);
  const handlers = new JetstreamHandlers({
    db: o.db,
    hostname: o.hostname,
    rbac: o.rbac,
    members: new SpindleMembers(o.db),
    knownDids: o.knownDids,
    repos: new Repos(o.db),
    filter,
    identity: new IdentityResolver({ plcUrl: o.plcUrl, dev: true, timeoutMs: 5000 }),
    xrpc: new XrpcClient({ timeoutMs: o.xrpcTimeoutMs }),
    knots: { addKnot: o.addKnot ?? (() => {}) },
    log: o.log,
  });
  const consumer = new JetstreamConsumer({
    endpoint: o.endpoint,
    filter,
    cursor: o.cursor,
    handlers,
    log: o.log,
    nowUs: o.nowUs,
    backoff: { baseMs: 20, capMs: 100, minMs: 10 },
    ...o.consumer,
  });
  return { consumer, filter };
}
