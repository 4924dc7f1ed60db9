/**
 * membermig as a library: the same core functions the CLI calls.
 * The shim for application services is exported separately as 'membermig/shim'.
 */
export { loadConfig, parseConfig, configSchema, maskUrl, type Config, type TableConfig } from './config/index.js';
export * from './shard/index.js';
export { runInit, type InitResult } from './init/index.js';
export { collectStatus, type Status } from './store/status.js';
export { openControlStore, setupControlStore, type ControlStore } from './store/control.js';
export { ExitCode, RefusedError, ConfigError } from './errors.js';
export type { Row, RowValue, ColumnSpec, TableSpec, SourceType } from './rows/types.js';
export { createSourceReader, type SourceReader } from './source/index.js';
export { createShardWriter, type ShardWriter } from './target/index.js';
export { mysqlTypeMap, targetDdl, convertRow } from './rows/index.js';
export {
  setGray,
  rollbackGray,
  setShimMode,
  showSettings,
  settingsHistory,
  checkMember,
  checkGates,
  bucketOf,
  parsePercent,
  formatPercent,
  SHIM_MODES,
  type ShimMode,
  type GrayChange,
  type ChangeResult,
} from './gray/index.js';
export { runFullCopy, type FullCopyOptions, type FullCopyResult } from './copy/index.js';
export { runVerify, type VerifyOptions, type VerifyResult } from './verify/index.js';
export { runSync, type SyncOptions, type SyncResult } from './cdc/sync.js';
export { applyChanges, type ApplyContext, type ApplyResult, type FailedChange } from './cdc/apply.js';
export { DebeziumDecoder, type KafkaRecord, type Decoded } from './cdc/debezium/decode.js';
export type { ChangeEvent, ChangeOrigin, PoisonEvent } from './cdc/types.js';
