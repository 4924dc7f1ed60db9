import type { TableConfig } from '../config/schema.js';
import type { ChunkKey } from '../store/leases.js';
import type { Row, TableSpec } from '../rows/types.js';
import type { RejectedValue } from '../rows/convert.js';
import type { ShardMap } from '../shard/map.js';

/** Where change capture must start for replay to converge with a copy that begins now. */
export interface StartPosition {
  kind: 'mssql' | 'mysql' | 'kafka';
  /** mssql: { lsn }, mysql: { file, pos, gtid }, kafka: { topic, offsets } */
  position: Record<string, unknown>;
}

/**
 * The legacy side, read by full copy and verify. Implementations: mysql (MySQL/MariaDB,
 * also for resharding and the sandbox) and mssql (SQL Server through the mssql package).
 * Reads are keyset-paginated by primary key; nothing reads a whole table into memory.
 */
export interface SourceReader {
  readonly kind: 'mssql' | 'mysql';
  /**
   * Reads the catalog and builds the table's spec (columns, types, primary key) through the row
   * pipeline's type map. Throws RefusedError naming the table and column when the table, the shard
   * key or the primary key is missing.
   */
  describeTable(name: string, table: TableConfig): Promise<TableSpec>;
  /**
   * Upper bounds (inclusive) of consecutive chunks of about `chunkRows` rows, in key order,
   * starting after `after` (null = from the start); the last chunk is open-ended (upper bound
   * null) and is not yielded.
   */
  chunkBoundaries(spec: TableSpec, chunkRows: number, after?: ChunkKey | null): AsyncIterable<ChunkKey>;
  /**
   * The rows with lower < key <= upper (null = unbounded), in key order, in batches of
   * at most `batchRows`, with values already converted to target form by the row pipeline.
   */
  readRange(spec: TableSpec, lower: ChunkKey | null, upper: ChunkKey | null, batchRows: number, options?: ReadRangeOptions): AsyncIterable<Row[]>;
  /**
   * Optional bulk path for full copy (MySQL sources): the range's rows as LOAD DATA text lines
   * (src/rows/tsv.ts format) grouped by shard, their text made by the source server. Null when a value in
   * the range cannot be converted: the caller then copies the range through readRange.
   */
  readTsv?(spec: TableSpec, lower: ChunkKey | null, upper: ChunkKey | null, map: ShardMap, handOff?: TsvHandOff): Promise<TsvChunk | null>;
  /**
   * The rows with these keys (key text, as chunk bounds hold it), converted like readRange's; a
   * key not in the table is absent. A row with a value the target cannot hold is left out of
   * `rows` and listed in `rejected`: it exists, so no caller may take it for absent.
   */
  rowsByKey(spec: TableSpec, keys: ChunkKey[]): Promise<{ rows: Row[]; rejected: RejectedRow[] }>;
  /** The CDC position to record before the first chunk is read. */
  startPosition(): Promise<StartPosition>;
  close(): Promise<void>;
}

export interface ReadRangeOptions {
  /**
   * Called for each value the target cannot hold; its row is left out of the batch. Without it,
   * readRange throws UnrepresentableError at the first such value (rows.on_unrepresentable: fail).
   */
  onRejected?(rejected: RejectedValue): void;
}

/** Rows of one key range as text per shard, in the format of src/rows/tsv.ts. */
export interface TsvChunk {
  rows: number;
  /** Per shard: blocks of whole lines (one line or many per Buffer). */
  byShard: Map<number, Buffer[]>;
  /** Per shard: how many lines its blocks hold. */
  rowsByShard: Map<number, number>;
}

/**
 * Parts of a chunk's lines handed over while the chunk is still being read: once the lines built
 * hold `partBytes`, they go to `onPart` and the read waits for it. A chunk is not held whole (a
 * 50,000-row chunk of 1 MB rows is 50 GB); what readTsv returns is then the last part only. A
 * null return (the row path) comes after parts may have been handed over.
 */
export interface TsvHandOff {
  partBytes: number;
  onPart: (part: TsvChunk) => Promise<void>;
}

/** A row rowsByKey read but could not convert: its key (key text) and why. */
export interface RejectedRow {
  key: ChunkKey;
  message: string;
}

/** A value the target cannot hold, met with rows.on_unrepresentable: fail. */
export class UnrepresentableError extends Error {
  override name = 'UnrepresentableError';
  constructor(readonly rejected: RejectedValue) {
    super(`table ${rejected.table}, key (${rejected.key.join(', ')}), column ${rejected.column}: ${rejected.reason} (value ${rejected.value})`);
  }
}
