import pLimit from 'p-limit';
import type { Config } from '../config/schema.js';
import type { TableSpec } from '../rows/types.js';
import type { SourceReader } from '../source/reader.js';
import type { ChunkKey } from '../store/leases.js';
import { evenWidth, hasIntegerKey, VALUE_RANGES_MIN_CHUNKS } from '../source/value-ranges.js';
import { MysqlLegacySide, type LegacySide } from './sides.js';

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
 * mismatched range, and a sample weighs them by their estimated rows (sampleChunks). Other keys (and
 * small tables) take the reader's keyset boundaries.
 */
export async function planChunks(reader: SourceReader, legacy: LegacySide, spec: TableSpec, chunkRows: number, samplePercent?: number): Promise<PlannedChunk[]> {
  const byValue = await valueRanges(legacy, spec, chunkRows);
  const chunks = byValue ?? (await keysetRanges(reader, spec, chunkRows));
  if (samplePercent === undefined || samplePercent >= 100) return chunks;
  // Value ranges of a sparse or clustered key hold anything from no row to many times chunkRows:
  // a sample weighs them by the optimizer's estimate. Keyset ranges hold chunkRows each.
  const weights = byValue ? await estimatedRows(legacy as MysqlLegacySide, byValue) : chunks.map(() => 1);
  return sampleChunks(chunks, weights, samplePercent);
}

/**
 * About `percent` of the rows, by the chunks' weights (their estimated rows): each chunk is kept
 * with probability percent x its weight / the mean weight (at most 1), so the empty ranges of a
 * sparse key are seldom taken and dense ones more often; equal weights keep about percent of the
 * chunks. Never none: one chunk drawn by weight then.
 */
export function sampleChunks<C>(chunks: C[], weights: number[], percent: number, random: () => number = Math.random): C[] {
  const total = weights.reduce((a, b) => a + b, 0);
  if (total <= 0) return sampleChunks(chunks, chunks.map(() => 1), percent, random);
  const mean = total / chunks.length;
  const kept = chunks.filter((_c, i) => random() < Math.min(1, ((percent / 100) * weights[i]!) / mean));
  if (kept.length > 0) return kept;
  let draw = random() * total;
  const drawn = chunks.findIndex((_c, i) => (draw -= weights[i]!) < 0);
  return [chunks[drawn < 0 ? chunks.length - 1 : drawn]!];
}

/** Each range's estimated rows, a few ranges at once (10,000 ranges of a billion-row table: seconds). */
async function estimatedRows(legacy: MysqlLegacySide, chunks: PlannedChunk[]): Promise<number[]> {
  const limit = pLimit(4);
  return Promise.all(chunks.map((c) => limit(() => legacy.estimatedRowsIn({ lower: c.lowerKey, upper: c.upperKey }))));
}

async function valueRanges(legacy: LegacySide, spec: TableSpec, chunkRows: number): Promise<PlannedChunk[] | null> {
  if (!(legacy instanceof MysqlLegacySide) || !hasIntegerKey(spec)) return null;
  const estimate = await legacy.estimatedRows();
  if (estimate < VALUE_RANGES_MIN_CHUNKS * chunkRows) return null;
  const span = await legacy.keySpan({ lower: null, upper: null }, {});
  if (!span) return null;
  const [min, max] = span;
  const width = evenWidth(min, max, estimate, chunkRows);
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
