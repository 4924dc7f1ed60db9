import mysql from 'mysql2/promise';
import { quoteId } from '../../mysql/connect.js';
import { isByteType, isIntegerType, memberLabels } from '../../rows/mysql.js';
import type { ColumnSpec, SourceType, TableSpec } from '../../rows/types.js';
import type { ChunkKey } from '../../store/leases.js';

/** SQL text shared by the MySQL reader's queries: table names, key order, keyset predicates. */

export function qualifiedSource(spec: TableSpec): string {
  return `${quoteId(spec.sourceSchema)}.${quoteId(spec.sourceTable)}`;
}

export function keyColumns(spec: TableSpec): ColumnSpec[] {
  return spec.primaryKey.map((k) => {
    const column = spec.columns.find((c) => c.source === k);
    if (!column) throw new Error(`table ${spec.name}: primary key column ${k} is not in the spec`);
    return column;
  });
}

export function orderBy(spec: TableSpec): string {
  return spec.primaryKey.map((k) => quoteId(k)).join(', ');
}

const NUMERIC_TEXT = /^-?\d+(\.\d+)?$/;
/** Exact numbers of MySQL and SQL Server (verify puts SQL Server key types here too): never compared through a double. */
const EXACT_NUMERIC_TYPES = new Set(['decimal', 'numeric', 'money', 'smallmoney']);
const HEX_TEXT = /^[0-9a-f]*$/i;

/**
 * A key value (text, hex for bytes) as an SQL literal of the column's kind. Integer keys go in as
 * digits, never as quoted strings: MySQL compares an integer column with a string through a
 * double, which is inexact past 2^53.
 */
export function keyLiteral(type: SourceType, value: string): string {
  if (isIntegerType(type) || EXACT_NUMERIC_TYPES.has(type.dataType)) {
    if (!NUMERIC_TEXT.test(value)) throw new Error(`key value "${value}" is not a number`);
    return value;
  }
  if (isByteType(type)) {
    if (!HEX_TEXT.test(value)) throw new Error(`key value "${value}" is not hex`);
    return `X'${value}'`;
  }
  // ENUM and SET sort by their numbers but compare with a string by its text: a text bound would
  // not match ORDER BY, and keyset pages would skip rows. Numbers compare as ORDER BY sorts.
  if (type.dataType === 'enum') return String(enumNumber(type, value));
  if (type.dataType === 'set') return String(setNumber(type, value));
  return mysql.escape(value);
}

/** An ENUM value's number: 1 for the first member, 0 for the error value ''. */
function enumNumber(type: SourceType, label: string): number {
  const index = memberLabels(type.columnType ?? '').indexOf(label);
  if (index >= 0) return index + 1;
  if (label === '') return 0;
  throw new Error(`key value "${label}" is not a member of ${type.columnType}`);
}

/** A SET value's number: the sum of its members' bits. */
function setNumber(type: SourceType, text: string): bigint {
  const labels = memberLabels(type.columnType ?? '');
  let n = 0n;
  for (const member of text === '' ? [] : text.split(',')) {
    const index = labels.indexOf(member);
    if (index < 0) throw new Error(`key value "${text}" is not made of members of ${type.columnType}`);
    n |= 1n << BigInt(index);
  }
  return n;
}

/**
 * `key > bound` (after) or `key <= bound` (upTo) in lexicographic key order, spelled out as
 * OR/AND so that the range optimizer uses the primary key for composite keys too.
 */
export function keyPredicate(spec: TableSpec, op: 'after' | 'upTo', bound: ChunkKey): string {
  const columns = keyColumns(spec);
  if (bound.length !== columns.length) throw new Error(`table ${spec.name}: key bound has ${bound.length} values, the key has ${columns.length} columns`);
  const build = (i: number): string => {
    const column = quoteId(columns[i]!.source);
    const literal = keyLiteral(columns[i]!.sourceType, bound[i]!);
    const last = i === columns.length - 1;
    const strict = op === 'after' ? '>' : '<';
    if (last) return `${column} ${op === 'after' ? '>' : '<='} ${literal}`;
    return `(${column} ${strict} ${literal} OR (${column} = ${literal} AND ${build(i + 1)}))`;
  };
  return build(0);
}

/** WHERE clause for lower < key <= upper (null = unbounded), plus optional extra conditions. */
export function rangeWhere(spec: TableSpec, lower: ChunkKey | null, upper: ChunkKey | null, extra: string[] = []): string {
  const parts = [...extra];
  if (lower) parts.push(keyPredicate(spec, 'after', lower));
  if (upper) parts.push(keyPredicate(spec, 'upTo', upper));
  return parts.length > 0 ? `WHERE ${parts.join(' AND ')}` : '';
}

/** A driver value of a key column as key text (hex for bytes). */
export function rawKeyText(value: unknown): string {
  if (Buffer.isBuffer(value)) return value.toString('hex');
  if (value === null || value === undefined) throw new Error('a primary key value is NULL');
  return String(value);
}
