/**
 * The `openbao` secrets provider (spec §5.2): KV version 2 over OpenBao's HTTP API, normally
 * through an OpenBao proxy that injects its auto-auth token (so `token` is usually null).
 *
 * Layout, as upstream, so an existing OpenBao store keeps working:
 *   data:   <mount>/data/repos/<sanitized repo>/<key>
 *           fields { value, repo, key, created_at (RFC 3339), created_by }
 *   list:   LIST <mount>/metadata/repos/<sanitized repo>
 *   remove: DELETE <mount>/metadata/repos/<sanitized repo>/<key>   (all versions)
 * where "sanitized" replaces "/", ":" and "." with "_".
 *
 * Differences from upstream, on purpose:
 * - add uses check-and-set 0, so two concurrent adds of one key cannot both win;
 * - sanitizing can map two repos to one path (`a.b` and `a_b`); the stored `repo` field is
 *   checked on list and remove so one repo never sees or deletes the other's secret.
 */

import { rfc3339Seconds } from "../../protocol/time.ts";
import { SecretsError } from "../errors.ts";
import {
  byKey,
  type LockedSecret,
  type NewSecret,
  type SecretsProvider,
  type UnlockedSecret,
  validateSecretKey,
  validateSecretValue,
} from "./provider.ts";

export interface OpenbaoSecretsOptions {
  /** Base URL of the OpenBao proxy or server, e.g. `http://127.0.0.1:8200`. */
  addr: string;
  /** KV v2 mount path, e.g. `spindle`. */
  mount: string;
  /** Sent as `X-Vault-Token` when set. */
  token?: string | null;
  /** Per-request timeout (ms). */
  timeoutMs?: number;
  now?: () => Date;
}

/** Upstream's path rule: "/", ":" and "." become "_". */
export function sanitizeRepoPath(repo: string): string {
  return repo.replace(/[/:.]/g, "_");
}

interface KvData {
  value?: unknown;
  repo?: unknown;
  key?: unknown;
  created_at?: unknown;
  created_by?: unknown;
}

export class OpenbaoSecretsProvider implements SecretsProvider {
  readonly kind = "openbao";
  readonly #base: string;
  readonly #mount: string;
  readonly #token: string | null;
  readonly #timeoutMs: number;
  readonly #now: () => Date;

  constructor(opts: OpenbaoSecretsOptions) {
    this.#base = opts.addr.replace(/\/+$/, "");
    this.#mount = opts.mount.replace(/^\/+|\/+$/g, "");
    this.#token = opts.token ?? null;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#now = opts.now ?? (() => new Date());
  }

  /**
   * Builds the provider and runs the start-up check (`auth/token/lookup-self`, 10 s) so a
   * missing proxy or a bad token stops start-up rather than the first secrets call.
   */
  static async create(opts: OpenbaoSecretsOptions): Promise<OpenbaoSecretsProvider> {
    const p = new OpenbaoSecretsProvider(opts);
    await p.checkToken();
    return p;
  }

  async checkToken(): Promise<void> {
    const res = await this.#request("GET", "auth/token/lookup-self");
    if (res.status !== 200) throw await this.#failure("GET", "auth/token/lookup-self", res);
  }

  async add(secret: NewSecret): Promise<void> {
    validateSecretKey(secret.key);
    validateSecretValue(secret.value);
    const path = this.#dataPath(secret.repo, secret.key);
    const body = {
      options: { cas: 0 },
      data: {
        value: secret.value,
        repo: secret.repo,
        key: secret.key,
        created_at: secret.createdAt ?? rfc3339Seconds(this.#now()),
        created_by: secret.createdBy,
      },
    };
    const res = await this.#request("POST", path, body);
    if (res.status === 200 || res.status === 204) return;
    // KV v2 answers 400 "check-and-set parameter did not match the current version" when the
    // key already has a version.
    if (res.status === 400 && (await errorsOf(res)).some((e) => e.includes("check-and-set"))) {
      throw new SecretsError("KeyAlreadyPresent");
    }
    throw await this.#failure("POST", path, res);
  }

  async remove(repo: string, key: string): Promise<void> {
    validateSecretKey(key);
    const current = await this.#read(repo, key);
    if (current === null) throw new SecretsError("KeyNotFound");
    const path = `${this.#mount}/metadata/repos/${sanitizeRepoPath(repo)}/${key}`;
    const res = await this.#request("DELETE", path);
    if (res.status !== 204 && res.status !== 200) throw await this.#failure("DELETE", path, res);
  }

  async listLocked(repo: string): Promise<LockedSecret[]> {
    return (await this.listUnlocked(repo)).map(({ value: _value, ...locked }) => locked);
  }

  async listUnlocked(repo: string): Promise<UnlockedSecret[]> {
    const path = `${this.#mount}/metadata/repos/${sanitizeRepoPath(repo)}`;
    const res = await this.#request("GET", `${path}?list=true`);
    if (res.status === 404) return [];
    if (res.status !== 200) throw await this.#failure("LIST", path, res);
    const keys = ((await res.json()) as { data?: { keys?: unknown } }).data?.keys;
    const names = Array.isArray(keys)
      ? keys.filter((k): k is string => typeof k === "string" && !k.endsWith("/"))
      : [];
    const out: UnlockedSecret[] = [];
    for (const key of names) {
      const s = await this.#read(repo, key);
      if (s) out.push(s);
    }
    return out.sort(byKey);
  }

  async stop(): Promise<void> {}

  /** Reads one secret; null when absent, soft-deleted, or stored for a different repo. */
  async #read(repo: string, key: string): Promise<UnlockedSecret | null> {
    const path = this.#dataPath(repo, key);
    const res = await this.#request("GET", path);
    if (res.status === 404) return null;
    if (res.status !== 200) throw await this.#failure("GET", path, res);
    const data = ((await res.json()) as { data?: { data?: KvData | null } }).data?.data;
    if (!data || data.repo !== repo || typeof data.value !== "string") return null;
    return {
      repo,
      key,
      value: data.value,
      createdAt: typeof data.created_at === "string" ? data.created_at : "",
      createdBy: typeof data.created_by === "string" ? data.created_by : "",
    };
  }

  #dataPath(repo: string, key: string): string {
    return `${this.#mount}/data/repos/${sanitizeRepoPath(repo)}/${key}`;
  }

  async #request(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { "X-Vault-Request": "true" };
    if (this.#token) headers["X-Vault-Token"] = this.#token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    try {
      return await fetch(`${this.#base}/v1/${path}`, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        redirect: "error",
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      // Network errors carry the URL at most (paths hold repo and key names, never values).
      throw new SecretsError("BackendFailure", {
        cause: new Error(`openbao ${method} ${path}: ${(err as Error).message}`),
      });
    }
  }

  async #failure(method: string, path: string, res: Response): Promise<SecretsError> {
    const errors = await errorsOf(res);
    return new SecretsError("BackendFailure", {
      cause: new Error(
        `openbao ${method} ${path}: HTTP ${res.status}${errors.length ? ` (${errors.join("; ")})` : ""}`,
      ),
    });
  }
}

/** The `errors` array of an OpenBao error body (texts about the request, not its data). */
async function errorsOf(res: Response): Promise<string[]> {
  try {
    const body = (await res.json()) as { errors?: unknown };
    return Array.isArray(body.errors) ? body.errors.map(String) : [];
  } catch {
    return [];
  }
}
