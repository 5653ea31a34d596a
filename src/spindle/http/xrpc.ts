/**
 * The spindle's XRPC methods (spec §3, §3.1) with upstream's bodies and error answers (§3.2).
 * Every failure is thrown as an XrpcError and turned into the answer by `toXrpcErrorResponse`
 * in the router — the one boundary. Order of checks, as upstream: service auth → input →
 * repo AT-URI → repo name (PDS) → RBAC → the operation.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { ServiceJwtVerifier } from "../auth/index.ts";
import { bearerToken } from "../auth/index.ts";
import {
  AccessControlError,
  genericError,
  missingActorDidError,
  ownerNotFoundError,
  SecretsError,
} from "../errors.ts";
import type { Scheduler } from "../pipelines/scheduler.ts";
import type { PipelineStore } from "../pipelines/store.ts";
import { parseRepoAtUri, type Rbac, type RepoRef, repoScopeKey } from "../rbac/index.ts";
import { type SecretsProvider, validateNewSecretValue, validateSecretKey } from "../secrets/index.ts";
import { readJsonObject } from "./body.ts";
import type { RepoResolver } from "./repo-resolver.ts";

export interface XrpcDeps {
  verifier: ServiceJwtVerifier;
  audiences: readonly string[];
  rbac: Rbac;
  secrets: SecretsProvider;
  repos: RepoResolver;
  store: PipelineStore;
  scheduler: Scheduler;
  logger: Logger;
}

export interface XrpcMethod {
  http: "GET" | "POST";
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
}

function json(res: ServerResponse, body: string): void {
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function empty(res: ServerResponse): void {
  res.writeHead(200, { "content-length": 0 });
  res.end();
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

const PIPELINE_URI_RE = /^at:\/\/did:web:([^/]+)\/sh\.tangled\.pipeline\/([A-Za-z0-9._:~-]{1,512})$/;

export function xrpcMethods(d: XrpcDeps): Record<string, XrpcMethod> {
  const actor = async (req: IncomingMessage, method: string): Promise<string> => {
    const auth = await d.verifier.verify(bearerToken(req.headers.authorization), {
      audiences: d.audiences,
      method,
    });
    if (!auth.iss) throw missingActorDidError();
    return auth.iss;
  };

  /** `repo` AT-URI → the repo, by owner DID and name (§3.1). */
  const repoOf = async (repoParam: string): Promise<RepoRef> => {
    if (repoParam === "") throw genericError("repo parameter is required");
    const { did, rkey } = parseRepoAtUri(repoParam);
    const { name, repoDid } = await d.repos.resolve(did, rkey);
    return { ownerDid: did, name, repoDid };
  };

  const secretsAccess = async (req: IncomingMessage, method: string, repoParam: string) => {
    const who = await actor(req, method);
    const repo = await repoOf(repoParam);
    if (!d.rbac.canManageSecrets(who, repo)) throw new AccessControlError(who, 401);
    return { who, scope: repoScopeKey(repo) };
  };

  return {
    "sh.tangled.owner": {
      http: "GET",
      async handle(_req, res) {
        const owner = d.rbac.owner();
        if (!owner) throw ownerNotFoundError();
        json(res, JSON.stringify({ owner }));
      },
    },
    "sh.tangled.repo.addSecret": {
      http: "POST",
      async handle(req, res) {
        const method = "sh.tangled.repo.addSecret";
        const who = await actor(req, method);
        const body = await readJsonObject(req);
        const repo = await repoOf(str(body.repo));
        if (!d.rbac.canManageSecrets(who, repo)) throw new AccessControlError(who, 401);
        validateSecretKey(body.key);
        validateNewSecretValue(body.value);
        await d.secrets.add({
          repo: repoScopeKey(repo),
          key: body.key as string,
          value: body.value as string,
          createdBy: who,
        });
        d.logger.info(
          { method, actor: who, key: typeof body.key === "string" ? body.key : null },
          "secret added",
        );
        empty(res);
      },
    },
    "sh.tangled.repo.removeSecret": {
      http: "POST",
      async handle(req, res) {
        const method = "sh.tangled.repo.removeSecret";
        const who = await actor(req, method);
        const body = await readJsonObject(req);
        const repo = await repoOf(str(body.repo));
        if (!d.rbac.canManageSecrets(who, repo)) throw new AccessControlError(who, 401);
        if (typeof body.key !== "string") throw new SecretsError("InvalidKey");
        await d.secrets.remove(repoScopeKey(repo), body.key);
        d.logger.info({ method, actor: who, key: body.key }, "secret removed");
        empty(res);
      },
    },
    "sh.tangled.repo.listSecrets": {
      http: "GET",
      async handle(req, res, url) {
        const repoParam = url.searchParams.get("repo") ?? "";
        const { scope } = await secretsAccess(req, "sh.tangled.repo.listSecrets", repoParam);
        const list = await d.secrets.listLocked(scope);
        const secrets =
          list.length === 0
            ? null
            : list.map((s) => ({
                createdAt: s.createdAt,
                createdBy: s.createdBy,
                key: s.key,
                repo: repoParam,
              }));
        json(res, JSON.stringify({ secrets }));
      },
    },
    "sh.tangled.pipeline.cancelPipeline": {
      http: "POST",
      async handle(req, res) {
        const method = "sh.tangled.pipeline.cancelPipeline";
        const who = await actor(req, method);
        const body = await readJsonObject(req);
        const repo = await repoOf(str(body.repo));
        const m = PIPELINE_URI_RE.exec(str(body.pipeline));
        if (!m) throw genericError("pipeline is not a sh.tangled.pipeline at-uri");
        const workflow = str(body.workflow);
        if (workflow === "") throw genericError("workflow is required");
        if (!d.rbac.canCancel(who, repo)) throw new AccessControlError(who, 400);
        const knot = decodeURIComponent(m[1] as string);
        const rkey = m[2] as string;
        // The pipeline must belong to the repo the caller owns.
        const owner = d.store.pipelineRepo(knot, rkey);
        if (owner && (owner.did !== repo.ownerDid || owner.name !== repo.name)) {
          throw new AccessControlError(who, 400);
        }
        const result = await d.scheduler.cancel(knot, rkey, workflow);
        if (result === "not_found") throw genericError("no such workflow in this pipeline");
        d.logger.info({ method, actor: who, knot, rkey, workflow, result }, "cancel requested");
        empty(res);
      },
    },
  };
}
