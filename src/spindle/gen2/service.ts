/**
 * Generation 2 wired into the spindle server (gen2 §2.2–§2.10). One object the server builds
 * next to the Gen1 parts, sharing their storage (the `pipelines`/`workflow_runs` tables, the
 * Ledger, the scheduler, RBAC, secrets). It provides:
 *
 * - `xrpcMethods()`: `sh.tangled.ci.{queryPipelines,getPipeline,describeWorkflowDefinition,
 *   triggerPipeline,cancelPipeline,subscribePipelineLogs}` (the last only answers plain GETs with
 *   400; the stream itself is `handleUpgrade`);
 * - `knotHandlers()`: `sh.tangled.git.refUpdate` → build a pipeline (gen2 §2.4),
 *   `sh.tangled.repo.collaboratorUpdate` → push grants, and a wrapper around the Gen1
 *   `sh.tangled.pipeline` handler for the Gen1/Gen2 dedupe below;
 * - `pullHandler()`: Jetstream `sh.tangled.repo.pull{,.status}` → a pull_request pipeline
 *   (gen2 §2.5, pulls.ts), sharing the trusted build with refUpdate;
 * - `handleRequest()`: `/.well-known/did.json` (gen2 §2.1);
 * - `handleUpgrade()`: the subscribePipelineLogs WebSocket (gen2 §2.8).
 *
 * ONE PUSH, TWO EVENTS. A Gen2 knot emits, per pushed ref, a `sh.tangled.git.refUpdate` and then
 * still a Gen1 `sh.tangled.pipeline` (gen2 §1 backward compatibility). Both would run. The rule:
 * Gen2 wins. The key is (repo DID, commit, ref) of a push:
 *  - every refUpdate handled (built, skipped by skip-ci, or no workflow matched) marks its key
 *    as decided in memory for DEDUPE_WINDOW_MS, and is itself skipped when a push pipeline with
 *    that key was stored within the window (a replay, or the Gen1 event came first);
 *  - a Gen1 push pipeline whose key was decided by a refUpdate, or built by this spindle within
 *    the window, is dropped (logged, counted as `duplicate`).
 * The knot sends the refUpdate first and a knot's events are handled one at a time, so the
 * in-memory mark is set before the Gen1 event is looked at; the database check covers restarts.
 * GUESS: the window (1 h) — long enough for any replay, short enough that a deliberate re-push
 * of the same commit to the same ref later runs again.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { StatementSync } from "node:sqlite";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { WebSocketServer } from "ws";
import {
  COLLABORATOR_UPDATE_NSID,
  compileGen2,
  DispatchError,
  decidePush,
  describeWorkflowDefinition,
  type FetchedWorkflows,
  getDefaultBranch,
  KnotError,
  type KnownRepo,
  LexiconValidationError,
  parseCollaboratorUpdate,
  parseRefUpdate,
  pipelineAtUri,
  REF_UPDATE_NSID,
  selectWorkflows,
  spindleDidDocument,
  TidGenerator,
  triggerFromCiInput,
  validate,
  WireError,
  WorkflowFetcher,
} from "../../gen2/index.ts";
import { guardedFetchFunction } from "../../net/guarded-fetch.ts";
import { formatDiagnostic } from "../../workflow/compile.ts";
import type { ServiceJwtVerifier } from "../auth/index.ts";
import { bearerToken } from "../auth/index.ts";
import type { Config } from "../config.ts";
import { type RepoRecord, Repos } from "../db/index.ts";
import { AccessControlError, missingActorDidError, XrpcError } from "../errors.ts";
import { readJsonObject } from "../http/body.ts";
import type { XrpcMethod } from "../http/xrpc.ts";
import type { KnotEnvelope } from "../intake/envelope.ts";
import { createDidDocumentLookup, type IdentityLookup } from "../intake/identity.ts";
import type { KnotEventHandler } from "../intake/knot-consumer.ts";
import type { PullEventHandler } from "../intake/pulls.ts";
import { XrpcClient } from "../intake/xrpc.ts";
import type { EventLog } from "../pipelines/event-log.ts";
import type { PipelineIntake } from "../pipelines/intake-contract.ts";
import type { Ledger } from "../pipelines/ledger.ts";
import type { SpindleMetrics } from "../pipelines/metrics.ts";
import type { Scheduler } from "../pipelines/scheduler.ts";
import type { PipelineStore } from "../pipelines/store.ts";
import { type Rbac, type RepoRef, repoScopeKey } from "../rbac/index.ts";
import type { SecretsProvider } from "../secrets/index.ts";
import { Gen2Acceptor } from "./accept.ts";
import { handleLogsUpgrade, resolveLogRequest } from "./logs.ts";
import { PullIntake, type TrustedBuild, type TrustedBuildResult } from "./pulls.ts";
import { CiQuery } from "./query.ts";
import { ValidatedPipelines } from "./validated.ts";

export const DEDUPE_WINDOW_MS = 60 * 60 * 1000;
/** GUESS: the name of the one workflow a pipeline gets when its workflows could not be read. */
export const FETCH_FAILED_WORKFLOW = "fetch-workflows";
const PIPELINE_NSID = "sh.tangled.pipeline";

export interface Gen2ServiceOptions {
  config: Pick<Config, "server" | "nixery">;
  ledger: Ledger;
  store: PipelineStore;
  events: EventLog;
  scheduler: Scheduler;
  secrets: SecretsProvider;
  metrics: SpindleMetrics;
  rbac: Rbac;
  verifier: ServiceJwtVerifier;
  audiences: readonly string[];
  logger: Logger;
  /** The Gen1 pipeline processor (what `sh.tangled.pipeline` goes to when not a duplicate). */
  gen1: PipelineIntake;
  stream: { pingMs: number; pollMs: number; highWaterBytes: number; stallMs: number };
  /** Default: a WorkflowFetcher caching under `<repoDir>/gen2`. */
  fetcher?: WorkflowFetcher;
  /** Knot fetch retries before a pipeline is recorded failed (delays in ms). Default [1000, 3000]. */
  fetchRetryDelaysMs?: readonly number[];
  tids?: TidGenerator;
  /** Pull authors' DID documents (gen2 §2.5). Default: from `config.server.plcUrl`. */
  identity?: IdentityLookup;
  /** Reads pull records from authors' PDSes. Default: through the SSRF guard (private in dev). */
  pullXrpc?: XrpcClient;
}

const invalid = (message: string, cause?: unknown) =>
  new XrpcError(400, "InvalidRequest", message, cause === undefined ? undefined : { cause });

export class Gen2Service {
  readonly query: CiQuery;
  readonly acceptor: Gen2Acceptor;
  readonly fetcher: WorkflowFetcher;
  readonly #o: Gen2ServiceOptions;
  readonly #log: Logger;
  readonly #repos: Repos;
  readonly #tids: TidGenerator;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false });
  readonly #recentPush: StatementSync;
  readonly #recentBuiltPush: StatementSync;
  /** key → ms when a refUpdate decided it (see the header). */
  readonly #decided = new Map<string, number>();
  readonly #dev: boolean;
  readonly #hostname: string;
  readonly #validated = new ValidatedPipelines();

  constructor(o: Gen2ServiceOptions) {
    this.#o = o;
    this.#log = o.logger;
    this.#dev = o.config.server.dev;
    this.#hostname = o.config.server.hostname;
    this.#repos = new Repos(o.ledger.db);
    this.#tids = o.tids ?? new TidGenerator();
    this.query = new CiQuery(o.ledger.db);
    this.fetcher =
      o.fetcher ??
      new WorkflowFetcher({
        cacheDir: `${o.config.server.repoDir}/gen2`,
        // Knots named by repo records are checked against private ranges unless in dev mode.
        ...(this.#dev && { guard: { allowPrivate: true } }),
      });
    this.acceptor = new Gen2Acceptor({
      ledger: o.ledger,
      secrets: o.secrets,
      metrics: o.metrics,
      logger: o.logger,
      hostname: this.#hostname,
      queueSize: o.config.server.queueSize,
      dev: this.#dev,
      nixeryHost: o.config.nixery.registry,
      timeoutSeconds: Math.max(1, Math.ceil(o.config.nixery.workflowTimeoutMs / 1000)),
      onQueued: () => o.scheduler.wake(),
    });
    const recent = `SELECT 1 FROM ci_pipelines c JOIN pipelines p ON p.id = c.pipeline_id
      WHERE c.repo_did = ? AND c.commit_sha = ? AND c.kind = 'push' AND c.ref = ? AND c.created_ns > ?`;
    this.#recentPush = o.ledger.db.prepare(`${recent} LIMIT 1`);
    this.#recentBuiltPush = o.ledger.db.prepare(`${recent} AND p.knot = ? LIMIT 1`);
  }

  // ---- HTTP hooks --------------------------------------------------------------------------

  /** Answers `/.well-known/did.json`; false for any other path. */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/.well-known/did.json") return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET", "content-type": "text/plain; charset=utf-8" });
      res.end("Method Not Allowed\n");
      return true;
    }
    const body = JSON.stringify(spindleDidDocument(this.#hostname, { dev: this.#dev }));
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(req.method === "HEAD" ? undefined : body);
    return true;
  }

  /** Takes the subscribePipelineLogs upgrade; false for any other path. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? "/", "http://spindle.invalid");
    if (url.pathname !== "/xrpc/sh.tangled.ci.subscribePipelineLogs" || req.method !== "GET") return false;
    socket.on("error", () => {});
    handleLogsUpgrade(req, socket, head, url, this.#wss, {
      query: this.query,
      store: this.#o.store,
      metrics: this.#o.metrics,
      logDir: this.#o.config.server.logDir,
      logger: this.#log,
      subscribe: (fn) => this.#o.events.subscribe(fn),
      ...this.#o.stream,
    });
    return true;
  }

  close(): void {
    for (const ws of this.#wss.clients) ws.close(1001, "server shutting down");
    setTimeout(() => {
      for (const ws of this.#wss.clients) ws.terminate();
    }, 1000).unref();
    this.#wss.close();
  }

  // ---- XRPC ----------------------------------------------------------------------------------

  xrpcMethods(): Record<string, XrpcMethod> {
    const json = (res: ServerResponse, value: unknown) => {
      const body = JSON.stringify(value);
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
    };
    const params = <T>(fn: (s: URLSearchParams) => T, url: URL): T => {
      try {
        return fn(url.searchParams);
      } catch (err) {
        if (err instanceof LexiconValidationError) throw invalid(err.message, err);
        throw err;
      }
    };
    return {
      "sh.tangled.ci.queryPipelines": {
        http: "GET",
        handle: async (_req, res, url) => {
          const p = params(validate.queryPipelinesParams, url);
          if (p.cursor !== undefined && !/^[0-9]{1,19}$/.test(p.cursor)) {
            throw invalid(`cursor must be a decimal number of nanoseconds, got ${JSON.stringify(p.cursor)}`);
          }
          if ((p.commits?.length ?? 0) > 1000) throw invalid("at most 1000 commits per query");
          // The lexicon's default (50) is filled in by validation; upstream's code uses 30.
          const out = this.query.query({ ...p, limit: p.limit ?? 50 });
          // The envelope is checked as a whole, each pipeline through the memo (validated.ts).
          validate.queryPipelinesOutput({ ...out, pipelines: [] });
          const items: string[] = [];
          for (const pipeline of out.pipelines) {
            try {
              items.push(this.#validated.json(pipeline));
            } catch (err) {
              // One odd stored record must not take the repo's whole pipelines page down.
              this.#log.error(
                { id: pipeline.id, err: (err as Error).message },
                "stored pipeline fails the lexicon; left out",
              );
            }
          }
          const cursor = out.cursor === undefined ? "" : `,"cursor":${JSON.stringify(out.cursor)}`;
          const body = `{"pipelines":[${items.join(",")}],"total":${out.total}${cursor}}`;
          res.writeHead(200, {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
          });
          res.end(body);
        },
      },
      "sh.tangled.ci.getPipeline": {
        http: "GET",
        handle: async (_req, res, url) => {
          const p = params(validate.getPipelineParams, url);
          // Upstream answers 500 GenericError here; the lexicon names PipelineNotFound.
          const pipeline = this.query.get(p.pipeline);
          // A Gen1 pipeline of a repo whose record names no DID (late-2025 repos) has no answer
          // as a ci.pipeline (`repo` is a required DID): left out, as queryPipelines never lists it.
          if (pipeline === null || pipeline.repo === "")
            throw new XrpcError(404, "PipelineNotFound", `pipeline ${p.pipeline} not found`);
          let body: string;
          try {
            body = this.#validated.json(pipeline);
          } catch (err) {
            if (!(err instanceof LexiconValidationError)) throw err;
            // Stored data that fails the lexicon is left out, as queryPipelines does: never a 500.
            this.#log.error(
              { id: pipeline.id, err: err.message },
              "stored pipeline fails the lexicon; left out",
            );
            throw new XrpcError(404, "PipelineNotFound", `pipeline ${p.pipeline} not found`);
          }
          res.writeHead(200, {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
          });
          res.end(body);
        },
      },
      "sh.tangled.ci.describeWorkflowDefinition": {
        http: "GET",
        handle: async (_req, res, url) => {
          const p = params(validate.describeWorkflowDefinitionParams, url);
          const repo = this.#repoByDid(p.repo);
          // GUESS: a fork (sourceRepo) is served by the target repo's knot.
          const fetched = await this.#fetchForXrpc(repo.knot, p.sourceRepo ?? p.repo, p.sha);
          json(res, validate.describeWorkflowDefinitionOutput(describeWorkflowDefinition(fetched.files)));
        },
      },
      "sh.tangled.ci.subscribePipelineLogs": {
        http: "GET",
        // A plain GET (no upgrade): the same parameter errors, else "this is a WebSocket".
        handle: async (_req, res, url) => {
          const r = resolveLogRequest(url, { query: this.query, store: this.#o.store });
          const [status, body] = r.ok
            ? [400, { error: "BadRequest", message: "subscribePipelineLogs is a WebSocket endpoint" }]
            : [r.status, { error: r.error, message: r.message }];
          const text = JSON.stringify(body);
          res.writeHead(status, {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(text),
          });
          res.end(text);
        },
      },
      "sh.tangled.ci.triggerPipeline": {
        http: "POST",
        handle: async (req, res) => {
          const method = "sh.tangled.ci.triggerPipeline";
          const who = await this.#actor(req, method);
          let input: ReturnType<typeof validate.triggerPipelineInput>;
          try {
            input = validate.triggerPipelineInput(await readJsonObject(req));
          } catch (err) {
            if (err instanceof LexiconValidationError) throw invalid(err.message, err);
            throw err;
          }
          const repo = this.#repoByDid(input.repo);
          const ref = repoRef(repo);
          if (!this.#o.rbac.canPush(who, ref)) throw new AccessControlError(who, 400);
          const known = await this.#knownRepo(repo, input.repo);
          let trigger: ReturnType<typeof triggerFromCiInput>;
          try {
            trigger = triggerFromCiInput(input, known);
          } catch (err) {
            if (err instanceof DispatchError) throw invalid(err.message, err);
            throw err;
          }
          const fork = trigger.sourceRepo;
          const sha = trigger.manual?.sha ?? trigger.pullRequest?.sourceSha ?? "";
          // GUESS: a fork lives on the target repo's knot (the trigger names no knot for it).
          const fetched = await this.#fetchForXrpc(repo.knot, fork ?? input.repo, sha);
          let files: ReturnType<typeof selectWorkflows>;
          try {
            files = selectWorkflows(fetched.files, input.workflows);
          } catch (err) {
            if (err instanceof DispatchError) throw invalid(err.message, err);
            throw err;
          }
          const { record, diagnostics } = compileGen2(files, trigger);
          if (record === undefined) {
            const why = diagnostics
              .map((d) => `${d.file ?? ""}: ${d.message}`)
              .slice(0, 3)
              .join("; ");
            throw invalid(`no workflow to run at ${sha}${why === "" ? "" : ` (${why})`}`);
          }
          const tid = this.#tids.next();
          await this.acceptor.accept({
            tid,
            record,
            scope: repoScopeKey(ref),
            untrusted: fork !== undefined,
            ...(fork !== undefined && { cloneUrl: `${this.#dev ? "http" : "https"}://${repo.knot}/${fork}` }),
          });
          this.#log.info(
            { method, actor: who, repo: input.repo, tid, fork: fork ?? null },
            "pipeline triggered",
          );
          json(res, validate.triggerPipelineOutput({ pipeline: pipelineAtUri(this.#hostname, tid) }));
        },
      },
      "sh.tangled.ci.cancelPipeline": {
        http: "POST",
        handle: async (req, res) => {
          const method = "sh.tangled.ci.cancelPipeline";
          const who = await this.#actor(req, method);
          let input: ReturnType<typeof validate.cancelPipelineInput>;
          try {
            input = validate.cancelPipelineInput(await readJsonObject(req));
          } catch (err) {
            if (err instanceof LexiconValidationError) throw invalid(err.message, err);
            throw err;
          }
          const repo = this.#repoByDid(input.repo);
          if (!this.#o.rbac.canPush(who, repoRef(repo))) throw new AccessControlError(who, 400);
          const row = this.query.row(input.pipeline);
          // A pipeline of another repo is answered as unknown: it says nothing about that repo.
          if (row === null || row.repoDid !== input.repo) {
            throw new XrpcError(404, "PipelineNotFound", `pipeline ${input.pipeline} not found`);
          }
          const all = this.#o.store.runsOf(row.pipelineId).map((r) => r.name);
          const names = input.workflows !== undefined && input.workflows.length > 0 ? input.workflows : all;
          const unknown = names.filter((n) => !all.includes(n));
          // GUESS: naming a workflow the pipeline does not have is a 400 (upstream unknown).
          if (unknown.length > 0)
            throw invalid(`pipeline ${input.pipeline} has no workflow ${unknown.join(", ")}`);
          const results: Record<string, string> = {};
          for (const name of names) results[name] = await this.#o.scheduler.cancel(row.knot, row.tid, name);
          this.#log.info({ method, actor: who, tid: row.tid, results }, "cancel requested");
          res.writeHead(200, { "content-length": 0 });
          res.end();
        },
      },
    };
  }

  async #actor(req: IncomingMessage, method: string): Promise<string> {
    const auth = await this.#o.verifier.verify(bearerToken(req.headers.authorization), {
      audiences: this.#o.audiences,
      method,
    });
    if (!auth.iss) throw missingActorDidError();
    return auth.iss;
  }

  #repoByDid(repoDid: string): RepoRecord {
    const repo = this.#repos.byDid(repoDid);
    if (repo === null)
      throw new XrpcError(400, "RepoNotFound", `repo ${repoDid} is not served by this spindle`);
    return repo;
  }

  async #fetchForXrpc(knot: string, repoDid: string, sha: string): Promise<FetchedWorkflows> {
    try {
      return await this.fetcher.fetchWorkflows({ knot, repoDid, sha, dev: this.#dev });
    } catch (err) {
      if (err instanceof KnotError) {
        const status = err.code === "KnotUnreachable" || err.code === "Timeout" ? 502 : 400;
        throw new XrpcError(status, "InvalidRequest", `could not read workflows at ${sha}: ${err.message}`, {
          cause: err,
        });
      }
      throw err;
    }
  }

  /** What a trigger says about the repo, the default branch asked of its knot. */
  async #knownRepo(repo: RepoRecord, repoDid: string): Promise<KnownRepo> {
    return {
      knot: repo.knot,
      ownerDid: repo.owner,
      repoDid,
      rkey: repo.rkey ?? "",
      defaultBranch: await this.#defaultBranch(repo.knot, repoDid),
    };
  }

  async #defaultBranch(knot: string, repoDid: string): Promise<string> {
    try {
      return (await getDefaultBranch(knot, repoDid, { dev: this.#dev })).name;
    } catch (err) {
      // Only `TANGLED_REPO_DEFAULT_BRANCH` and `when` on it depend on this; "" means unknown.
      this.#log.warn({ knot, repoDid, err: (err as Error).message }, "default branch unknown");
      return "";
    }
  }

  // ---- Jetstream pulls (gen2 §2.5) -----------------------------------------------------------

  /** What intake hands `sh.tangled.repo.pull{,.status}` commits to (see pulls.ts). */
  pullHandler(): PullEventHandler {
    const { server } = this.#o.config;
    const guard = { allowPrivate: this.#dev };
    return new PullIntake({
      db: this.#o.ledger.db,
      repos: this.#repos,
      rbac: this.#o.rbac,
      identity: this.#o.identity ?? createDidDocumentLookup({ plcUrl: server.plcUrl, dev: this.#dev }),
      xrpc:
        this.#o.pullXrpc ?? new XrpcClient({ fetch: guardedFetchFunction({ ...guard, timeoutMs: 5000 }) }),
      blobFetch: guard,
      hostname: this.#hostname,
      knownRepo: (repo, repoDid) => this.#knownRepo(repo, repoDid),
      build: (b) => this.#buildTrusted(b),
      log: this.#log,
    });
  }

  // ---- knot intake ---------------------------------------------------------------------------

  knotHandlers(): Record<string, KnotEventHandler> {
    return {
      [REF_UPDATE_NSID]: (knot, env) => this.onRefUpdate(knot, env),
      [COLLABORATOR_UPDATE_NSID]: async (knot, env) => this.#onCollaboratorUpdate(knot, env),
      [PIPELINE_NSID]: (knot, env) => this.#onGen1Pipeline(knot, env),
    };
  }

  /** gen2 §2.4. Resolves once the pipeline is stored (or deliberately not built). */
  async onRefUpdate(knot: string, env: KnotEnvelope): Promise<void> {
    const ctx = { knot, rkey: env.rkey, created: env.created };
    if (isOlderRefUpdate(env.event)) {
      // Late-2025 knots: the Gen1 sh.tangled.pipeline event that follows runs the push.
      this.#log.debug(
        {
          ...ctx,
          reason: "older refUpdate shape (repoDid/repoName, no repo); the Gen1 pipeline event runs it",
        },
        "refUpdate ignored",
      );
      return;
    }
    let ev: ReturnType<typeof parseRefUpdate>;
    try {
      ev = parseRefUpdate(env.event);
    } catch (err) {
      if (err instanceof WireError) {
        this.#log.warn({ ...ctx, err: err.message }, "refUpdate dropped: invalid");
        return;
      }
      throw err;
    }
    const repo = this.#repos.byDid(ev.repo);
    if (repo === null) {
      this.#log.info({ ...ctx, repo: ev.repo }, "refUpdate ignored: repo not served by this spindle");
      return;
    }
    if (repo.knot !== knot) {
      this.#log.warn(
        { ...ctx, repo: ev.repo, repoKnot: repo.knot },
        "refUpdate ignored: not from the repo's knot",
      );
      return;
    }
    const key = pushKey(ev.repo, ev.newSha, ev.ref);
    if (this.#recentPush.get(ev.repo, ev.newSha, ev.ref, sinceNs()) !== undefined) {
      this.#decided.set(key, Date.now());
      this.#o.metrics.pipelines.inc({ result: "duplicate", reason: "" });
      this.#log.info(
        { ...ctx, sha: ev.newSha, ref: ev.ref },
        "refUpdate skipped: this push already has a pipeline",
      );
      return;
    }
    this.#markDecided(key);
    const known: KnownRepo = {
      knot,
      ownerDid: repo.owner,
      repoDid: ev.repo,
      rkey: repo.rkey ?? "",
      defaultBranch: "",
    };
    const first = decidePush(ev, known);
    if (!first.build) {
      this.#log.info({ ...ctx, reason: first.reason }, "refUpdate: nothing to build");
      return;
    }
    known.defaultBranch = await this.#defaultBranch(knot, ev.repo);
    const d = decidePush(ev, known);
    if (!d.build) return;
    await this.#buildTrusted({
      repo,
      trigger: d.trigger,
      sha: d.sha,
      ...(d.changedFiles !== undefined && { changedFiles: d.changedFiles }),
      ctx: { ...ctx, what: "refUpdate" },
    });
  }

  /**
   * The trusted (same-repo) path shared by refUpdate (gen2 §2.4) and Jetstream pulls (§2.5):
   * `.tangled/workflows` at `sha` from the repo's knot (with retries) → compile for `trigger` →
   * store and queue. Workflows the knot would not give are recorded as a failed pipeline (one
   * workflow named FETCH_FAILED_WORKFLOW) so the commit shows why nothing ran (GUESS: upstream
   * only logs). No matching workflow → nothing stored.
   */
  async #buildTrusted(b: TrustedBuild): Promise<TrustedBuildResult> {
    const { repo, trigger, sha, ctx } = b;
    const repoDid = trigger.repo.repoDid;
    const tid = this.#tids.next();
    const scope = repoScopeKey(repoRef(repo));
    let fetched: FetchedWorkflows;
    try {
      fetched = await this.#fetchWithRetry(repo.knot, repoDid, sha);
    } catch (err) {
      if (!(err instanceof KnotError)) throw err;
      const error = `could not read .tangled/workflows at ${sha} from ${repo.knot}: ${err.message}`;
      this.#log.warn({ ...ctx, sha, code: err.code, err: err.message }, `${ctx.what}: workflows unreadable`);
      await this.acceptor.accept({
        tid,
        record: { $type: "", triggerMetadata: trigger, workflows: [] },
        scope,
        untrusted: false,
        failed: [{ name: FETCH_FAILED_WORKFLOW, error }],
      });
      return { built: true, tid, failed: true };
    }
    const { record, diagnostics } = compileGen2(fetched.files, trigger, {
      ...(b.changedFiles !== undefined && { changedFiles: b.changedFiles }),
    });
    if (diagnostics.length > 0) {
      // Typos (with the key they likely misspell), workflows without steps, dropped files.
      const found = diagnostics.map(formatDiagnostic);
      this.#log.warn({ ...ctx, sha, diagnostics: found }, `${ctx.what}: workflow diagnostics`);
    }
    if (record === undefined) {
      this.#log.info({ ...ctx, sha, diagnostics: diagnostics.length }, `${ctx.what}: no workflow matches`);
      return { built: false, reason: `no workflow matches at ${sha}` };
    }
    await this.acceptor.accept({ tid, record, scope, untrusted: false });
    return { built: true, tid, failed: false };
  }

  async #fetchWithRetry(knot: string, repoDid: string, sha: string): Promise<FetchedWorkflows> {
    const delays = this.#o.fetchRetryDelaysMs ?? [1000, 3000];
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.fetcher.fetchWorkflows({ knot, repoDid, sha, dev: this.#dev });
      } catch (err) {
        const delay = delays[attempt];
        if (!(err instanceof KnotError) || !err.transient || delay === undefined) throw err;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  #markDecided(key: string): void {
    const now = Date.now();
    this.#decided.set(key, now);
    // Bounded: drop expired marks once the map grows (oldest first; Map keeps insertion order).
    if (this.#decided.size > 10_000) {
      for (const [k, at] of this.#decided) {
        if (now - at < DEDUPE_WINDOW_MS && this.#decided.size <= 10_000) break;
        this.#decided.delete(k);
      }
    }
  }

  /** The Gen1 event of a push: dropped when Gen2 already decided that push (header), else Gen1. */
  async #onGen1Pipeline(knot: string, env: KnotEnvelope): Promise<void> {
    const key = this.#gen1PushKey(env.event);
    if (key !== null) {
      const at = this.#decided.get(key.key);
      const decided = at !== undefined && Date.now() - at < DEDUPE_WINDOW_MS;
      if (
        decided ||
        this.#recentBuiltPush.get(key.repoDid, key.sha, key.ref, sinceNs(), this.#hostname) !== undefined
      ) {
        this.#o.metrics.pipelines.inc({ result: "duplicate", reason: "gen2" });
        this.#log.info(
          { knot, rkey: env.rkey, sha: key.sha, ref: key.ref },
          "Gen1 pipeline dropped: the push was handled as a Gen2 refUpdate",
        );
        return;
      }
    }
    await this.#o.gen1.acceptPipeline(knot, env.rkey, env.event);
  }

  #gen1PushKey(event: unknown): { key: string; repoDid: string; sha: string; ref: string } | null {
    const t = (event as { triggerMetadata?: Record<string, unknown> } | null)?.triggerMetadata;
    if (!t || typeof t !== "object" || t.kind !== "push") return null;
    const push = t.push as Record<string, unknown> | undefined;
    const repo = t.repo as Record<string, unknown> | undefined;
    if (!push || !repo || typeof push.newSha !== "string" || typeof push.ref !== "string") return null;
    let repoDid = typeof repo.repoDid === "string" && repo.repoDid !== "" ? repo.repoDid : null;
    if (repoDid === null && typeof repo.did === "string" && typeof repo.repo === "string") {
      repoDid = this.#repos.byName(repo.did, repo.repo)?.repoDid ?? null;
    }
    if (repoDid === null) return null;
    return { key: pushKey(repoDid, push.newSha, push.ref), repoDid, sha: push.newSha, ref: push.ref };
  }

  /** gen2 §2.2: only from the repo's own knot; add → collaborator grants, remove → revoke. */
  #onCollaboratorUpdate(knot: string, env: KnotEnvelope): void {
    let ev: ReturnType<typeof parseCollaboratorUpdate>;
    try {
      ev = parseCollaboratorUpdate(env.event);
    } catch (err) {
      if (err instanceof WireError) {
        this.#log.warn({ knot, rkey: env.rkey, err: err.message }, "collaboratorUpdate dropped: invalid");
        return;
      }
      throw err;
    }
    const repo = this.#repos.byDid(ev.repo);
    if (repo === null || repo.knot !== knot) {
      this.#log.info({ knot, repo: ev.repo }, "collaboratorUpdate ignored: unknown repo or not its knot");
      return;
    }
    if (ev.op === "add") this.#o.rbac.grantCollaborator(ev.subject, repoRef(repo));
    else this.#o.rbac.revokeCollaborator(ev.subject, repoRef(repo));
    this.#log.info({ knot, repo: ev.repo, subject: ev.subject, op: ev.op }, "collaborator updated");
  }
}

function repoRef(repo: RepoRecord): RepoRef {
  return { ownerDid: repo.owner, name: repo.name, repoDid: repo.repoDid };
}

function pushKey(repoDid: string, sha: string, ref: string): string {
  return `${repoDid} ${sha} ${ref}`;
}

function sinceNs(): bigint {
  return BigInt(Date.now() - DEDUPE_WINDOW_MS) * 1_000_000n;
}

/**
 * The `sh.tangled.git.refUpdate` of late-2025 knots: the repo named by `repoDid` (the owner's DID)
 * and `repoName`, with no `repo`. Not Gen2's event; those knots also send the Gen1 pipeline.
 */
function isOlderRefUpdate(event: unknown): boolean {
  if (typeof event !== "object" || event === null) return false;
  const e = event as Record<string, unknown>;
  return e.repo === undefined && typeof e.repoDid === "string" && typeof e.repoName === "string";
}
