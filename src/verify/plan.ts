import type { Config } from '../config/schema.js';
import type { TableSpec } from '../rows/types.js';
import type { SourceReader } from '../source/reader.js';
import type { ChunkKey } from '../store/leases.js';
import { hasIntegerKey, MysqlLegacySide, type LegacySide } from './sides.js';

export interface PlannedChunk {
  chunkNo: number;
  lowerKey: ChunkKey | null;
  upperKey: ChunkKey | null;
}

/**
 * The chunks of one table. A single integer key on a MySQL legacy side is cut into value ranges
 * of about `chunkRows` rows from its smallest and largest key and the catalog's row estimate: no
 * pass over the table, where keyset boundaries would read the whole clustered index once more
 * before any checksum. Uneven ranges (sparse keys) cost nothing but size: drill-down splits any
 * mismatched range. Other keys (and small tables) take the reader's keyset boundaries.
 */
export async function planChunks(reader: SourceReader, legacy: LegacySide, spec: TableSpec, chunkRows: number, samplePercent?: number): Promise<PlannedChunk[]> {
  const chunks = (await valueRanges(legacy, spec, chunkRows)) ?? (await keysetRanges(reader, spec, chunkRows));
  if (samplePercent === undefined || samplePercent >= 100) return chunks;
  const kept = chunks.filter(() => Math.random() * 100 < samplePercent);
  return kept.length > 0 ? kept : [chunks[Math.floor(Math.random() * chunks.length)]!];
}

async function valueRanges(legacy: LegacySide, spec: TableSpec, chunkRows: number): Promise<PlannedChunk[] | null> {
  if (!(legacy instanceof MysqlLegacySide) || !hasIntegerKey(spec)) return null;
  const estimate = await legacy.estimatedRows();
  if (estimate < 10 * chunkRows) return null;
  const span = await legacy.keySpan({ lower: null, upper: null }, {});
  if (!span) return null;
  const [min, max] = span;
  const width = ((max - min + 1n) * BigInt(chunkRows)) / BigInt(estimate) || 1n;
  const chunks: PlannedChunk[] = [];
  let lower: ChunkKey | null = null;
  for (let upper = min - 1n + width; upper < max; upper += width) {
    chunks.push({ chunkNo: chunks.length, lowerKey: lower, upperKey: [String(upper)] });
    lower = [String(upper)];
  }
  chunks.push({ chunkNo: chunks.length, lowerKey: lower, upperKey: null });
  return chunks;
}

async function keysetRanges(reader: SourceReader, spec: TableSpec, chunkRows: number): Promise<PlannedChunk[]> {
  const chunks: PlannedChunk[] = [];
  let lower: ChunkKey | null = null;
  for await (const upper of reader.chunkBoundaries(spec, chunkRows)) {
    chunks.push({ chunkNo: chunks.length, lowerKey: lower, upperKey: upper });
    lower = upper;
  }
  chunks.push({ chunkNo: chunks.length, lowerKey: lower, upperKey: null });
  return chunks;
}

/**
 * Rows per verify chunk. Each chunk asks every shard table once and costs a share of a claim and
 * a completion in the control store, so with few rows per shard table that fixed cost dominates;
 * and a chunk that differs is read again in parts, so smaller chunks find a difference for less.
 * auto: about 320 rows per shard table, within 5,000..100,000 (16 shards: 5,120; 1,024 shards:
 * 100,000). At 16 shards and 2M rows (npm run bench -- verify): 2,560-row chunks ran clean at
 * 1.21-1.34x the floor, 5,120 at 0.94-1.16x with 100 scattered differences 1.09x a clean run,
 * 10,240 at 1.17-1.50x with the differences 2.08x.
 */
export function verifyChunkRows(config: Pick<Config, 'verify' | 'shards'>): number {
  const configured = config.verify.chunk_rows;
  if (configured !== 'auto') return configured;
  return Math.min(100_000, Math.max(5_000, 320 * config.shards.count));
}
