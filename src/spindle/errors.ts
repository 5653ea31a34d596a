/**
 * The spindle's named errors and the one boundary that turns any thrown value into an XRPC
 * error answer (spec §3.2: `{"error": "<Tag>", "message": "<text>"}` with a status code).
 *
 * Rules every module follows:
 * - A domain error (a lexicon validation failure, a bad dispatch, unreadable workflows) is thrown
 *   as itself; DOMAIN_ERRORS below is the one table that turns it into an XRPC answer.
 * - Throw one of the classes below (or `XrpcError` directly) for anything a caller may see.
 * - Messages are written for the caller and never contain secret values, tokens or keys.
 * - Anything else that escapes (a bug, a SQLite failure, a network error) becomes a 500 whose
 *   body is a fixed text: internals stay in the server log, never in the answer.
 */
import { describeSecretValueProblem } from "../mask/secret-value.ts";

import { WorkflowsUnreadableError } from "../net/knot/errors.ts";
import { LexiconValidationError } from "../protocol/lexicons.ts";
import { DispatchError } from "../workflow/dispatch.ts";

/** The `error` tags the spindle answers with. Gen1 tags first (§3.2), then Gen2 (gen2.md). */
export type XrpcErrorTag =
  | "Auth"
  | "MissingActorDid"
  | "Generic"
  | "InvalidRepo"
  | "AccessControl"
  | "OwnerNotFound"
  | "RepoNotFound"
  | "PipelineNotFound"
  | "InvalidRequest"
  | "BadRequest"
  | "NotFound"
  | "InternalServerError";

/** An error that maps one-to-one onto an XRPC answer. */
export class XrpcError extends Error {
  override name = "XrpcError";
  readonly status: number;
  readonly error: XrpcErrorTag;

  constructor(status: number, error: XrpcErrorTag, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
    this.error = error;
  }
}

/**
 * Service-auth failure (§3.3). Always 403 `Auth`, with the upstream message prefix so clients
 * that match on it keep working. `detail` must name the failed check, never echo the token.
 */
export class AuthError extends XrpcError {
  override name = "AuthError";
  constructor(detail: string, options?: { cause?: unknown }) {
    super(403, "Auth", `signature verification failed: ${detail}`, options);
  }
}

/**
 * RBAC denial. Upstream answers 401 for the secrets methods and 400 for cancel (§3.2), so the
 * caller says which; the text (including upstream's spelling of "sufficent") is kept verbatim.
 */
export class AccessControlError extends XrpcError {
  override name = "AccessControlError";
  constructor(actorDid: string, status: 400 | 401) {
    super(
      status,
      "AccessControl",
      `DID does not have sufficent access permissions for this operation: ${actorDid}`,
    );
  }
}

/** `repo` is not the AT-URI of a `sh.tangled.repo` record (§3.2). */
export function invalidRepoError(value: string): XrpcError {
  return new XrpcError(400, "InvalidRepo", `supplied at-uri is not a repo: ${value}`);
}

/** The authenticated actor is missing from the request context (§3.2). */
export function missingActorDidError(): XrpcError {
  return new XrpcError(400, "MissingActorDid", "actor did not found in context");
}

/** No owner is configured for this spindle (§3.2). */
export function ownerNotFoundError(): XrpcError {
  return new XrpcError(500, "OwnerNotFound", "owner not set for this service");
}

/** Bad request input: body not JSON, empty parameter, PDS lookup failed, … (§3.2 `Generic`). */
export function genericError(message: string, options?: { cause?: unknown }): XrpcError {
  return new XrpcError(400, "Generic", message, options);
}

/** Stable codes of secrets failures; each has one fixed message and status (§3.2, §5.2). */
export type SecretsErrorCode =
  | "InvalidKey"
  | "InvalidValue"
  | "ValueHasNul"
  | "ValueTooShort"
  | "ValueBlank"
  | "KeyAlreadyPresent"
  | "KeyNotFound"
  | "BackendFailure";

const SECRETS_ERRORS: Record<SecretsErrorCode, { status: number; message: string }> = {
  InvalidKey: { status: 400, message: "key is not a valid identifier" },
  InvalidValue: { status: 400, message: "value must be 1 to 200 bytes long" },
  // src/mask/secret-value.ts: what a secret value may be, for every way one comes in.
  ValueHasNul: { status: 400, message: `value ${describeSecretValueProblem("nul")}` },
  ValueTooShort: { status: 400, message: `value ${describeSecretValueProblem("short")}` },
  ValueBlank: { status: 400, message: `value ${describeSecretValueProblem("blank")}` },
  // Upstream answers 500 for these two (the vault error bubbles up); kept for compatibility.
  KeyAlreadyPresent: { status: 500, message: "key already present" },
  KeyNotFound: { status: 500, message: "key not found" },
  // The backend's own error text may quote request data, so it stays in `cause` only.
  BackendFailure: { status: 500, message: "secrets backend failure" },
};

/** A secrets provider failure. The message is fixed per code and never holds a value. */
export class SecretsError extends XrpcError {
  override name = "SecretsError";
  readonly code: SecretsErrorCode;
  constructor(code: SecretsErrorCode, options?: { cause?: unknown }) {
    const { status, message } = SECRETS_ERRORS[code];
    super(status, "Generic", message, options);
    this.code = code;
  }
}

/**
 * A missing or wrong configuration value. Thrown only at start-up; the CLI prints `message`
 * and exits non-zero. `variable` names the environment variable or config-file key.
 */
export class ConfigError extends Error {
  override name = "ConfigError";
  readonly variable: string;
  constructor(variable: string, expected: string, options?: { cause?: unknown }) {
    super(`${variable}: ${expected}`, options);
    this.variable = variable;
  }
}

// biome-ignore lint/suspicious/noExplicitAny: an error class of any constructor shape.
type ErrorClass = abstract new (...args: any[]) => Error;

/**
 * Domain errors → XRPC errors: the one table (handlers throw domain errors as they are).
 * Checked in order before the XrpcError case.
 */
const DOMAIN_ERRORS: ReadonlyArray<readonly [ErrorClass, (err: never) => XrpcError]> = [
  [LexiconValidationError, (e: LexiconValidationError) => invalidRequest(e.message, e)],
  [DispatchError, (e: DispatchError) => invalidRequest(e.message, e)],
  [
    WorkflowsUnreadableError,
    (e: WorkflowsUnreadableError) =>
      new XrpcError(
        e.cause.code === "KnotUnreachable" || e.cause.code === "Timeout" ? 502 : 400,
        "InvalidRequest",
        `could not read workflows at ${e.sha}: ${e.cause.message}`,
        { cause: e.cause },
      ),
  ],
];

/** A request the lexicon (or the method's own rules) refuses: 400 `InvalidRequest` (gen2.md). */
export function invalidRequest(message: string, cause?: unknown): XrpcError {
  return new XrpcError(400, "InvalidRequest", message, cause === undefined ? undefined : { cause });
}

/** The JSON body and status of an XRPC error answer. */
export interface XrpcErrorResponse {
  status: number;
  body: { error: string; message: string };
  /** True when the error was not an `XrpcError`: the caller should log it (with its stack). */
  internal: boolean;
}

/**
 * THE boundary: any thrown value → status + `{error, message}`. Known errors keep their tag and
 * message; everything else becomes a fixed 500 so no internal text (SQL, paths, secrets) leaks.
 */
export function toXrpcErrorResponse(err: unknown): XrpcErrorResponse {
  for (const [type, translate] of DOMAIN_ERRORS) {
    if (err instanceof type) err = translate(err as never);
  }
  if (err instanceof XrpcError) {
    return { status: err.status, body: { error: err.error, message: err.message }, internal: false };
  }
  return {
    status: 500,
    body: { error: "InternalServerError", message: "Internal Server Error" },
    internal: true,
  };
}
