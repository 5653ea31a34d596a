/**
 * Intake: how the spindle learns about work (spec §1.2–§1.3; docs/protocol/gen2.md).
 *
 * - `JetstreamConsumer` (jetstream.ts) reads `sh.tangled.spindle.member`, `sh.tangled.repo` and
 *   `sh.tangled.repo.collaborator` commits, filters them by author (`DidFilter`), and applies
 *   them with `JetstreamHandlers` (handlers.ts): members, repos, RBAC grants, new knots. With
 *   the builds below, also `sh.tangled.repo.pull{,.status}`, exempt from the filter (pulls.ts).
 * - `KnotConsumers` (knots.ts) keeps one `KnotConsumer` per knot and hands each envelope to the
 *   handler of its NSID. The table is built here, once: with the builds, RefUpdateIntake's
 *   (refUpdate → a pipeline built here; collaboratorUpdate; `sh.tangled.pipeline` → the
 *   processor unless its push was already handled); without, `sh.tangled.pipeline` alone.
 *
 * Wiring, once at start-up (the server passes the shared dependencies it built):
 *
 *   const intake = createIntake({ config, db, pipelines, identity, xrpc, log,
 *     builds: { refUpdates, pulls } });
 *   intake.start();          // knots from `repos`, then Jetstream
 *   ...
 *   await intake.stop();     // closes every socket, saves the Jetstream cursor
 *
 * Each part is also usable alone (tests construct them directly with tighter timings).
 */
import type { Logger } from "pino";
import type { IdentityLookup } from "../../net/identity.ts";
import type { XrpcClient } from "../../net/xrpc-client.ts";
import type { Config } from "../config/index.ts";
import {
  type DatabaseSync,
  JetstreamCursor,
  KnotCursors,
  KnownDids,
  Repos,
  SpindleMembers,
} from "../db/index.ts";
import type { PipelineIntake } from "../pipelines/intake-contract.ts";
import type { IntakeMetrics } from "../pipelines/metrics.ts";
import { Rbac } from "../rbac/index.ts";
import { DidFilter } from "./did-filter.ts";
import { JetstreamHandlers, WANTED_COLLECTIONS } from "./handlers.ts";
import { JetstreamConsumer, type JetstreamConsumerOptions } from "./jetstream.ts";
import type { KnotConsumerTuning, KnotRowSkipReason } from "./knot-consumer.ts";
import { KnotConsumers, pipelineHandlers } from "./knots.ts";
import { FILTER_EXEMPT_COLLECTIONS, PULL_COLLECTIONS, type PullIntake } from "./pulls.ts";
import type { RefUpdateIntake } from "./ref-updates.ts";

export { Backoff, type BackoffOptions, sleep } from "./backoff.ts";
export { DidFilter } from "./did-filter.ts";
export { JetstreamHandlers, type JetstreamHandlersOptions, WANTED_COLLECTIONS } from "./handlers.ts";
export { JetstreamConsumer, type JetstreamConsumerOptions, type JetstreamEventHandler } from "./jetstream.ts";
export { decodeJetstreamFrame, type JetstreamEvent } from "./jetstream-event.ts";
export {
  KnotConsumer,
  type KnotConsumerTuning,
  type KnotEventHandler,
  type KnotRowSkipReason,
} from "./knot-consumer.ts";
export { isValidKnotHost, knotEventsUrl } from "./knot-host.ts";
export { KnotConsumers, type KnotConsumersOptions, pipelineHandlers } from "./knots.ts";
export type { Outcome } from "./outcome.ts";
export { FILTER_EXEMPT_COLLECTIONS, PULL_COLLECTIONS, type PullEventHandler, PullIntake } from "./pulls.ts";
export { RefUpdateIntake } from "./ref-updates.ts";

export interface CreateIntakeOptions {
  config: Pick<Config, "server">;
  db: DatabaseSync;
  /** The pipeline processor (server core). */
  pipelines: PipelineIntake;
  log: Logger;
  /** DID → PDS (the server's one IdentityResolver). */
  identity: IdentityLookup;
  /** Reads records from PDSes; SSRF-guarded (PDS endpoints come from DID documents). */
  xrpc: XrpcClient;
  /** Test knobs for the Jetstream consumer (timings, clock). */
  jetstream?: Partial<Omit<JetstreamConsumerOptions, "endpoint" | "filter" | "cursor" | "handlers" | "log">>;
  /** Test knobs for the knot consumers (timings, clock). */
  knots?: KnotConsumerTuning;
  /** Counts knot rows that could not be taken and were stepped over (a metric). */
  onKnotRowSkipped?: (reason: KnotRowSkipReason) => void;
  /** Shared with the server (built once there); default: over `db`. */
  rbac?: Rbac;
  repos?: Repos;
  /**
   * Pipelines the spindle builds itself (Generation 2): refUpdate and pull-request intake,
   * registered here (the knot handler table, the Jetstream pull collections). The server always
   * passes them; without them only knots' `sh.tangled.pipeline` and Jetstream's member, repo
   * and collaborator records are handled.
   */
  builds?: { refUpdates: RefUpdateIntake; pulls: PullIntake };
  /** Open connections and Jetstream lag (loom_intake_*); absent = not measured. */
  metrics?: IntakeMetrics;
}

export interface Intake {
  jetstream: JetstreamConsumer;
  knots: KnotConsumers;
  filter: DidFilter;
  start(): void;
  stop(): Promise<void>;
}

export function createIntake(opts: CreateIntakeOptions): Intake {
  const { server } = opts.config;
  const log = opts.log.child({ component: "intake" });
  const knownDids = new KnownDids(opts.db);
  const repos = opts.repos ?? new Repos(opts.db);
  const rbac = opts.rbac ?? new Rbac(opts.db);
  const filter = new DidFilter(server.owner, knownDids);
  const refUpdates = opts.builds?.refUpdates ?? null;
  const pulls = opts.builds?.pulls ?? null;
  const knots = new KnotConsumers({
    ...(opts.onKnotRowSkipped && { onSkip: opts.onKnotRowSkipped }),
    ...opts.knots,
    cursors: new KnotCursors(opts.db),
    repos,
    handlers: refUpdates ? refUpdates.handlers() : pipelineHandlers(opts.pipelines),
    dev: server.dev,
    log,
    ...(opts.metrics && { metrics: opts.metrics }),
  });
  const handlers = new JetstreamHandlers({
    db: opts.db,
    hostname: server.hostname,
    rbac,
    members: new SpindleMembers(opts.db),
    knownDids,
    repos,
    filter,
    identity: opts.identity,
    xrpc: opts.xrpc,
    knots,
    log,
    ...(pulls !== null && { pulls }),
  });
  const jetstream = new JetstreamConsumer({
    ...opts.jetstream,
    endpoint: server.jetstreamEndpoint,
    filter,
    ...(pulls !== null && {
      wantedCollections: [...WANTED_COLLECTIONS, ...PULL_COLLECTIONS],
      filterExempt: FILTER_EXEMPT_COLLECTIONS,
    }),
    cursor: new JetstreamCursor(opts.db),
    handlers,
    log,
    ...(opts.metrics && { metrics: opts.metrics }),
  });
  return {
    jetstream,
    knots,
    filter,
    start() {
      knots.start();
      jetstream.start();
    },
    async stop() {
      await Promise.all([jetstream.stop(), knots.stop()]);
    },
  };
}
