import { quoteId } from '../../mysql/connect.js';
import type { RowsQuery } from '../../mysql/pool.js';
import { convertRow, type RejectedValue } from '../../rows/convert.js';
import type { Row, TableSpec } from '../../rows/types.js';
import type { ChunkKey } from '../../store/leases.js';
import { mysqlConversions } from './reader.js';
import { keyColumns, keyLiteral, qualifiedSource } from './sql.js';

/**
 * Rows of a MySQL legacy table by primary key (text form, hex for bytes), converted by the row
 * pipeline as readRange converts them: what verify re-checks and repairs from. Keys that are not
 * there are simply absent; a row with a value the target cannot hold comes back in `rejected`.
 * `query` runs each statement (verify's fails one the server leaves unanswered too long).
 */
export async function readMysqlRowsByKey(query: RowsQuery, spec: TableSpec, keys: ChunkKey[]): Promise<{ rows: Row[]; rejected: RejectedValue[] }> {
  const rows: Row[] = [];
  const rejected: RejectedValue[] = [];
  if (keys.length === 0) return { rows, rejected };
  const conversions = mysqlConversions(spec);
  const select = spec.columns.map((c, i) => conversions[i]!.selectExpression(quoteId(c.source))).join(', ');
  for (let i = 0; i < keys.length; i += 500) {
    const part = keys.slice(i, i + 500);
    for (const values of await query(`SELECT ${select} FROM ${qualifiedSource(spec)} WHERE ${keysPredicate(spec, part)}`)) {
      const converted = convertRow(spec, conversions, values);
      if (converted.rejected.length === 0) rows.push(converted.row);
      else rejected.push(...converted.rejected);
    }
  }
  return { rows, rejected };
}

/** `(k1 = .. AND k2 = ..) OR ...` for a list of keys (text form, hex for bytes), literals typed as keyLiteral types them. */
export function keysPredicate(spec: TableSpec, keys: ChunkKey[]): string {
  const columns = keyColumns(spec);
  const one = (key: ChunkKey) => `(${columns.map((c, i) => `${quoteId(c.source)} = ${keyLiteral(c.sourceType, key[i]!)}`).join(' AND ')})`;
  return keys.map(one).join(' OR ');
}
