/** The secrets provider's key material: the sqlite provider's AES key, OpenBao's token file. */
import { readFileSync } from "node:fs";
import { ConfigError } from "../errors.ts";
import { FIELDS } from "./fields.ts";
import { type Env, type Layers, resolve } from "./file.ts";

/** Decodes a 32-byte AES key written as 64 hex digits or base64 (with or without padding). */
export function decodeSecretsKey(text: string): Uint8Array | null {
  const s = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(s)) return new Uint8Array(Buffer.from(s, "hex"));
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(s)) {
    const bytes = Buffer.from(s.replace(/-/g, "+").replace(/_/g, "/"), "base64");
    if (bytes.length === 32) return new Uint8Array(bytes);
  }
  return null;
}

const KEY_EXPECTED =
  "expected a 32-byte AES-256 key as 64 hex digits or base64 (generate one with `openssl rand -base64 32`)";

export function loadSecretsKey(env: Env, file: Layers): Uint8Array {
  const inline = resolve(FIELDS.secretsKey, env, file);
  const keyFile = resolve(FIELDS.secretsKeyFile, env, file);
  if (inline !== undefined && keyFile !== undefined) {
    throw new ConfigError(
      "SPINDLE_SERVER_SECRETS_KEY",
      "set either SPINDLE_SERVER_SECRETS_KEY or SPINDLE_SERVER_SECRETS_KEY_FILE, not both",
    );
  }
  if (inline !== undefined) {
    // Never echo the value: it is the key.
    const key = decodeSecretsKey(inline);
    if (!key) throw new ConfigError("SPINDLE_SERVER_SECRETS_KEY", KEY_EXPECTED);
    return key;
  }
  if (keyFile === undefined) {
    throw new ConfigError(
      "SPINDLE_SERVER_SECRETS_KEY_FILE",
      "is required with the sqlite secrets provider (secret values are encrypted at rest); or set SPINDLE_SERVER_SECRETS_KEY",
    );
  }
  let contents: string;
  try {
    contents = readFileSync(keyFile, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new ConfigError("SPINDLE_SERVER_SECRETS_KEY_FILE", `cannot read ${keyFile} (${code})`, {
      cause: err,
    });
  }
  const key = decodeSecretsKey(contents);
  if (!key) throw new ConfigError("SPINDLE_SERVER_SECRETS_KEY_FILE", `${keyFile}: ${KEY_EXPECTED}`);
  return key;
}

export function loadOpenbaoToken(env: Env, file: Layers): string | null {
  const tokenFile = resolve(FIELDS.openbaoTokenFile, env, file);
  if (tokenFile === undefined) return null;
  try {
    const token = readFileSync(tokenFile, "utf8").trim();
    if (token === "")
      throw new ConfigError("SPINDLE_SERVER_SECRETS_OPENBAO_TOKEN_FILE", `${tokenFile} is empty`);
    return token;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new ConfigError("SPINDLE_SERVER_SECRETS_OPENBAO_TOKEN_FILE", `cannot read ${tokenFile} (${code})`, {
      cause: err,
    });
  }
}
