import { quoteId } from '../mysql/connect.js';
import type { ColumnSpec, Row, TableSpec } from './types.js';

/**
 * The shard table's DDL, from the row pipeline's TableSpec: the same for every shard. Columns keep
 * their source order; no AUTO_INCREMENT and no defaults, since every value comes from the legacy
 * side; the primary key and secondary indexes of the source are kept. A unique secondary index
 * becomes a plain index: one shard cannot enforce a rule over all shards, and a per-shard unique
 * key would make an idempotent upsert replace or update a different row during copy and replay.
 */
export function targetDdl(spec: TableSpec, database: string): string {
  const lines = spec.columns.map(columnDefinition);
  lines.push(`PRIMARY KEY (${spec.primaryKey.map((k) => quoteId(targetNameOf(spec, k))).join(', ')})`);
  for (const index of spec.indexes ?? []) {
    lines.push(`KEY ${quoteId(index.name)} (${index.columns.map((c) => quoteId(targetNameOf(spec, c))).join(', ')})`);
  }
  return (
    `CREATE TABLE IF NOT EXISTS ${quoteId(database)}.${quoteId(spec.target)} (\n  ${lines.join(',\n  ')}\n)` +
    ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin'
  );
}

export function columnDefinition(c: ColumnSpec): string {
  const collation = c.targetCollation ? ` CHARACTER SET utf8mb4 COLLATE ${c.targetCollation}` : '';
  return `${quoteId(c.target)} ${c.targetType}${collation} ${c.nullable ? 'NULL' : 'NOT NULL'}`;
}

/** The target name of a source column. */
export function targetNameOf(spec: TableSpec, source: string): string {
  const column = spec.columns.find((c) => c.source === source);
  if (!column) throw new Error(`table ${spec.name}: no column ${source}`);
  return column.target;
}

/** Positions of the primary key columns in a row of the spec. */
export function keyPositions(spec: TableSpec): number[] {
  return spec.primaryKey.map((k) => spec.columns.findIndex((c) => c.source === k));
}

/** Position of the shard key column in a row of the spec. */
export function shardKeyPosition(spec: TableSpec): number {
  return spec.columns.findIndex((c) => c.source === spec.shardKey);
}

/**
 * The text of a row's shard key, as the shard map takes it. A NULL one routes nowhere: callers set
 * such rows aside first (copy and verify report them as unrepresentable), so it is a bug here.
 */
export function shardKeyText(spec: TableSpec, row: Row, at: number = shardKeyPosition(spec)): string {
  const value = row[at];
  if (value === null || value === undefined) throw new Error(`table ${spec.name}: a row's shard key ${spec.shardKey} is NULL: it routes to no shard`);
  return String(value);
}

/**
 * A text column whose shard collation equates values of other bytes: 'k1' and 'K1' under a _ci
 * collation, 'k' and 'k ' under PAD SPACE (utf8mb4_bin too). Only *_nopad_bin compares bytes. A
 * primary key with such a column has one row per spelling class, whose spelling can change.
 */
export function isRespellable(column: ColumnSpec): boolean {
  const collation = targetCollationOfColumn(column);
  return collation !== undefined && !/_nopad_bin$/i.test(collation);
}

/**
 * A text column's shard collation: the MySQL type map names it apart (targetCollation), the SQL
 * Server one in its target type's COLLATE clause. Read only the former, a SQL Server text key under
 * a case-insensitive collation was taken for one compared by bytes, and an upsert of 'K1' over
 * 'k1' kept the shard's old spelling.
 */
export function targetCollationOfColumn(column: ColumnSpec): string | undefined {
  return column.targetCollation ?? /\bCOLLATE\s+([A-Za-z0-9_]+)/i.exec(column.targetType)?.[1];
}

/** Positions of the primary key columns that are respellable (see isRespellable). */
export function respellableKeyPositions(spec: TableSpec): number[] {
  return keyPositions(spec).filter((i) => isRespellable(spec.columns[i]!));
}
