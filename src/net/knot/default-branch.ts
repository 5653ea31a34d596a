/**
 * `sh.tangled.repo.getDefaultBranch?repo=<repoDid>` on a knot (gen2 §2.4: the push trigger's
 * `repo.defaultBranch`). The knot host comes from a repo record, so requests go through the
 * SSRF-guarded client (private addresses only in dev).
 */
import { isValidDid } from "@atproto/syntax";
import { lexicons } from "../../protocol/lexicons.ts";
import { GET_DEFAULT_BRANCH_NSID } from "../../protocol/nsid.ts";
import { type GuardedFetchOptions, guardedFetch } from "../guarded-fetch.ts";
import { KnotError } from "./errors.ts";

export interface DefaultBranch {
  name: string;
  hash: string;
  shortHash?: string;
  when: string;
  message?: string;
  author?: { name: string; email: string; when: string };
}

export interface KnotClientOptions {
  /** `http://` and loopback/private addresses allowed. */
  dev?: boolean;
  timeoutMs?: number;
  /** Tests: override name resolution (see GuardedFetchOptions). */
  resolve?: GuardedFetchOptions["resolve"];
}

export async function getDefaultBranch(
  knot: string,
  repoDid: string,
  opts: KnotClientOptions = {},
): Promise<DefaultBranch> {
  if (!isValidDid(repoDid)) throw new KnotError("InvalidInput", `not a repo DID: ${JSON.stringify(repoDid)}`);
  let url: URL;
  try {
    url = new URL(`${opts.dev === true ? "http" : "https"}://${knot}/xrpc/${GET_DEFAULT_BRANCH_NSID}`);
  } catch (err) {
    throw new KnotError("InvalidInput", `not a knot host: ${JSON.stringify(knot)}`, { cause: err });
  }
  if (url.host !== knot.toLowerCase() || url.pathname !== `/xrpc/${GET_DEFAULT_BRANCH_NSID}`) {
    throw new KnotError("InvalidInput", `not a knot host: ${JSON.stringify(knot)}`);
  }
  url.searchParams.set("repo", repoDid);
  let res: Awaited<ReturnType<typeof guardedFetch>>;
  try {
    res = await guardedFetch(url, {
      allowPrivate: opts.dev === true,
      timeoutMs: opts.timeoutMs ?? 10_000,
      maxBytes: 256 * 1024,
      headers: { accept: "application/json" },
      ...(opts.resolve !== undefined && { resolve: opts.resolve }),
    });
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new KnotError(
      code === "Timeout"
        ? "Timeout"
        : code === "ForbiddenAddress" || code === "InvalidUrl"
          ? "InvalidInput"
          : "KnotUnreachable",
      `${GET_DEFAULT_BRANCH_NSID} on ${knot}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(res.body.toString("utf8"));
  } catch {
    body = undefined;
  }
  if (res.status !== 200) {
    const error = (body as { error?: unknown } | undefined)?.error;
    if (error === "RepoNotFound" || res.status === 404) {
      throw new KnotError("RepoNotFound", `${GET_DEFAULT_BRANCH_NSID} on ${knot}: ${repoDid} not found`);
    }
    const code = res.status >= 500 ? "KnotUnreachable" : "BadResponse";
    throw new KnotError(
      code,
      `${GET_DEFAULT_BRANCH_NSID} on ${knot}: HTTP ${res.status}${typeof error === "string" ? ` ${error}` : ""}`,
    );
  }
  try {
    return lexicons.assertValidXrpcOutput(GET_DEFAULT_BRANCH_NSID, body) as DefaultBranch;
  } catch (err) {
    throw new KnotError("BadResponse", `${GET_DEFAULT_BRANCH_NSID} on ${knot}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
