/**
 * The `sqlite` secrets provider. Unlike upstream (plaintext), every value is encrypted at rest
 * with AES-256-GCM: a fresh random 12-byte nonce per value and `repo\0key` as additional
 * authenticated data, so a row copied to another repo or key fails to decrypt instead of
 * leaking into the wrong workflow. The key comes from configuration
 * (`SPINDLE_SERVER_SECRETS_KEY[_FILE]`); it is copied in and never exposed.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type { DatabaseSync } from "node:sqlite";
import { rfc3339Seconds } from "../../protocol/time.ts";
import { SecretRows } from "../db/secret-rows.ts";
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

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export interface SqliteSecretsOptions {
  db: DatabaseSync;
  /** 32-byte AES-256 key. */
  key: Uint8Array;
  /** Injected clock for `createdAt`. */
  now?: () => Date;
}

export class SqliteSecretsProvider implements SecretsProvider {
  readonly kind = "sqlite";
  readonly #rows: SecretRows;
  readonly #key: Buffer;
  readonly #now: () => Date;

  constructor(opts: SqliteSecretsOptions) {
    if (opts.key.length !== 32) throw new TypeError("the sqlite secrets provider needs a 32-byte key");
    this.#rows = new SecretRows(opts.db);
    this.#key = Buffer.from(opts.key);
    this.#now = opts.now ?? (() => new Date());
  }

  async add(secret: NewSecret): Promise<void> {
    validateSecretKey(secret.key);
    validateSecretValue(secret.value);
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.#key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad(secret.repo, secret.key));
    const sealed = Buffer.concat([cipher.update(secret.value, "utf8"), cipher.final(), cipher.getAuthTag()]);
    const inserted = this.#rows.insert({
      repo: secret.repo,
      key: secret.key,
      nonce,
      ciphertext: sealed,
      createdAt: secret.createdAt ?? rfc3339Seconds(this.#now()),
      createdBy: secret.createdBy,
    });
    if (!inserted) throw new SecretsError("KeyAlreadyPresent");
  }

  async remove(repo: string, key: string): Promise<void> {
    validateSecretKey(key);
    if (!this.#rows.delete(repo, key)) throw new SecretsError("KeyNotFound");
  }

  async listLocked(repo: string): Promise<LockedSecret[]> {
    return this.#rows.list(repo).sort(byKey);
  }

  async listUnlocked(repo: string): Promise<UnlockedSecret[]> {
    return this.#rows
      .listSealed(repo)
      .map((r) => ({
        repo: r.repo,
        key: r.key,
        createdAt: r.createdAt,
        createdBy: r.createdBy,
        value: this.#open(r.repo, r.key, r.nonce, r.ciphertext),
      }))
      .sort(byKey);
  }

  async stop(): Promise<void> {
    // The database belongs to the caller; only forget the key material.
    this.#key.fill(0);
  }

  #open(repo: string, key: string, nonce: Uint8Array, sealed: Uint8Array): string {
    try {
      const buf = Buffer.from(sealed);
      const decipher = createDecipheriv("aes-256-gcm", this.#key, nonce, { authTagLength: TAG_BYTES });
      decipher.setAAD(aad(repo, key));
      decipher.setAuthTag(buf.subarray(buf.length - TAG_BYTES));
      return Buffer.concat([
        decipher.update(buf.subarray(0, buf.length - TAG_BYTES)),
        decipher.final(),
      ]).toString("utf8");
    } catch (err) {
      // Wrong key, tampered or moved row. Name the row, never the bytes.
      throw new SecretsError("BackendFailure", {
        cause: new Error(`cannot decrypt secret ${key} of ${repo}: ${(err as Error).message}`),
      });
    }
  }
}

function aad(repo: string, key: string): Buffer {
  return Buffer.from(`${repo}\u0000${key}`, "utf8");
}
