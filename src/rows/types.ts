/**
 * The row pipeline's vocabulary. A value travels as text in the target's literal form
 * (decimal digits, 'YYYY-MM-DD HH:MM:SS.ffffff', canonical GUID text), as bytes, or as NULL:
 * never through a JS number or Date, so nothing is rounded on the way.
 */
export type RowValue = string | Buffer | null;

/**
 * A batch of rows on the row path (copy's readRange batches, the shard writer's statements) is cut
 * at this many bytes of values as well as at its row count: rows of MB-sized values would
 * otherwise be held (and sent in one statement) batch_rows at a time.
 */
export const BATCH_BYTES = 4 * 1024 * 1024;

/** About the bytes a row's values take on the wire (text as its length, bytes as hex: twice theirs). */
export function rowBytes(row: readonly RowValue[]): number {
  let n = 0;
  for (const v of row) n += v === null ? 4 : typeof v === 'string' ? v.length + 2 : Buffer.isBuffer(v) ? 2 * v.length + 3 : 8;
  return n;
}

/** A row as an array of values in the order of its TableSpec's columns. */
export type Row = RowValue[];

/** A column's type on the legacy side, as its catalog describes it. */
export interface SourceType {
  /** Lower-case type name as the source catalog spells it: int, bigint, decimal, nvarchar, datetime2, ... */
  dataType: string;
  /** Character length or byte length; -1 for MAX types. */
  length?: number;
  precision?: number;
  scale?: number;
  unsigned?: boolean;
  /** Source collation (SQL Server) or character set (MySQL) of a text column. */
  collation?: string;
  charset?: string;
  /** MySQL sources: the full COLUMN_TYPE, e.g. enum('a','b'), datetime(6), int(10) unsigned. */
  columnType?: string;
}

export interface ColumnSpec {
  /** Name on the legacy side. */
  source: string;
  /** Name in every shard table. */
  target: string;
  sourceType: SourceType;
  /** MySQL column type for the shard DDL, e.g. DECIMAL(18,2), DATETIME(6), VARCHAR(100). */
  targetType: string;
  /** Collation of a text column in the shard DDL (utf8mb4_*); absent for non-text columns. */
  targetCollation?: string;
  /** How the value travels in bulk text form: 'text' as is, 'hex' for bytes (see src/rows/tsv.ts). */
  wire?: 'text' | 'hex';
  nullable: boolean;
}

/** A secondary index of the source table, recreated in every shard table (target column names). */
export interface IndexSpec {
  name: string;
  unique: boolean;
  columns: string[];
}

export interface TableSpec {
  /** Logical name from the config (`tables.<name>`). */
  name: string;
  /** Legacy side: schema (SQL Server) or database (MySQL), and table. */
  sourceSchema: string;
  sourceTable: string;
  /** Table name inside each shard database. */
  target: string;
  columns: ColumnSpec[];
  /** Source names of the primary key columns, in key order. */
  primaryKey: string[];
  /** Source name of the shard key column. */
  shardKey: string;
  /**
   * Source name of the column every writer sets to the row's change time (tables.NAME.updated_at):
   * sync then never writes a row over a newer one (a dual write's echo arriving late), nor deletes
   * one newer than its delete's before image (ChangeEvent.beforeUpdatedAt).
   */
  updatedAt?: string;
  /** Secondary indexes to create in the shards (optional: absent = none). */
  indexes?: IndexSpec[];
}

/** A source value the target cannot hold exactly (e.g. year 0001, a 100 ns fraction): never bent, flagged. */
export class Unrepresentable {
  constructor(
    /** Why the target cannot hold it, e.g. "DATETIME(6) would round 100 ns". */
    readonly reason: string,
    /** The source value as text (hex for bytes), for the rejected_values record. */
    readonly value: string,
  ) {}
}

/** How one source column is read, converted and declared on the target. */
export interface ColumnConversion {
  /** MySQL type for the shard DDL, e.g. DECIMAL(18,2), DATETIME(6), CHAR(36). */
  targetType: string;
  /** Collation of a text column on the target (utf8mb4_*). */
  targetCollation?: string;
  /** Bulk text form: 'hex' for bytes; default 'text'. */
  wire?: 'text' | 'hex';
  /** The SELECT expression that reads the column losslessly, e.g. CONVERT(varchar(27), [c], 121). */
  selectExpression(quotedColumn: string): string;
  /** Driver value (as selected above) to target form, or Unrepresentable. */
  convert(value: unknown): RowValue | Unrepresentable;
}

/** Per source kind: the type map of the row pipeline. Throws RefusedError for an unsupported type. */
export interface SourceTypeMap {
  conversion(type: SourceType, column: string): ColumnConversion;
}

/** A value the source server could not hand over in the form asked for, within its max_allowed_packet. */
export class ValueTooLargeError extends Error {
  override name = 'ValueTooLargeError';
}
