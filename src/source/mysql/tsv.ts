import { quoteId } from '../../mysql/connect.js';
import { floatExpression, isIntegerType, isTextType, isUtf8Compatible, roundTrips, shardKeyExpression, unpadded, utf8Text } from '../../rows/mysql.js';
import type { ColumnSpec, TableSpec } from '../../rows/types.js';
import type { ShardMap } from '../../shard/map.js';

/**
 * SQL that makes the MySQL source server build each row's LOAD DATA line (the form of
 * src/rows/tsv.ts) and its shard number, so the copy's per-row work in Node is close to nothing.
 * Byte literals (X'..') keep the escaping independent of the server's sql_mode.
 */

const NULL_MARK = "X'5C4E'"; // \N

function escaped(expr: string): string {
  // \ first, then tab and newline. Byte-wise: UTF-8 never has these bytes inside a character,
  // and REPLACE on bytes skips the character-by-character scan it does on utf8mb4 (a third of the
  // line's cost on the source).
  return `REPLACE(REPLACE(REPLACE(CAST(${expr} AS BINARY), X'5C', X'5C5C'), X'09', X'5C74'), X'0A', X'5C6E')`;
}

/** The text of one column in a line (a NOT NULL column skips the NULL test). */
export function tsvColumnExpression(column: ColumnSpec): string {
  const c = quoteId(column.source);
  const orNull = (expr: string) => (column.nullable ? `IFNULL(${expr}, ${NULL_MARK})` : expr);
  if (column.wire === 'hex') return orNull(`HEX(${c})`);
  if (isTextType(column.sourceType)) return orNull(escaped(utf8Text(c, column.sourceType)));
  if (column.sourceType.dataType === 'float') return orNull(floatExpression(c));
  return orNull(unpadded(c, column.sourceType));
}

/** 1 when every value of the row converts exactly (the row pipeline's checks, in SQL), else 0. */
function convertibleExpression(spec: TableSpec): string {
  const checks = spec.columns.flatMap((c) => {
    const q = quoteId(c.source);
    const list: string[] = [];
    if (isTextType(c.sourceType) && !isUtf8Compatible(c.sourceType)) list.push(`(${q} IS NULL OR ${roundTrips(q, c.sourceType.charset!)})`);
    // ENUM's error value (index 0) prints as '', like a real '' member: the row path flags it.
    if (c.sourceType.dataType === 'enum') list.push(`(${q} IS NULL OR ${q} + 0 <> 0)`);
    return list;
  });
  return checks.length === 0 ? '1' : `(${checks.join(' AND ')})`;
}

export interface TsvSelect {
  /** SELECT list: shard (or the shard key's text when only Node can hash it), line bytes, and the convertible flag where a value may not convert. */
  select: string;
  shardInSql: boolean;
}

export function tsvSelect(spec: TableSpec, map: ShardMap): TsvSelect {
  const key = spec.columns.find((c) => c.source === spec.shardKey)!;
  const keyExpr = shardKeyExpression(quoteId(key.source), key.sourceType);
  const shard = shardSql(map, keyExpr, isIntegerType(key.sourceType));
  const line = `CAST(CONCAT(CONCAT_WS(X'09', ${spec.columns.map(tsvColumnExpression).join(', ')}), X'0A') AS BINARY)`;
  const convertible = convertibleExpression(spec);
  // A constant flag is left out: one column less to send and parse per row.
  const ok = convertible === '1' ? '' : `, ${convertible} AS ok`;
  return { select: `${shard ?? keyExpr} AS shard, ${line} AS line${ok}`, shardInSql: shard !== undefined };
}

/** The shard in SQL where it equals the shard map's answer; undefined where only Node can compute it. */
function shardSql(map: ShardMap, keyExpr: string, integerKey: boolean): string | undefined {
  if (map.function === 'crc32') return map.sqlShardExpression(keyExpr);
  // Text keys under mod: Node checks they are integers (SQL would take 'abc' as 0).
  if (map.function === 'mod' && integerKey) return map.sqlShardExpression(keyExpr, { integerColumn: true });
  return undefined;
}
