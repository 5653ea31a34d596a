/**
 * Secrets: one interface (`provider.ts`), two providers, chosen by configuration.
 */
import type { DatabaseSync } from "node:sqlite";
import type { Config } from "../config/index.ts";
import { OpenbaoSecretsProvider } from "./openbao.ts";
import type { SecretsProvider } from "./provider.ts";
import { SqliteSecretsProvider } from "./sqlite.ts";

export { ensureSecretsKeyFile } from "./key-file.ts";
export { moveSecrets } from "./move.ts";
export { type OpenbaoSecretsOptions, OpenbaoSecretsProvider, sanitizeRepoPath } from "./openbao.ts";
export {
  type LockedSecret,
  type NewSecret,
  SECRET_KEY_MAX,
  SECRET_KEY_RE,
  SECRET_VALUE_MAX,
  type SecretsProvider,
  type UnlockedSecret,
  validateNewSecretValue,
  validateSecretKey,
  validateSecretValue,
} from "./provider.ts";
export { type SqliteSecretsOptions, SqliteSecretsProvider } from "./sqlite.ts";

/**
 * The provider the configuration asks for. For openbao this performs the start-up token check
 * and rejects (`SecretsError` BackendFailure) when OpenBao is unreachable or the token is bad.
 */
export async function createSecretsProvider(config: Config, db: DatabaseSync): Promise<SecretsProvider> {
  if (config.secrets.provider === "openbao") {
    const { proxyAddr, mount, token } = config.secrets.openbao;
    return OpenbaoSecretsProvider.create({ addr: proxyAddr, mount, token });
  }
  if (!config.secrets.key) throw new Error("sqlite secrets provider configured without a key");
  return new SqliteSecretsProvider({ db, key: config.secrets.key });
}
