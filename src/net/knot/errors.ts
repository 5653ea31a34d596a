/** Typed failures of talking to a knot (workflow fetch, getDefaultBranch). */

export type KnotErrorCode =
  /** Bad knot host, repo DID or SHA given to us: a caller bug or hostile event. */
  | "InvalidInput"
  /** Could not connect, DNS failure, TLS failure, 5xx, or the connection dropped. */
  | "KnotUnreachable"
  /** The knot does not serve this repo (404 / RepoNotFound). */
  | "RepoNotFound"
  /** The repo exists but the commit is not in it (yet, or any more). */
  | "ShaNotFound"
  /** The operation did not finish within its time limit. */
  | "Timeout"
  /** The knot answered something we cannot use. */
  | "BadResponse"
  /** Anything else git reported; `message` carries git's last error line. */
  | "GitFailed";

export class KnotError extends Error {
  override readonly name = "KnotError";
  readonly code: KnotErrorCode;

  constructor(code: KnotErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }

  /** Worth retrying later (the knot may come back, or the push may not have landed yet). */
  get transient(): boolean {
    return this.code === "KnotUnreachable" || this.code === "Timeout" || this.code === "ShaNotFound";
  }
}

const SHA_MISSING = /not our ref|couldn't find remote ref|no such remote ref|unadvertised object|bad object/i;
const REPO_MISSING = /repository '.*' not found|returned error: 40[34]|HTTP 40[34]/i;
const UNREACHABLE =
  /Failed to connect|Could not resolve host|Couldn't connect|Connection refused|Connection reset|Connection timed out|SSL|TLS|returned error: 5\d\d|Empty reply|Recv failure|transfer closed|early EOF|the remote end hung up/i;

/** Turns git's stderr into a typed error; the message keeps git's last `fatal:`/`error:` line. */
export function classifyGitFailure(
  what: string,
  stderr: string,
  timedOut: boolean,
  timeoutMs: number,
): KnotError {
  if (timedOut) return new KnotError("Timeout", `${what}: git did not finish within ${timeoutMs} ms`);
  const line =
    stderr
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => /^(fatal|error):/.test(l))
      .at(-1) ??
    stderr.trim().split("\n").at(-1) ??
    "";
  const detail = line === "" ? "git failed without a message" : line;
  if (SHA_MISSING.test(stderr))
    return new KnotError("ShaNotFound", `${what}: commit not found on the knot (${detail})`);
  if (REPO_MISSING.test(stderr))
    return new KnotError("RepoNotFound", `${what}: repository not found on the knot (${detail})`);
  if (UNREACHABLE.test(stderr))
    return new KnotError("KnotUnreachable", `${what}: knot unreachable (${detail})`);
  return new KnotError("GitFailed", `${what}: ${detail}`);
}

/** The knot would not give a commit's workflows to a request (no retries: the caller waits). */
export class WorkflowsUnreadableError extends Error {
  override readonly name = "WorkflowsUnreadableError";
  override readonly cause: KnotError;
  readonly sha: string;
  constructor(sha: string, cause: KnotError) {
    super(`could not read workflows at ${sha}: ${cause.message}`, { cause });
    this.sha = sha;
    this.cause = cause;
  }
}
