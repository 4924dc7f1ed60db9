import type { TableConfig } from '../config/schema.js';
import type { ChunkKey } from '../store/leases.js';
import type { Row, TableSpec } from '../rows/types.js';

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
   * Upper bounds (inclusive) of consecutive chunks of about `chunkRows` rows, in key order;
   * the last chunk is open-ended (upper bound null) and is not yielded.
   */
  chunkBoundaries(spec: TableSpec, chunkRows: number): AsyncIterable<ChunkKey>;
  /**
   * The rows with lower < key <= upper (null = unbounded), in key order, in batches of
   * at most `batchRows`, with values already converted to target form by the row pipeline.
   */
  readRange(spec: TableSpec, lower: ChunkKey | null, upper: ChunkKey | null, batchRows: number): AsyncIterable<Row[]>;
  /** The CDC position to record before the first chunk is read. */
  startPosition(): Promise<StartPosition>;
  close(): Promise<void>;
}
