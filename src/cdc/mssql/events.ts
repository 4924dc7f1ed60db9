import type { MssqlColumnConversion } from '../../rows/mssql/typemap.js';
import { Unrepresentable, type RowValue, type TableSpec } from '../../rows/types.js';
import type { ChangeEvent, ChangeOrigin, PoisonEvent } from '../types.js';
import { Lsn } from './lsn.js';
import type { ResumePoint } from './tsql.js';

/**
 * Rows of cdc.fn_cdc_get_all_changes_<instance>(…, N'all update old') → ChangeEvents (pure).
 * __$operation: 1 delete (before-image), 2 insert, 3 update before-image, 4 update after-image.
 * Op 3 only supplies the old shard key (and the old primary key: an update that changes the key
 * becomes a delete of the old key plus an upsert of the new one).
 */

export const Operation = { Delete: 1, Insert: 2, UpdateBefore: 3, UpdateAfter: 4 } as const;

export interface CdcTable {
  /** Logical table name from the config. */
  name: string;
  instance: string;
  spec: TableSpec;
  /** One per spec column, in spec order (the query selects them as [c0], [c1], ...). */
  conversions: MssqlColumnConversion[];
}

/** A row as changesQuery selects it. */
export interface ChangeRow {
  __start_lsn: Buffer;
  __seqval: Buffer;
  __operation: number;
  /** Table mode only. */
  __command_id?: number | null;
  /** DATEDIFF_BIG: tedious returns bigint as a string. */
  __ts_ms: string | number | null;
  [column: `c${number}`]: unknown;
}

export interface MappedPage {
  events: ChangeEvent[];
  poison: PoisonEvent[];
  /** Rows consumed; on a full page the rows at its last point are left for the next page (withoutTrailingPoint). */
  consumed: number;
  last: ResumePoint | null;
  lastSourceTsMs: number | null;
}

interface Image {
  values: Record<string, RowValue>;
  key: Record<string, RowValue>;
  shardKey: RowValue;
  /** A key image's updated_at (spec.updatedAt) where it has one that converts: a delete of it keeps a newer row. */
  updatedAt?: RowValue;
}

type Converted = { ok: true; image: Image } | { ok: false; reason: string };

/**
 * Converts the columns of an image; `keysOnly` limits it to the key and shard key (delete, op 3),
 * and updated_at, whose value failing to convert only leaves it out.
 */
function convertImage(table: CdcTable, row: ChangeRow, keysOnly: boolean): Converted {
  const { spec } = table;
  const values: Record<string, RowValue> = {};
  let updatedAt: RowValue | undefined;
  for (let i = 0; i < spec.columns.length; i++) {
    const column = spec.columns[i]!.source;
    const isKey = spec.primaryKey.includes(column) || column === spec.shardKey;
    if (keysOnly && !isKey) {
      if (column === spec.updatedAt) updatedAt = convertedOrUndefined(table, row, i);
      continue;
    }
    let v: RowValue | Unrepresentable;
    try {
      v = table.conversions[i]!.convert(row[`c${i}`]);
    } catch (e) {
      return { ok: false, reason: `column ${column}: ${(e as Error).message}` };
    }
    if (v instanceof Unrepresentable) return { ok: false, reason: `column ${column}: ${v.reason} (value ${v.value})` };
    values[column] = v;
    if (keysOnly && column === spec.updatedAt) updatedAt = v;
  }
  const key = Object.fromEntries(spec.primaryKey.map((k) => [k, values[k] ?? null]));
  if (spec.primaryKey.some((k) => key[k] === null)) return { ok: false, reason: 'primary key value is NULL in the change row' };
  return { ok: true, image: { values, key, shardKey: values[spec.shardKey] ?? null, ...(updatedAt === undefined || updatedAt === null ? {} : { updatedAt }) } };
}

/** Column i's value, or undefined where it does not convert (a delete's bound is then unknown, never a failure). */
function convertedOrUndefined(table: CdcTable, row: ChangeRow, i: number): RowValue | undefined {
  try {
    const v = table.conversions[i]!.convert(row[`c${i}`]);
    return v instanceof Unrepresentable ? undefined : v;
  } catch {
    return undefined;
  }
}

/** A delete event of an image. */
function deleteOf(table: CdcTable, image: Image, origin: ChangeOrigin, stamp: { sourceTsMs?: number }): ChangeEvent {
  const bound = image.updatedAt === undefined ? {} : { beforeUpdatedAt: image.updatedAt };
  return { table: table.name, op: 'delete', key: image.key, after: null, beforeShardKey: image.shardKey, ...bound, origin, ...stamp };
}

function sameKey(a: Record<string, RowValue>, b: Record<string, RowValue>): boolean {
  return Object.keys(a).every((k) => {
    const x = a[k] ?? null;
    const y = b[k] ?? null;
    if (Buffer.isBuffer(x) && Buffer.isBuffer(y)) return x.equals(y);
    return x === y;
  });
}

function rawJson(row: ChangeRow): Buffer {
  return Buffer.from(JSON.stringify(row, (_k, v) => (v && typeof v === 'object' && v.type === 'Buffer' && Array.isArray(v.data) ? '0x' + Buffer.from(v.data).toString('hex') : v)));
}

/** Rows at one change-table point: the next page starts after the last row's (LSN, command id, seqval). */
function samePoint(a: ChangeRow, b: ChangeRow): boolean {
  return a.__start_lsn.equals(b.__start_lsn) && a.__seqval.equals(b.__seqval) && (a.__command_id ?? null) === (b.__command_id ?? null);
}

/**
 * A full page without the rows at its last point, left for the next page: the next read starts
 * after that point, so rows sharing it (an update's before- and after-image; SQL Server may also
 * log a key update as a delete and an insert at one point) must not be cut apart. A page that is
 * one point only keeps all but a trailing op 3, whose op 4 is on the next page.
 */
function withoutTrailingPoint(rows: ChangeRow[]): ChangeRow[] {
  const last = rows[rows.length - 1];
  if (!last) return rows;
  let cut = rows.length;
  while (cut > 0 && samePoint(rows[cut - 1]!, last)) cut--;
  if (cut > 0) return rows.slice(0, cut);
  return last.__operation === Operation.UpdateBefore ? rows.slice(0, -1) : rows;
}

export function mapChanges(table: CdcTable, rows: ChangeRow[], pageWasFull: boolean): MappedPage {
  const usable = pageWasFull ? withoutTrailingPoint(rows) : rows;
  const events: ChangeEvent[] = [];
  const poison: PoisonEvent[] = [];
  let before: { at: string; image: Image } | null = null;
  let lastTs: number | null = null;
  let last: MappedPage['last'] = null;

  for (const row of usable) {
    const lsn = Lsn.parse(row.__start_lsn);
    const seqval = Lsn.parse(row.__seqval);
    last = { lsn, seqval, commandId: row.__command_id ?? null };
    const at = `${lsn.toString()}:${seqval.toString()}`;
    const origin: ChangeOrigin = { source: table.instance, offset: at, commitLsn: lsn.toString() };
    const ts = row.__ts_ms === null || row.__ts_ms === undefined ? undefined : Number(row.__ts_ms);
    if (ts !== undefined) lastTs = ts;
    const stamp = ts !== undefined ? { sourceTsMs: ts } : {};
    const fail = (reason: string) =>
      poison.push({ origin, table: table.name, messageKey: Buffer.from(at), rawValue: rawJson(row), reason: `operation ${row.__operation}: ${reason}` });

    switch (row.__operation) {
      case Operation.Delete: {
        const c = convertImage(table, row, true);
        if (!c.ok) fail(c.reason);
        else events.push(deleteOf(table, c.image, origin, stamp));
        break;
      }
      case Operation.UpdateBefore: {
        const c = convertImage(table, row, true);
        before = c.ok ? { at, image: c.image } : null;
        if (!c.ok) fail(c.reason);
        break;
      }
      case Operation.Insert:
      case Operation.UpdateAfter: {
        const old = row.__operation === Operation.UpdateAfter && before?.at === at ? before.image : null;
        before = null;
        const c = convertImage(table, row, false);
        if (!c.ok) {
          fail(c.reason);
          break;
        }
        if (old && !sameKey(old.key, c.image.key)) {
          events.push(deleteOf(table, old, origin, stamp));
        }
        events.push({
          table: table.name,
          op: 'upsert',
          key: c.image.key,
          after: c.image.values,
          ...(old ? { beforeShardKey: old.shardKey, ...(old.updatedAt === undefined ? {} : { beforeUpdatedAt: old.updatedAt }) } : {}),
          origin,
          ...stamp,
        });
        break;
      }
      default:
        fail(`unknown __$operation ${row.__operation}`);
    }
  }
  return { events, poison, consumed: usable.length, last, lastSourceTsMs: lastTs };
}
