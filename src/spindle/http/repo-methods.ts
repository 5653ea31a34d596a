/**
 * The spindle's Generation 1 XRPC methods (spec §3, §3.1), declared as data for the router,
 * with upstream's bodies and error answers (§3.2). Every failure is thrown as an XrpcError and
 * turned into the answer by `toXrpcErrorResponse` in the router — the one boundary. Order of
 * checks, as upstream: service auth (router) → input → repo AT-URI → repo name (PDS) → RBAC →
 * the operation.
 */
import type { Logger } from "pino";
import { SPINDLE_NSID } from "../../protocol/nsid.ts";
import { AccessControlError, genericError, ownerNotFoundError, SecretsError } from "../errors.ts";
import type { Scheduler } from "../pipelines/scheduler.ts";
import type { PipelineStore } from "../pipelines/store.ts";
import { parseRepoAtUri, type Rbac, type RepoRef, repoScopeKey } from "../rbac/index.ts";
import { type SecretsProvider, validateNewSecretValue, validateSecretKey } from "../secrets/index.ts";
import type { RepoResolver } from "./repo-resolver.ts";
import { define, type XrpcMethods } from "./router.ts";

export interface RepoMethodsDeps {
  rbac: Rbac;
  secrets: SecretsProvider;
  repos: RepoResolver;
  store: PipelineStore;
  scheduler: Scheduler;
  logger: Logger;
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

const PIPELINE_URI_RE = /^at:\/\/did:web:([^/]+)\/sh\.tangled\.pipeline\/([A-Za-z0-9._:~-]{1,512})$/;

export function repoMethods(d: RepoMethodsDeps): XrpcMethods {
  /** `repo` AT-URI → the repo, by owner DID and name (§3.1). */
  const repoOf = async (repoParam: string): Promise<RepoRef> => {
    if (repoParam === "") throw genericError("repo parameter is required");
    const { did, rkey } = parseRepoAtUri(repoParam);
    const { name, repoDid } = await d.repos.resolve(did, rkey);
    return { ownerDid: did, name, repoDid };
  };

  return {
    [SPINDLE_NSID.owner]: define({
      type: "query",
      auth: false,
      handler: async () => {
        const owner = d.rbac.owner();
        if (!owner) throw ownerNotFoundError();
        return { owner };
      },
    }),
    [SPINDLE_NSID.addSecret]: define({
      type: "procedure",
      auth: true,
      handler: async ({ input: body, actor: who }: { input: Record<string, unknown>; actor: string }) => {
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
          { method: SPINDLE_NSID.addSecret, actor: who, key: typeof body.key === "string" ? body.key : null },
          "secret added",
        );
        return undefined;
      },
    }),
    [SPINDLE_NSID.removeSecret]: define({
      type: "procedure",
      auth: true,
      handler: async ({ input: body, actor: who }: { input: Record<string, unknown>; actor: string }) => {
        const repo = await repoOf(str(body.repo));
        if (!d.rbac.canManageSecrets(who, repo)) throw new AccessControlError(who, 401);
        if (typeof body.key !== "string") throw new SecretsError("InvalidKey");
        await d.secrets.remove(repoScopeKey(repo), body.key);
        d.logger.info({ method: SPINDLE_NSID.removeSecret, actor: who, key: body.key }, "secret removed");
        return undefined;
      },
    }),
    [SPINDLE_NSID.listSecrets]: define({
      type: "query",
      auth: true,
      params: (query) => query.get("repo") ?? "",
      handler: async ({ params: repoParam, actor: who }) => {
        const repo = await repoOf(repoParam);
        if (!d.rbac.canManageSecrets(who, repo)) throw new AccessControlError(who, 401);
        const list = await d.secrets.listLocked(repoScopeKey(repo));
        const secrets =
          list.length === 0
            ? null
            : list.map((s) => ({
                createdAt: s.createdAt,
                createdBy: s.createdBy,
                key: s.key,
                repo: repoParam,
              }));
        return { secrets };
      },
    }),
    [SPINDLE_NSID.cancelPipeline]: define({
      type: "procedure",
      auth: true,
      handler: async ({ input: body, actor: who }: { input: Record<string, unknown>; actor: string }) => {
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
        d.logger.info(
          { method: SPINDLE_NSID.cancelPipeline, actor: who, knot, rkey, workflow, result },
          "cancel requested",
        );
        return undefined;
      },
    }),
  };
}
