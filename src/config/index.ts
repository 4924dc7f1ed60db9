export { loadConfig, parseConfig, defaultConfigPath, formatPath, type LoadedConfig } from './load.js';
export { configSchema, shardFunctions, type Config, type TableConfig, type ServerConfig, type TlsConfig } from './schema.js';
export { parseShardRange } from './validate.js';
export { maskUrl, redactSecrets, registerSecret } from './secrets.js';
