import { SecretsError } from "../errors.ts";
import type { SecretsProvider } from "./provider.ts";

/**
 * Moves every secret of scope `from` to scope `to`, keeping createdAt/createdBy: used when a repo
 * known by `<ownerDid>/<name>` gains a repo DID (gen2 §2.2 "migrate legacy name-keyed secrets").
 * A key already present under `to` wins and the old copy is dropped. Safe to re-run after a
 * crash: each secret is added before it is removed. Returns the keys moved.
 */
export async function moveSecrets(provider: SecretsProvider, from: string, to: string): Promise<string[]> {
  if (from === to) return [];
  const moved: string[] = [];
  for (const s of await provider.listUnlocked(from)) {
    try {
      await provider.add({
        repo: to,
        key: s.key,
        value: s.value,
        createdBy: s.createdBy,
        createdAt: s.createdAt,
      });
      moved.push(s.key);
    } catch (err) {
      if (!(err instanceof SecretsError && err.code === "KeyAlreadyPresent")) throw err;
    }
    await provider.remove(from, s.key);
  }
  return moved;
}
