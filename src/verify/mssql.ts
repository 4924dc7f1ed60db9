import { mssqlCanonicalRow, mssqlCanonicalValue } from '../rows/canonical.js';
import type { TableSpec } from '../rows/types.js';
import type { ChunkKey } from '../store/leases.js';
import type { KeyRange } from './sql.js';

/**
 * The SQL Server side of a chunk checksum, pushed down as T-SQL: the md5 row hash of the
 * canonical row form (src/rows/canonical.ts) summed exactly as two 32-bit halves, so the sum
 * equals MySQL's SUM of the same 64-bit hashes. Key bounds are parameters (@lo0.., @hi0..) that
 * the SQL Server reader binds with the key columns' own types, so SQL Server's collation orders
 * them. Undefined when a column has no exact T-SQL canonical form: that table is then hashed in
 * Node from the rows the reader converts (StreamingLegacySide).
 *
 * This text cannot be run here (no SQL Server): it is unit-tested as text only.
 */
export interface MssqlChecksumQuery {
  sql: string;
  /** Parameter name → key value (text form), in the order they appear. */
  params: { name: string; column: string; value: string }[];
}

const bracket = (name: string) => `[${name.replace(/]/g, ']]')}]`;

export function mssqlChecksumQuery(spec: TableSpec, range: KeyRange): MssqlChecksumQuery | undefined {
  const values: string[] = [];
  for (const c of spec.columns) {
    const v = mssqlCanonicalValue(bracket(c.source), c.sourceType, c.nullable);
    if (v === undefined) return undefined;
    values.push(v);
  }
  const params: MssqlChecksumQuery['params'] = [];
  const conditions: string[] = [];
  if (range.lower) conditions.push(keyCondition(spec, 'after', range.lower, 'lo', params));
  if (range.upper) conditions.push(keyCondition(spec, 'upTo', range.upper, 'hi', params));
  const where = conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '';
  const sql =
    `SELECT COUNT_BIG(*) AS n, ISNULL(SUM(CAST(SUBSTRING(h, 1, 4) AS bigint)), 0) AS hi, ISNULL(SUM(CAST(SUBSTRING(h, 5, 4) AS bigint)), 0) AS lo ` +
    `FROM (SELECT HASHBYTES('MD5', ${mssqlCanonicalRow(values)}) AS h FROM ${bracket(spec.sourceSchema)}.${bracket(spec.sourceTable)}${where}) AS x`;
  return { sql, params };
}

/** The digest from the query's result: hi·2^32 + lo, the exact sum of the 64-bit row hashes. */
export function mssqlDigest(hi: string | number | bigint, lo: string | number | bigint): bigint {
  return BigInt(hi) * 2n ** 32n + BigInt(lo);
}

function keyCondition(spec: TableSpec, op: 'after' | 'upTo', bound: ChunkKey, prefix: string, params: MssqlChecksumQuery['params']): string {
  const names = spec.primaryKey.map((column, i) => {
    const name = `@${prefix}${i}`;
    params.push({ name, column, value: bound[i]! });
    return { column: bracket(column), name };
  });
  const build = (i: number): string => {
    const { column, name } = names[i]!;
    if (i === names.length - 1) return `${column} ${op === 'after' ? '>' : '<='} ${name}`;
    return `(${column} ${op === 'after' ? '>' : '<'} ${name} OR (${column} = ${name} AND ${build(i + 1)}))`;
  };
  return build(0);
}
