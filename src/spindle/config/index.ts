/**
 * The spindle's configuration, read once at start-up: loader.ts builds the frozen `Config`
 * from the environment (passed in), the config file (file.ts) and the defaults of the settings
 * table (fields.ts, with the value parsers of parsers.ts); secrets.ts reads the key material.
 */
export { ConfigError } from "../errors.ts";
export { FIELDS } from "./fields.ts";
export { DEFAULT_CONFIG_PATH, type LoadConfigOptions, loadKubernetesSection } from "./file.ts";
export {
  type Config,
  DEV_OWNER_PLACEHOLDER,
  devDefaults,
  type EngineName,
  loadConfig,
  QUEUE_PER_SLOT,
  type SecretsProviderName,
  schedulerLimits,
} from "./loader.ts";
export { parseGoDuration } from "./parsers.ts";
export { decodeSecretsKey } from "./secrets.ts";
