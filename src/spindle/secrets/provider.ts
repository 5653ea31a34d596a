/**
 * The secrets provider contract (spec §5.2), shared by the `sqlite` and `openbao` providers and
 * checked by one behaviour suite (`test/spindle/secrets-providers.test.ts`).
 *
 * `repo` is the scope key from `rbac/repo-ref.ts` `repoScopeKey()`: the repo DID, or
 * `<ownerDid>/<name>` for repos known only by name. Secrets of different scope keys never mix.
 *
 * Contract:
 * - `add` validates key and value first (`SecretsError` InvalidKey / InvalidValue), then stores
 *   atomically; an existing (repo, key) → `KeyAlreadyPresent`, and the old value is kept.
 * - `remove` of a missing (repo, key) → `KeyNotFound`.
 * - `listLocked` never returns values; `listUnlocked` is for the runner only (never for XRPC).
 *   Both are sorted by key and return [] for a repo with no secrets.
 * - Backend trouble → `SecretsError` BackendFailure, whose message is fixed; details live in
 *   `cause` and never include a secret value.
 * - Values never reach logs, error messages or metrics from here.
 */
import { type SecretValueProblem, secretValueProblem } from "../../mask/secret-value.ts";
import { SecretsError, type SecretsErrorCode } from "../errors.ts";

/** What `listSecrets` may show: everything but the value. */
export interface LockedSecret {
  repo: string;
  key: string;
  /** RFC 3339, UTC, second precision, e.g. `2026-02-10T12:00:00Z`. */
  createdAt: string;
  createdBy: string;
}

export interface UnlockedSecret extends LockedSecret {
  value: string;
}

export interface NewSecret {
  repo: string;
  key: string;
  value: string;
  /** DID of the actor who added it. */
  createdBy: string;
  /** Only for moving existing secrets (`moveSecrets`); new secrets get the provider's clock. */
  createdAt?: string;
}

export interface SecretsProvider {
  readonly kind: "sqlite" | "openbao";
  add(secret: NewSecret): Promise<void>;
  remove(repo: string, key: string): Promise<void>;
  listLocked(repo: string): Promise<LockedSecret[]>;
  listUnlocked(repo: string): Promise<UnlockedSecret[]>;
  /** Releases resources; the provider is unusable afterwards. */
  stop(): Promise<void>;
}

/** §5.2 key rule: an identifier usable as an environment variable name. */
export const SECRET_KEY_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** Lexicon `sh.tangled.repo.addSecret` limits; lexicon string lengths count UTF-8 bytes. */
export const SECRET_KEY_MAX = 50;
export const SECRET_VALUE_MAX = 200;

export function validateSecretKey(key: unknown): asserts key is string {
  if (typeof key !== "string" || key.length > SECRET_KEY_MAX || !SECRET_KEY_RE.test(key)) {
    throw new SecretsError("InvalidKey");
  }
}

export function validateSecretValue(value: unknown): asserts value is string {
  if (typeof value !== "string") throw new SecretsError("InvalidValue");
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes < 1 || bytes > SECRET_VALUE_MAX) throw new SecretsError("InvalidValue");
}

/**
 * What `addSecret` accepts beyond the lexicon's limits: the rule of src/mask/secret-value.ts (no
 * NUL, at least four characters). Not part of `add`, so values stored before the rule existed
 * can still be moved between scopes (move.ts); runs report them instead (pipelines/run-secrets.ts).
 */
export function validateNewSecretValue(value: unknown): asserts value is string {
  validateSecretValue(value);
  const problem = secretValueProblem(value);
  if (problem !== undefined) throw new SecretsError(PROBLEM_CODES[problem]);
}

/** Every problem of the rule has its code: a new one cannot be let through unnoticed. */
const PROBLEM_CODES: Record<SecretValueProblem, SecretsErrorCode> = {
  nul: "ValueHasNul",
  short: "ValueTooShort",
  blank: "ValueBlank",
};

export const byKey = <T extends { key: string }>(a: T, b: T): number =>
  a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
