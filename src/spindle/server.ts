/**
 * The spindle server: one class that wires storage, auth, the durable pipeline queue, the engine
 * and the HTTP surface (style: "a library with a thin entry point"). `loom serve` and the tests
 * both use it; tests boot it in-process on port 0.
 *
 * Start-up order: database (migrations) → owner role → secrets provider → engine → queue
 * (reconcile what a previous process left: recover running workflows, start queued ones) →
 * intake (knot streams of known repos, Jetstream) → HTTP listener. Stop reverses it: stop
 * accepting, close streams and intake, close the engine (local runs stop and are recorded
 * failed), let the queue record outcomes, close the database.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join, resolve } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { type Logger, pino } from "pino";
import { Registry } from "prom-client";
import { parseControllerConfig } from "../controller/config.ts";
import { SpindleSetController } from "../controller/controller.ts";
import type { Engine } from "../engine/engine.ts";
import { KubernetesEngine } from "../engine/kubernetes/engine.ts";
import { LocalEngine } from "../engine/local/engine.ts";
import { guardedFetchFunction } from "../net/guarded-fetch.ts";
import { IdentityResolver } from "../net/identity.ts";
import { WorkflowFetcher } from "../net/knot/workflow-fetcher.ts";
import { XrpcClient } from "../net/xrpc-client.ts";
import { FINISHED } from "../protocol/status.ts";
import { TidGenerator } from "../protocol/tid.ts";
import type { RunTracer } from "../telemetry/index.ts";
import { bearerToken, JtiReplayCache, ServiceJwtVerifier, serviceAudiences } from "./auth/index.ts";
import { type Config, ConfigError, schedulerLimits } from "./config/index.ts";
import { CiPipelines } from "./db/ci-pipelines.ts";
import { type DatabaseSync, openDatabase, Repos } from "./db/index.ts";
import { SpindleApp } from "./http/app.ts";
import { ciMethods } from "./http/ci-methods.ts";
import type { StreamOptions } from "./http/events-ws.ts";
import { repoMethods } from "./http/repo-methods.ts";
import { RepoResolver } from "./http/repo-resolver.ts";
import { XrpcRouter } from "./http/router.ts";
import { routeTable } from "./http/routes.ts";
import { ValidatedPipelines } from "./http/validated.ts";
import { type CreateIntakeOptions, createIntake, type Intake } from "./intake/index.ts";
import { PullIntake } from "./intake/pulls.ts";
import { PushDedupe } from "./intake/push-dedupe.ts";
import { RefUpdateIntake } from "./intake/ref-updates.ts";
import { Admission } from "./pipelines/admission.ts";
import { PipelineBuilder, type PipelineBuilderOptions } from "./pipelines/build.ts";
import {
  createMetrics,
  EventLog,
  Ledger,
  PipelineProcessor,
  PipelineStore,
  Scheduler,
  type SpindleMetrics,
} from "./pipelines/index.ts";
import type { PipelineIntake } from "./pipelines/intake-contract.ts";
import { LogRetention } from "./pipelines/log-retention.ts";
import { Rbac } from "./rbac/index.ts";
import { createSecretsProvider, type SecretsProvider } from "./secrets/index.ts";
import { AccessDenied, StatusRoutes } from "./status/routes.ts";

/** The `lxm` a service-auth token for the public status page may name (it may also name none). */
export const STATUS_PAGE_LXM = "dev.loom.statusPage";

export interface SpindleServerOptions {
  config: Config;
  logger?: Logger;
  /**
   * Default: from `config.engine`. For `kubernetes` the server builds a KubernetesEngine and
   * embeds the SpindleSet controller (leader-elected), configured by the config file's
   * `kubernetes` section, with cluster access from KUBECONFIG or the in-cluster account.
   */
  engine?: Engine;
  /** The embedded controller to run beside a caller-supplied engine (tests). */
  controller?: SpindleSetController;
  /** Environment of local runners (steps inherit it). Default: a standard PATH. */
  runnerEnv?: Readonly<Record<string, string>>;
  /** Stream tuning: ping after 30 s of silence, 4 MiB high-water, 30 s stall, 250 ms log poll. */
  stream?: Partial<StreamOptions & { pollMs: number }>;
  /** Clock for status `createdAt` (tests). */
  now?: () => Date;
  motd?: string;
  /**
   * Jetstream and knot consumers (spec §1.2–§1.3). Default on; `false` leaves intake to the
   * caller (tests that feed `pipelines` directly). An object passes test knobs through.
   */
  intake?:
    | false
    | (Pick<CreateIntakeOptions, "jetstream" | "knots"> &
        Partial<Pick<CreateIntakeOptions, "identity" | "xrpc">>);
  /** Traces of runs (src/telemetry, from the OTEL_* variables); the caller shuts it down. */
  tracer?: RunTracer;
  /** Test knobs of the pipelines the spindle builds itself (workflow fetcher, retries, TIDs). */
  builds?: Partial<Pick<PipelineBuilderOptions, "fetcher" | "fetchRetryDelaysMs" | "tids">>;
}

export class SpindleServer {
  readonly config: Config;
  readonly logger: Logger;
  readonly db: DatabaseSync;
  readonly metrics: SpindleMetrics;
  readonly events: EventLog;
  readonly store: PipelineStore;
  readonly scheduler: Scheduler;
  /** What the knot consumers call for each `sh.tangled.pipeline` envelope. */
  readonly pipelines: PipelineIntake;
  readonly engine: Engine;
  /** The embedded SpindleSet controller, with the Kubernetes engine. */
  readonly controller: SpindleSetController | undefined;
  /** Null when constructed with `intake: false`. */
  readonly intake: Intake | null;
  /** Pipelines the spindle builds itself (refUpdate, pulls, triggerPipeline). */
  readonly builder: PipelineBuilder;
  /** The knot handler table: refUpdate, collaboratorUpdate, Gen1 pipelines (with the dedupe). */
  readonly refUpdates: RefUpdateIntake;
  /** The `sh.tangled.ci.*` read side. */
  readonly ciPipelines: CiPipelines;
  readonly #ledger: Ledger;
  readonly #secrets: SecretsProvider;
  readonly #app: SpindleApp;
  readonly #http: Server;
  /** `/metrics`, `/healthz`, `/readyz` on `server.metricsAddr`, when that is set. */
  readonly #operations: Server | undefined;
  #state: "created" | "running" | "stopping" | "stopped" = "created";
  readonly #logRetention: LogRetention | undefined;
  /** The status page (/status) and its event streams. */
  readonly #status: StatusRoutes;
  /** The queue's limits in force (with the Kubernetes engine, defaults follow its capacity). */
  readonly #limits: { maxJobCount: number; queueSize: number; maxJobCountPerRepo: number | null };
  /** The embedded controller's start: its informers list until they succeed (or it throws). */
  #controllerState: "starting" | "synced" | "failed" = "starting";

  /**
   * The composition root: every shared dependency (database wrappers, identity resolver, PDS
   * client, knot workflow fetcher, TID clock, admission, builder, dedupe, router) is built here,
   * once, and passed down.
   */
  private constructor(p: {
    opts: SpindleServerOptions;
    logger: Logger;
    db: DatabaseSync;
    secrets: SecretsProvider;
    engine: Engine;
    controller: SpindleSetController | undefined;
  }) {
    const { config } = p.opts;
    const { server } = config;
    this.config = config;
    this.logger = p.logger;
    this.db = p.db;
    this.#secrets = p.secrets;
    this.engine = p.engine;
    this.controller = p.controller;
    this.metrics = createMetrics();
    this.events = new EventLog(this.db);
    this.store = new PipelineStore(this.db);
    const repos = new Repos(this.db);
    const rbac = new Rbac(this.db);
    this.ciPipelines = new CiPipelines(this.db);
    this.#ledger = new Ledger({
      db: this.db,
      store: this.store,
      events: this.events,
      metrics: this.metrics,
      ...(p.opts.now ? { now: p.opts.now } : {}),
    });
    const limits = schedulerLimits(
      server,
      this.engine.name === "kubernetes" ? clusterCapacity(config) : null,
    );
    this.#limits = { ...limits, maxJobCountPerRepo: server.maxJobCountPerRepo };
    this.scheduler = new Scheduler({
      ledger: this.#ledger,
      engine: this.engine,
      secrets: this.#secrets,
      metrics: this.metrics,
      logger: this.logger.child({ component: "queue" }),
      logDir: server.logDir,
      maxJobCount: limits.maxJobCount,
      maxJobCountPerRepo: server.maxJobCountPerRepo,
      tracer: p.opts.tracer,
    });
    this.#logRetention =
      server.logRetentionMs > 0
        ? new LogRetention({
            logDir: server.logDir,
            retentionMs: server.logRetentionMs,
            isUnfinished: (wid) => {
              const run = this.store.runByWid(wid);
              return run !== null && !FINISHED.has(run.status);
            },
            removed: this.metrics.logFilesRemoved,
            logger: this.logger.child({ component: "log-retention" }),
          })
        : undefined;
    const admission = new Admission({
      ledger: this.#ledger,
      secrets: this.#secrets,
      metrics: this.metrics,
      logger: this.logger.child({ component: "pipelines" }),
      queueSize: limits.queueSize,
      resolve: {
        dev: server.dev,
        // host.docker.internal only means something inside a container (issue 11).
        stepsOnHost: this.engine.name === "local",
        nixeryHost: config.nixery.registry,
        timeoutSeconds: Math.max(1, Math.ceil(config.nixery.workflowTimeoutMs / 1000)),
      },
      onQueued: () => this.scheduler.wake(),
      tracer: p.opts.tracer,
    });
    this.pipelines = new PipelineProcessor({
      admission,
      repos,
      metrics: this.metrics,
      logger: this.logger.child({ component: "pipelines" }),
    });
    this.builder = new PipelineBuilder({
      admission,
      fetcher:
        p.opts.builds?.fetcher ??
        new WorkflowFetcher({
          cacheDir: `${server.repoDir}/gen2`,
          // Knots named by repo records are checked against private ranges unless in dev mode.
          ...(server.dev && { guard: { allowPrivate: true } }),
        }),
      tids: p.opts.builds?.tids ?? new TidGenerator(),
      hostname: server.hostname,
      dev: server.dev,
      ...(p.opts.builds?.fetchRetryDelaysMs !== undefined && {
        fetchRetryDelaysMs: p.opts.builds.fetchRetryDelaysMs,
      }),
      logger: this.logger.child({ component: "builds" }),
    });
    // One DID resolver and cache for the process: service auth, intake, pulls, repo lookups.
    const identity = new IdentityResolver({ plcUrl: server.plcUrl, dev: server.dev });
    // PDS endpoints come from DID documents that record authors control: SSRF-guarded.
    const pdsXrpc = new XrpcClient({
      fetch: guardedFetchFunction({ allowPrivate: server.dev, timeoutMs: 5000 }),
    });
    const verifier = new ServiceJwtVerifier({ resolver: identity, replay: new JtiReplayCache(this.db) });
    const stream = {
      pingMs: 30_000,
      highWaterBytes: 4 << 20,
      stallMs: 30_000,
      pollMs: 250,
      ...p.opts.stream,
    };
    this.refUpdates = new RefUpdateIntake({
      repos,
      rbac,
      builder: this.builder,
      dedupe: new PushDedupe(this.ciPipelines, server.hostname),
      pipelines: this.pipelines,
      metrics: this.metrics,
      log: this.logger.child({ component: "refupdates" }),
    });
    const pulls = new PullIntake({
      ciPipelines: this.ciPipelines,
      repos,
      rbac,
      identity,
      xrpc: pdsXrpc,
      blobFetch: { allowPrivate: server.dev },
      hostname: server.hostname,
      builder: this.builder,
      log: this.logger.child({ component: "intake" }),
    });
    this.intake =
      p.opts.intake === false
        ? null
        : createIntake({
            config,
            db: this.db,
            pipelines: this.pipelines,
            log: this.logger,
            identity,
            xrpc: pdsXrpc,
            rbac,
            repos,
            builds: { refUpdates: this.refUpdates, pulls },
            metrics: this.metrics,
            onKnotRowSkipped: (reason) => this.metrics.knotRowsSkipped.inc({ reason }),
            ...(p.opts.intake ?? {}),
          });
    const xrpc = new XrpcRouter({
      methods: {
        ...repoMethods({
          rbac,
          secrets: this.#secrets,
          repos: new RepoResolver({ repos, identity, dev: server.dev }),
          store: this.store,
          scheduler: this.scheduler,
          logger: this.logger.child({ component: "xrpc" }),
        }),
        ...ciMethods({
          ciPipelines: this.ciPipelines,
          validated: new ValidatedPipelines(),
          store: this.store,
          repos,
          rbac,
          builder: this.builder,
          scheduler: this.scheduler,
          logger: this.logger.child({ component: "ci" }),
        }),
      },
      verifier,
      audiences: serviceAudiences(server.hostname),
      metrics: this.metrics,
      logger: this.logger.child({ component: "xrpc" }),
    });
    this.#status = new StatusRoutes({
      db: this.db,
      store: this.store,
      logDir: server.logDir,
      scheduler: this.scheduler,
      maxJobCount: limits.maxJobCount,
      intake: this.intake,
      subscribe: (fn) => this.events.subscribe(fn),
      logger: this.logger.child({ component: "status" }),
      ...(p.opts.now && { now: () => p.opts.now!().getTime() }),
    });
    const routes = routeTable({
      xrpc,
      events: this.events,
      store: this.store,
      ciPipelines: this.ciPipelines,
      logDir: server.logDir,
      metrics: this.metrics,
      // Registry.merge keeps the metric objects, so the merged registry reads live values.
      exposition: this.controller
        ? Registry.merge([this.metrics.registry, this.controller.metrics.registry])
        : this.metrics.registry,
      metricsElsewhere: server.metricsListen !== null,
      hostname: server.hostname,
      dev: server.dev,
      logger: this.logger.child({ component: "http" }),
      stream,
      ...(p.opts.motd !== undefined ? { motd: p.opts.motd } : {}),
      status: {
        operations: this.#status.routes(),
        // The public port: only when the operator asks, and only for the owner (service auth).
        public: server.statusPagePublic
          ? this.#status.routes(async (req) => {
              const auth = await verifier.verify(bearerToken(req.headers.authorization), {
                audiences: serviceAudiences(server.hostname),
                method: STATUS_PAGE_LXM,
              });
              if (!rbac.isOwner(auth.iss))
                throw new AccessDenied(403, "the status page is the spindle owner's");
            })
          : [],
      },
      notReady: () => {
        if (this.#state !== "running") return `the server is ${this.#state}`;
        if (this.controller && this.#controllerState !== "synced")
          return this.#controllerState === "starting"
            ? "the SpindleSet controller's caches are not synced yet"
            : "the SpindleSet controller failed to start (see the log)";
        return null;
      },
    });
    this.#app = new SpindleApp(routes, this.logger.child({ component: "http" }));
    this.#http = createServer({ requestTimeout: 60_000, headersTimeout: 15_000 }, this.#app.onRequest);
    this.#http.on("upgrade", this.#app.onUpgrade);
    this.#operations = server.metricsListen
      ? createServer({ requestTimeout: 30_000, headersTimeout: 15_000 }, this.#app.onOperationsRequest)
      : undefined;
    this.#http.on("clientError", (_err, socket) => {
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    });
  }

  static async create(opts: SpindleServerOptions): Promise<SpindleServer> {
    const { config } = opts;
    const logger = opts.logger ?? pino({ name: "loom-spindle" });
    const db = openDatabase(config.server.dbPath);
    try {
      new Rbac(db).setOwner(config.server.owner);
      const secrets = await createSecretsProvider(config, db);
      const built = opts.engine
        ? { engine: opts.engine, controller: opts.controller }
        : createEngine(
            config,
            logger,
            opts.runnerEnv,
            (knot, rkey) => server?.store.pipelineExists(knot, rkey) ?? true,
          );
      const server: SpindleServer = new SpindleServer({ opts, logger, db, secrets, ...built });
      return server;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Reconciles the queue, then listens. Resolves with the base URL. */
  async start(): Promise<string> {
    if (this.#state !== "created") throw new Error(`cannot start a ${this.#state} server`);
    // A missing CRD or RBAC is an installation mistake: say so and refuse to start, rather than
    // serve while every run waits on a controller that retries forever.
    await this.controller?.preflight();
    if (this.controller) {
      // In the background: its caches sync and its Lease is won while the server already
      // serves; until then SpindleSets simply wait. A failure to start is logged, not fatal,
      // so the spindle keeps answering and its readiness (/readyz) tells the operator.
      this.controller.start().then(
        () => {
          this.#controllerState = "synced";
        },
        (err: Error) => {
          this.#controllerState = "failed";
          this.logger.error({ err }, "controller failed to start");
        },
      );
    }
    this.scheduler.start();
    this.#logRetention?.start();
    this.intake?.start();
    await listen(this.#http, this.config.server.listen);
    if (this.#operations && this.config.server.metricsListen) {
      await listen(this.#operations, this.config.server.metricsListen).catch((err: Error) => {
        this.#http.close();
        throw new Error(`cannot listen on SPINDLE_SERVER_METRICS_ADDR: ${err.message}`, { cause: err });
      });
    }
    this.#state = "running";
    this.logger.info(
      {
        url: this.url,
        did: this.config.server.did,
        engine: this.engine.name,
        queue: this.#limits,
        ...(this.metricsUrl && { metrics: `${this.metricsUrl}/metrics` }),
      },
      "spindle listening",
    );
    return this.url;
  }

  /** `http://host:port` the server listens on. */
  get url(): string {
    return urlOf(this.#http);
  }

  /** `http://host:port` of the operations listener, or null when `/metrics` is on `url`. */
  get metricsUrl(): string | null {
    return this.#operations?.listening ? urlOf(this.#operations) : null;
  }

  async stop(): Promise<void> {
    if (this.#state === "stopping" || this.#state === "stopped") return;
    this.#state = "stopping";
    const closed = new Promise<void>((res) => this.#http.close(() => res()));
    this.#app.close();
    this.#status.close();
    this.#http.closeIdleConnections();
    await this.intake?.stop();
    this.scheduler.pause();
    await this.engine.close();
    await this.controller?.stop();
    await this.scheduler.stop();
    await this.#logRetention?.stop();
    this.#ledger.close();
    this.#http.closeAllConnections();
    this.#operations?.close();
    this.#operations?.closeAllConnections();
    await closed;
    await this.#secrets.stop();
    this.db.close();
    this.#state = "stopped";
    this.logger.info("spindle stopped");
  }
}

function listen(server: Server, at: { host: string; port: number }): Promise<void> {
  return new Promise<void>((res, rej) => {
    server.once("error", rej);
    server.listen(at.port, at.host, () => {
      server.off("error", rej);
      res();
    });
  });
}

function urlOf(server: Server): string {
  const addr = server.address() as AddressInfo | null;
  if (!addr) throw new Error("not listening");
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  return `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${addr.port}`;
}

/** `kubernetes.maxConcurrentJobs` (the cluster's Job slots), or null when the section is invalid. */
function clusterCapacity(config: Config): number | null {
  try {
    return parseControllerConfig(config.kubernetes, "kubernetes", config.kubernetesTopLevel)
      .maxConcurrentJobs;
  } catch {
    return null;
  }
}

function createEngine(
  config: Config,
  logger: Logger,
  runnerEnv: Readonly<Record<string, string>> | undefined,
  isKnown: (knot: string, rkey: string) => boolean,
): { engine: Engine; controller: SpindleSetController | undefined } {
  if (config.engine === "kubernetes") {
    let k8s: ReturnType<typeof parseControllerConfig>;
    try {
      k8s = parseControllerConfig(config.kubernetes, "kubernetes", config.kubernetesTopLevel);
    } catch (err) {
      throw new ConfigError("LOOM_CONFIG", (err as Error).message);
    }
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromDefault();
    const engine = new KubernetesEngine({
      kubeConfig,
      namespace: k8s.namespace,
      logger: logger.child({ component: "engine" }),
      runnerSilentSeconds: k8s.timeouts.runnerSilentSeconds,
      placing: k8s.workers,
    });
    const controller = SpindleSetController.create({
      kubeConfig,
      config: k8s,
      log: logger.child({ component: "controller" }),
      isKnown,
      leaderElection: {},
    });
    return { engine, controller };
  }
  const baseDir = join(dirname(resolve(config.server.dbPath)), "runs");
  return {
    engine: new LocalEngine({ baseDir, ...(runnerEnv ? { env: runnerEnv } : {}) }),
    controller: undefined,
  };
}
