import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { TableSpec } from '../rows/types.js';
import { isIntegerType } from '../rows/mysql.js';
import { keyLiteral } from '../source/mysql/sql.js';
import type { ChunkKey } from './leases.js';

/**
 * The repair_queue's key form, one rule for its readers (verify's drain, sync's hold): an entry's
 * pk as key text in primary-key order (hex for bytes), and its id, JSON of that text.
 */

/**
 * A queue entry's pk JSON: an array of key values in key order, or an object by column name. Each
 * value must be one its key column can hold (digits for an integer key, hex for bytes, a member
 * of an ENUM): a malformed entry is refused here, before any statement is built from it.
 */
export function queueKey(spec: TableSpec, pk: unknown): ChunkKey {
  const value: unknown = typeof pk === 'string' ? JSON.parse(pk) : pk;
  const key = keyValuesOf(spec, value);
  spec.primaryKey.forEach((column, i) => {
    try {
      const type = spec.columns.find((c) => c.source === column)!.sourceType;
      keyLiteral(type, key[i]!);
      // As the key's text form is everywhere (sync's hold, verify's re-check): '007' or '7.0' would find row 7 but never match its key.
      if (isIntegerType(type) && !/^-?(0|[1-9]\d*)$/.test(key[i]!)) throw new Error(`key value "${key[i]}" is not an integer in its plain form`);
    } catch (e) {
      throw new Error(`repair_queue pk ${JSON.stringify(value)}: ${(e as Error).message} (key column ${column})`);
    }
  });
  return key;
}

function keyValuesOf(spec: TableSpec, value: unknown): ChunkKey {
  if (Array.isArray(value)) {
    if (value.length !== spec.primaryKey.length) throw new Error(`repair_queue pk ${JSON.stringify(value)} has ${value.length} values; the key (${spec.primaryKey.join(', ')}) has ${spec.primaryKey.length}`);
    return value.map(String);
  }
  if (value && typeof value === 'object') {
    return spec.primaryKey.map((k) => {
      const v = (value as Record<string, unknown>)[k] ?? (value as Record<string, unknown>)[spec.columns.find((c) => c.source === k)!.target];
      if (v === undefined || v === null) throw new Error(`repair_queue pk ${JSON.stringify(value)} has no value for key column ${k}`);
      return String(v);
    });
  }
  if (spec.primaryKey.length !== 1) throw new Error(`repair_queue pk ${JSON.stringify(value)} is one value; the key (${spec.primaryKey.join(', ')}) has ${spec.primaryKey.length}`);
  return [String(value)];
}

export const queueKeyId = (key: ChunkKey): string => JSON.stringify(key);

/**
 * Per table, the ids of the keys with an open entry whose legacy side is behind MySQL (a MySQL-primary
 * write whose legacy write failed). Malformed entries are skipped here (verify reports them).
 */
export async function legacyBehindKeyIds(pool: Pool, specs: TableSpec[]): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  if (specs.length === 0) return out;
  const byName = new Map(specs.map((s) => [s.name, s]));
  const [rows] = await pool.query<RowDataPacket[]>(
    "SELECT table_name, pk FROM repair_queue WHERE table_name IN (?) AND resolved_at IS NULL AND behind = 'legacy'",
    [[...byName.keys()]],
  );
  for (const r of rows) {
    let id: string;
    try {
      id = queueKeyId(queueKey(byName.get(r.table_name)!, r.pk));
    } catch {
      continue;
    }
    const set = out.get(r.table_name) ?? new Set<string>();
    set.add(id);
    out.set(r.table_name, set);
  }
  return out;
}
