/**
 * The `sh.tangled.ci.*` XRPC methods (gen2 §2.6), declared as data for the
 * router: queryPipelines, getPipeline, describeWorkflowDefinition, triggerPipeline,
 * cancelPipeline, and subscribePipelineLogs answered to a plain GET (the stream itself is the
 * WebSocket route in routes.ts). Parameters and inputs are checked by the lexicons at the
 * boundary; a LexiconValidationError or DispatchError becomes 400 `InvalidRequest` in the one
 * table of errors.ts.
 */
import type { Logger } from "pino";
import {
  CI_NSID,
  type CiPipeline,
  LexiconValidationError,
  spindlePipelineAtUri,
  validate,
} from "../../protocol/index.ts";
import { compileGen2 } from "../../workflow/compile.ts";
import { selectWorkflows, triggerFromCiInput } from "../../workflow/dispatch.ts";
import { describeWorkflowDefinition } from "../../workflow/fingerprint.ts";
import type { CiPipelines } from "../db/ci-pipelines.ts";
import type { RepoRecord, Repos } from "../db/index.ts";
import { AccessControlError, invalidRequest, XrpcError } from "../errors.ts";
import { type PipelineBuilder, repoRef } from "../pipelines/build.ts";
import type { Scheduler } from "../pipelines/scheduler.ts";
import type { PipelineStore } from "../pipelines/store.ts";
import { type Rbac, repoScopeKey } from "../rbac/index.ts";
import { resolveLogRequest } from "./ci-logs-ws.ts";
import { define, raw, type XrpcMethods } from "./router.ts";
import type { ValidatedPipelines } from "./validated.ts";

export interface CiMethodsDeps {
  ciPipelines: CiPipelines;
  validated: ValidatedPipelines;
  store: PipelineStore;
  repos: Repos;
  rbac: Rbac;
  builder: PipelineBuilder;
  scheduler: Scheduler;
  logger: Logger;
}

export function ciMethods(d: CiMethodsDeps): XrpcMethods {
  const log = d.logger;
  const repoByDid = (repoDid: string): RepoRecord => {
    const repo = d.repos.byDid(repoDid);
    if (repo === null)
      throw new XrpcError(400, "RepoNotFound", `repo ${repoDid} is not served by this spindle`);
    return repo;
  };

  return {
    [CI_NSID.queryPipelines]: define({
      type: "query",
      auth: false,
      params: validate.queryPipelinesParams,
      handler: async ({ params: p }) => {
        if (p.cursor !== undefined && !/^[0-9]{1,19}$/.test(p.cursor)) {
          throw invalidRequest(
            `cursor must be a decimal number of nanoseconds, got ${JSON.stringify(p.cursor)}`,
          );
        }
        if ((p.commits?.length ?? 0) > 1000) throw invalidRequest("at most 1000 commits per query");
        // The lexicon's default (50) is filled in by validation; upstream's code uses 30.
        const out = d.ciPipelines.query({ ...p, limit: p.limit ?? 50 });
        // The envelope is checked as a whole, each pipeline through the memo (validated.ts).
        validate.queryPipelinesOutput({ ...out, pipelines: [] });
        const items: string[] = [];
        for (const pipeline of out.pipelines) {
          try {
            items.push(d.validated.json(pipeline));
          } catch (err) {
            // One odd stored record must not take the repo's whole pipelines page down.
            log.error(
              { id: pipeline.id, err: (err as Error).message },
              "stored pipeline fails the lexicon; left out",
            );
          }
        }
        const cursor = out.cursor === undefined ? "" : `,"cursor":${JSON.stringify(out.cursor)}`;
        return raw(`{"pipelines":[${items.join(",")}],"total":${out.total}${cursor}}`);
      },
    }),
    [CI_NSID.getPipeline]: define({
      type: "query",
      auth: false,
      params: validate.getPipelineParams,
      handler: async ({ params: p }) => {
        // Upstream answers 500 GenericError here; the lexicon names PipelineNotFound.
        const pipeline: CiPipeline | null = d.ciPipelines.get(p.pipeline);
        // A Gen1 pipeline of a repo whose record names no DID (late-2025 repos) has no answer
        // as a ci.pipeline (`repo` is a required DID): left out, as queryPipelines never lists it.
        if (pipeline === null || pipeline.repo === "")
          throw new XrpcError(404, "PipelineNotFound", `pipeline ${p.pipeline} not found`);
        try {
          return raw(d.validated.json(pipeline));
        } catch (err) {
          if (!(err instanceof LexiconValidationError)) throw err;
          // Stored data that fails the lexicon is left out, as queryPipelines does: never a 500.
          log.error({ id: pipeline.id, err: err.message }, "stored pipeline fails the lexicon; left out");
          throw new XrpcError(404, "PipelineNotFound", `pipeline ${p.pipeline} not found`);
        }
      },
    }),
    [CI_NSID.describeWorkflowDefinition]: define({
      type: "query",
      auth: false,
      params: validate.describeWorkflowDefinitionParams,
      output: validate.describeWorkflowDefinitionOutput,
      handler: async ({ params: p }) => {
        const repo = repoByDid(p.repo);
        // GUESS: a fork (sourceRepo) is served by the target repo's knot.
        const fetched = await d.builder.fetchNow(repo.knot, p.sourceRepo ?? p.repo, p.sha);
        return describeWorkflowDefinition(fetched.files);
      },
    }),
    [CI_NSID.subscribePipelineLogs]: define({
      type: "query",
      auth: false,
      // A plain GET (no upgrade): the same parameter errors, else "this is a WebSocket".
      handler: async () => {
        throw new XrpcError(400, "BadRequest", "subscribePipelineLogs is a WebSocket endpoint");
      },
      params: (query) => {
        const r = resolveLogRequest(query, { query: d.ciPipelines, store: d.store });
        if (!r.ok) throw new XrpcError(r.status, r.error as "BadRequest" | "NotFound", r.message);
        return r.runs;
      },
    }),
    [CI_NSID.triggerPipeline]: define({
      type: "procedure",
      auth: true,
      input: validate.triggerPipelineInput,
      output: validate.triggerPipelineOutput,
      handler: async ({ input, actor }) => {
        const repo = repoByDid(input.repo);
        const ref = repoRef(repo);
        if (!d.rbac.canPush(actor, ref)) throw new AccessControlError(actor, 400);
        const trigger = triggerFromCiInput(input, await d.builder.knownRepo(repo, input.repo));
        const fork = trigger.sourceRepo;
        const sha = trigger.manual?.sha ?? trigger.pullRequest?.sourceSha ?? "";
        // GUESS: a fork lives on the target repo's knot (the trigger names no knot for it).
        const fetched = await d.builder.fetchNow(repo.knot, fork ?? input.repo, sha);
        const files = selectWorkflows(fetched.files, input.workflows);
        const { record, diagnostics } = compileGen2(files, trigger);
        if (record === undefined) {
          const why = diagnostics
            .map((dg) => `${dg.file ?? ""}: ${dg.message}`)
            .slice(0, 3)
            .join("; ");
          throw invalidRequest(`no workflow to run at ${sha}${why === "" ? "" : ` (${why})`}`);
        }
        const tid = d.builder.nextTid();
        await d.builder.admit({
          tid,
          record,
          scope: repoScopeKey(ref),
          untrusted: fork !== undefined,
          ...(fork !== undefined && {
            cloneUrl: `${d.builder.dev ? "http" : "https"}://${repo.knot}/${fork}`,
          }),
        });
        log.info(
          { method: CI_NSID.triggerPipeline, actor, repo: input.repo, tid, fork: fork ?? null },
          "pipeline triggered",
        );
        return { pipeline: spindlePipelineAtUri(d.builder.hostname, tid) };
      },
    }),
    [CI_NSID.cancelPipeline]: define({
      type: "procedure",
      auth: true,
      input: validate.cancelPipelineInput,
      handler: async ({ input, actor }) => {
        const repo = repoByDid(input.repo);
        if (!d.rbac.canPush(actor, repoRef(repo))) throw new AccessControlError(actor, 400);
        const row = d.ciPipelines.row(input.pipeline);
        // A pipeline of another repo is answered as unknown: it says nothing about that repo.
        if (row === null || row.repoDid !== input.repo) {
          throw new XrpcError(404, "PipelineNotFound", `pipeline ${input.pipeline} not found`);
        }
        const all = d.store.runsOf(row.pipelineId).map((r) => r.name);
        const names = input.workflows !== undefined && input.workflows.length > 0 ? input.workflows : all;
        const unknown = names.filter((n) => !all.includes(n));
        // GUESS: naming a workflow the pipeline does not have is a 400 (upstream unknown).
        if (unknown.length > 0)
          throw invalidRequest(`pipeline ${input.pipeline} has no workflow ${unknown.join(", ")}`);
        const results: Record<string, string> = {};
        for (const name of names) results[name] = await d.scheduler.cancel(row.knot, row.tid, name);
        log.info({ method: CI_NSID.cancelPipeline, actor, tid: row.tid, results }, "cancel requested");
        return undefined;
      },
    }),
  };
}
