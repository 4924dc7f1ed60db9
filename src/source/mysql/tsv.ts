import { quoteId } from '../../mysql/connect.js';
import { floatExpression, isIntegerType, isTextType, isUtf8Compatible, roundTrips, shardKeyExpression, unpadded, utf8Text } from '../../rows/mysql.js';
import type { ColumnSpec, TableSpec } from '../../rows/types.js';
import type { ShardMap } from '../../shard/map.js';

/**
 * SQL that makes the MySQL source server give each row's shard number and its columns in the
 * text of a LOAD DATA line (the form of src/rows/tsv.ts), so Node only joins them into lines
 * (LineBlocks.addRow) and routes them.
 */

const NULL_MARK = "X'5C4E'"; // \N

/**
 * The text of one column in a line. Text goes as it is, NULL included: Node escapes it while it
 * routes the line (LineBlocks.addRow, src/rows/tsv.ts), which costs it less than the three
 * REPLACEs cost the source server. The other types' text never holds a backslash, tab or
 * newline, so their NULL can be \N here already.
 */
export function tsvColumnExpression(column: ColumnSpec): string {
  const c = quoteId(column.source);
  const orNull = (expr: string) => (column.nullable ? `IFNULL(${expr}, ${NULL_MARK})` : expr);
  // Not IFNULL: HEX of a value over half the server's max_allowed_packet is NULL (a warning only),
  // and must reach Node as NULL, not as \N (LineBlocks.addRow refuses it; the row path reads the bytes).
  if (column.wire === 'hex') return column.nullable ? `IF(${c} IS NULL, ${NULL_MARK}, HEX(${c}))` : `HEX(${c})`;
  if (isTextType(column.sourceType)) return utf8Text(c, column.sourceType);
  if (column.sourceType.dataType === 'float') return orNull(floatExpression(c));
  return orNull(unpadded(c, column.sourceType));
}

/** Whether a column's text comes as it is, to be escaped in Node (see tsvColumnExpression). */
export function escapedInNode(column: ColumnSpec): boolean {
  return column.wire !== 'hex' && isTextType(column.sourceType);
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
  /** SELECT list: shard (or the shard key's text when only Node can hash it), the convertible flag where a value may not convert, then the line's columns. */
  select: string;
  shardInSql: boolean;
  /** Whether the convertible flag (1 or 0) follows the shard. */
  flagged: boolean;
  /** Per line column: escaped in Node (escapedInNode). */
  escaped: boolean[];
}

export function tsvSelect(spec: TableSpec, map: ShardMap): TsvSelect {
  const key = spec.columns.find((c) => c.source === spec.shardKey)!;
  const keyExpr = shardKeyExpression(quoteId(key.source), key.sourceType);
  const shard = shardSql(map, keyExpr, isIntegerType(key.sourceType));
  const convertible = convertibleExpression(spec);
  // A constant flag is left out: one column less to send and parse per row.
  const ok = convertible === '1' ? '' : `, ${convertible} AS ok`;
  return {
    select: `${shard ?? keyExpr} AS shard${ok}, ${spec.columns.map(tsvColumnExpression).join(', ')}`,
    shardInSql: shard !== undefined,
    flagged: ok !== '',
    escaped: spec.columns.map(escapedInNode),
  };
}

/** The shard in SQL where it equals the shard map's answer; undefined where only Node can compute it. */
function shardSql(map: ShardMap, keyExpr: string, integerKey: boolean): string | undefined {
  if (map.function === 'crc32') return map.sqlShardExpression(keyExpr);
  // Text keys under mod: Node checks they are integers (SQL would take 'abc' as 0).
  if (map.function === 'mod' && integerKey) return map.sqlShardExpression(keyExpr, { integerColumn: true });
  return undefined;
}
