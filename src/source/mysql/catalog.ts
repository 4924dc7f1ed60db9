import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { TableConfig } from '../../config/schema.js';
import { RefusedError } from '../../errors.js';
import { checkTableConfig, targetColumnName } from '../table-config.js';
import { isIntegerType, isTextType, mysqlTypeMap, uniqueKeyCollationOf } from '../../rows/mysql.js';
import type { ColumnSpec, IndexSpec, SourceType, TableSpec } from '../../rows/types.js';

interface ColumnRow extends RowDataPacket {
  name: string;
  data_type: string;
  column_type: string;
  char_length: number | string | null;
  num_precision: number | string | null;
  num_scale: number | string | null;
  dt_precision: number | string | null;
  charset: string | null;
  collation: string | null;
  nullable: string;
}

interface IndexRow extends RowDataPacket {
  index_name: string;
  non_unique: number | string;
  column_name: string;
  /** Characters (bytes for binary types) of the column in the index when only a prefix is; else null. */
  sub_part: number | string | null;
}

const num = (v: number | string | null): number | undefined => (v === null ? undefined : Number(v));

/** Splits `database.table` from the config. */
export function splitSource(source: string): { schema: string; table: string } {
  const dot = source.indexOf('.');
  return { schema: source.slice(0, dot), table: source.slice(dot + 1) };
}

/**
 * Reads a MySQL/MariaDB table's catalog into the row pipeline's TableSpec. Refuses (exit 2,
 * before any write) when the table, the shard key, the primary key or an excluded column is
 * not what the config says, naming the table and the column.
 */
export async function describeMysqlTable(pool: Pool, name: string, table: TableConfig): Promise<TableSpec> {
  const { schema, table: tableName } = splitSource(table.source);
  const where = `table ${name} (source ${table.source})`;
  const [tables] = await pool.query<RowDataPacket[]>(
    'SELECT TABLE_TYPE AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
    [schema, tableName],
  );
  if (tables.length === 0) throw new RefusedError(`${where}: the source table does not exist (config: tables.${name}.source)`);
  if (tables[0]!.t === 'SYSTEM VERSIONED') {
    throw new RefusedError(`${where}: the source table is SYSTEM VERSIONED, whose row changes Debezium's MariaDB connector does not stream (only its snapshot), so sync would miss them`);
  }

  const [columns] = await pool.query<ColumnRow[]>(
    `SELECT COLUMN_NAME AS name, DATA_TYPE AS data_type, COLUMN_TYPE AS column_type, CHARACTER_MAXIMUM_LENGTH AS char_length,
            NUMERIC_PRECISION AS num_precision, NUMERIC_SCALE AS num_scale, DATETIME_PRECISION AS dt_precision,
            CHARACTER_SET_NAME AS charset, COLLATION_NAME AS collation, IS_NULLABLE AS nullable
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [schema, tableName],
  );
  const [indexRows] = await pool.query<IndexRow[]>(
    `SELECT INDEX_NAME AS index_name, NON_UNIQUE AS non_unique, COLUMN_NAME AS column_name, SUB_PART AS sub_part
       FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX`,
    [schema, tableName],
  );

  const primaryKey = indexRows.filter((r) => r.index_name === 'PRIMARY').map((r) => r.column_name);
  checkTableConfig(name, where, table, new Set(columns.map((c) => c.name)), primaryKey);
  for (const { column_name: column, sub_part: prefix } of indexRows.filter((r) => r.index_name === 'PRIMARY')) {
    const dataType = columns.find((c) => c.name === column)?.data_type.toLowerCase() ?? '';
    // A shard table's key must index the whole column, which TEXT and BLOB columns cannot be.
    if (prefix !== null && /text|blob/.test(dataType)) {
      throw new RefusedError(
        `${where}: primary key column ${column} is ${dataType.toUpperCase()}, keyed by a prefix only (${column}(${String(prefix)})); a shard table cannot key a ${dataType.toUpperCase()} column whole (make it VARCHAR or VARBINARY)`,
      );
    }
  }
  for (const column of primaryKey) {
    // The server prints a FLOAT with 6 digits, which may be above the value: a keyset page bound from it would skip rows.
    if (columns.find((c) => c.name === column)?.data_type === 'float') {
      throw new RefusedError(`${where}: primary key column ${column} is FLOAT, whose text form is not exact; keyset chunks cannot page by it (make it DOUBLE or DECIMAL)`);
    }
  }

  const inUniqueKey = new Set(indexRows.filter((r) => Number(r.non_unique) === 0).map((r) => r.column_name));
  const specColumns: ColumnSpec[] = columns
    .filter((c) => !table.exclude_columns.includes(c.name))
    .map((c) => {
      const sourceType = sourceTypeOf(c);
      const conversion = mysqlTypeMap.conversion(sourceType, `${c.name} of table ${name}`);
      const targetCollation = conversion.targetCollation && inUniqueKey.has(c.name) ? uniqueKeyCollationOf(sourceType) : conversion.targetCollation;
      return {
        source: c.name,
        target: targetColumnName(table, c.name),
        sourceType,
        targetType: conversion.targetType,
        ...(targetCollation ? { targetCollation } : {}),
        ...(conversion.wire ? { wire: conversion.wire } : {}),
        nullable: c.nullable === 'YES',
      };
    });

  const shardKeyType = specColumns.find((c) => c.source === table.shard_key)!.sourceType;
  if (!canBeShardKey(shardKeyType)) {
    throw new RefusedError(`${where}: shard key column ${table.shard_key} has type ${shardKeyType.columnType}; it must be an integer or text column (config: tables.${name}.shard_key)`);
  }

  return {
    name,
    sourceSchema: schema,
    sourceTable: tableName,
    target: table.target,
    columns: specColumns,
    primaryKey,
    shardKey: table.shard_key,
    ...(table.updated_at ? { updatedAt: table.updated_at } : {}),
    indexes: secondaryIndexes(indexRows, new Set(specColumns.map((c) => c.source))),
  };
}

function sourceTypeOf(c: ColumnRow): SourceType {
  const dataType = c.data_type.toLowerCase();
  // As the server writes it: ENUM and SET members keep their case (src/rows/mysql.ts, columnTypeOf).
  const columnType = c.column_type;
  const type: SourceType = { dataType, columnType };
  const length = num(c.char_length);
  if (length !== undefined) type.length = length;
  const precision = num(c.num_precision) ?? num(c.dt_precision);
  if (precision !== undefined) type.precision = precision;
  const scale = num(c.num_scale);
  if (scale !== undefined) type.scale = scale;
  if (/\bunsigned\b/i.test(columnType)) type.unsigned = true;
  if (c.charset) type.charset = c.charset.toLowerCase();
  if (c.collation) type.collation = c.collation.toLowerCase();
  return type;
}

/** Secondary indexes whose every column is copied. */
function secondaryIndexes(rows: IndexRow[], copied: Set<string>): IndexSpec[] {
  const byName = new Map<string, IndexSpec>();
  for (const r of rows) {
    if (r.index_name === 'PRIMARY') continue;
    const index = byName.get(r.index_name) ?? { name: r.index_name, unique: Number(r.non_unique) === 0, columns: [] };
    index.columns.push(r.column_name);
    byName.set(r.index_name, index);
  }
  return [...byName.values()].filter((i) => i.columns.every((c) => copied.has(c)));
}

/**
 * Integer or text columns, not JSON (MySQL 8): CRC32 in SQL would hash the server's own print of
 * the document, which Debezium's text of it need not match.
 */
export function canBeShardKey(type: SourceType): boolean {
  return (isIntegerType(type) || isTextType(type)) && type.dataType !== 'json';
}
