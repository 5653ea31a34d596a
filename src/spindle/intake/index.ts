/**
 * Intake: how the spindle learns about work (spec §1.2–§1.3).
 *
 * - `JetstreamConsumer` (jetstream.ts) reads `sh.tangled.spindle.member`, `sh.tangled.repo` and
 *   `sh.tangled.repo.collaborator` commits, filters them by author (`DidFilter`), and applies
 *   them with `JetstreamHandlers` (handlers.ts): members, repos, RBAC grants, new knots. Given
 *   a `pulls` handler (Gen2), also `sh.tangled.repo.pull{,.status}`, exempt from the filter
 *   (pulls.ts).
 * - `KnotConsumers` (knots.ts) keeps one `KnotConsumer` per knot and hands every
 *   `sh.tangled.pipeline` envelope to the `PipelineIntake`.
 *
 * Wiring, once at start-up (after `new Rbac(db).setOwner(config.server.owner)`):
 *
 *   const intake = createIntake({ config, db, pipelines, log });
 *   intake.start();          // knots from `repos`, then Jetstream
 *   ...
 *   await intake.stop();     // closes every socket, saves the Jetstream cursor
 *
 * Each part is also usable alone (tests construct them directly with tighter timings).
 */
import type { Logger } from "pino";
import { guardedFetchFunction } from "../../net/guarded-fetch.ts";
import type { Config } from "../config.ts";
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
import { createDidDocumentLookup, type IdentityLookup } from "./identity.ts";
import { JetstreamConsumer, type JetstreamConsumerOptions } from "./jetstream.ts";
import type { KnotConsumerTuning, KnotEventHandler } from "./knot-consumer.ts";
import { KnotConsumers } from "./knots.ts";
import { FILTER_EXEMPT_COLLECTIONS, PULL_COLLECTIONS, type PullEventHandler } from "./pulls.ts";
import { XrpcClient } from "./xrpc.ts";

export { Backoff, type BackoffOptions, sleep } from "./backoff.ts";
export { DidFilter } from "./did-filter.ts";
export { type KnotEnvelope, parseKnotEnvelope } from "./envelope.ts";
export {
  COLLABORATOR_NSID,
  JetstreamHandlers,
  type JetstreamHandlersOptions,
  MEMBER_NSID,
  type Outcome,
  REPO_NSID,
  WANTED_COLLECTIONS,
} from "./handlers.ts";
export {
  createDidDocumentLookup,
  IdentityError,
  type IdentityLookup,
  type ResolvedIdentity,
} from "./identity.ts";
export { JetstreamConsumer, type JetstreamConsumerOptions, type JetstreamEventHandler } from "./jetstream.ts";
export { decodeJetstreamFrame, type JetstreamEvent } from "./jetstream-event.ts";
export { KnotConsumer, type KnotConsumerTuning, type KnotEventHandler } from "./knot-consumer.ts";
export { isValidKnotHost, knotEventsUrl } from "./knot-host.ts";
export { KnotConsumers, type KnotConsumersOptions, PIPELINE_NSID } from "./knots.ts";
export {
  type CommitEvent,
  FILTER_EXEMPT_COLLECTIONS,
  PULL_COLLECTIONS,
  PULL_NSID,
  PULL_STATUS_NSID,
  type PullEventHandler,
} from "./pulls.ts";
export { XrpcClient, XrpcError } from "./xrpc.ts";

export interface CreateIntakeOptions {
  config: Pick<Config, "server">;
  db: DatabaseSync;
  /** The pipeline processor (server core). */
  pipelines: PipelineIntake;
  log: Logger;
  /** Defaults to DID documents from `config.server.plcUrl` (did:web over http in dev mode). */
  identity?: IdentityLookup;
  xrpc?: XrpcClient;
  /** Test knobs for the Jetstream consumer (timings, clock). */
  jetstream?: Partial<Omit<JetstreamConsumerOptions, "endpoint" | "filter" | "cursor" | "handlers" | "log">>;
  /** Test knobs for the knot consumers (timings, clock). */
  knots?: KnotConsumerTuning;
  /** Extra knot-stream handlers by NSID (Gen2: refUpdate, collaboratorUpdate). */
  knotHandlers?: Record<string, KnotEventHandler>;
  /**
   * Gen2 pull requests (gen2 §2.5). When given, Jetstream also delivers `sh.tangled.repo.pull`
   * and `sh.tangled.repo.pull.status`, exempt from the DID filter, to this handler.
   */
  pulls?: PullEventHandler;
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
  const repos = new Repos(opts.db);
  const filter = new DidFilter(server.owner, knownDids);
  const knots = new KnotConsumers({
    ...opts.knots,
    cursors: new KnotCursors(opts.db),
    repos,
    intake: opts.pipelines,
    dev: server.dev,
    log,
    ...(opts.metrics && { metrics: opts.metrics }),
  });
  for (const [nsid, h] of Object.entries(opts.knotHandlers ?? {})) knots.setHandler(nsid, h);
  const handlers = new JetstreamHandlers({
    db: opts.db,
    hostname: server.hostname,
    rbac: new Rbac(opts.db),
    members: new SpindleMembers(opts.db),
    knownDids,
    repos,
    filter,
    identity: opts.identity ?? createDidDocumentLookup({ plcUrl: server.plcUrl, dev: server.dev }),
    // PDS endpoints come from DID documents that record authors control: SSRF-guarded.
    xrpc:
      opts.xrpc ??
      new XrpcClient({ fetch: guardedFetchFunction({ allowPrivate: server.dev, timeoutMs: 5000 }) }),
    knots,
    log,
    ...(opts.pulls !== undefined && { pulls: opts.pulls }),
  });
  const jetstream = new JetstreamConsumer({
    ...opts.jetstream,
    endpoint: server.jetstreamEndpoint,
    filter,
    ...(opts.pulls !== undefined && {
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
