export { crc32, murmur3, murmur3Bytes } from './hash.js';
export {
  createShardMap,
  shardMapFromConfig,
  shardOfKey,
  modShard,
  keyText,
  formatDatabaseName,
  type ShardMap,
  type ShardMapSpec,
  type ShardFunction,
  type ShardKey,
  type ShardServer,
  type ShardLocation,
} from './map.js';
