import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Creates a fresh AES-256 key file (base64, mode 0600) at `path` unless one already exists.
 * For development only: production keys are provisioned by the operator (a Kubernetes Secret
 * mounted as a file). Returns true when a new key was written.
 */
export function ensureSecretsKeyFile(path: string): boolean {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    // `wx` fails if the file exists, so an existing key is never overwritten (no race either).
    writeFileSync(path, `${randomBytes(32).toString("base64")}\n`, { flag: "wx", mode: 0o600 });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
}
