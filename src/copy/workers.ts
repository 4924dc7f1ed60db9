import type { Config } from '../config/schema.js';

/** Above this many shards, `copy.workers: auto` runs 2 chunk workers instead of 4. */
const MANY_SHARDS = 256;

/**
 * Chunk workers of one `full` process: `copy.workers`, or for 'auto' 4, and 2 above 256 shards.
 * With 16 shards reading chunks in parallel is part of the rate (2 workers were slower). With
 * many shards a chunk gives each shard a few dozen lines, the writes bound the copy, and each
 * worker's chunk in flight is only memory: at 1,024 shards 2 workers copied 2M rows as fast as 4
 * (29.9-33.4 s either way) in 272-286 MB of RSS instead of 323-332 MB.
 */
export function copyWorkers(config: Pick<Config, 'copy' | 'shards'>): number {
  const configured = config.copy.workers;
  if (configured !== 'auto') return configured;
  return config.shards.count > MANY_SHARDS ? 2 : 4;
}
