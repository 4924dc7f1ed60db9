import { Unrepresentable, type ColumnConversion, type Row, type TableSpec } from './types.js';
import { keyPositions } from './ddl.js';

/** A value the target cannot hold, with where it was found: what rejected_values records. */
export interface RejectedValue {
  table: string;
  /** Primary key values as text (hex for bytes), in key order. */
  key: string[];
  column: string;
  value: string;
  reason: string;
}

export interface ConvertedRow {
  row: Row;
  /** Empty when every value converted; otherwise the row must not be written as is. */
  rejected: RejectedValue[];
}

/** Converts one source row (driver values in the spec's column order) to target form. */
export function convertRow(spec: TableSpec, conversions: ColumnConversion[], raw: unknown[]): ConvertedRow {
  const row: Row = new Array(conversions.length);
  let rejected: RejectedValue[] | undefined;
  for (let i = 0; i < conversions.length; i++) {
    let v: ReturnType<ColumnConversion['convert']>;
    try {
      v = conversions[i]!.convert(raw[i]);
    } catch (e) {
      throw new Error(`table ${spec.name}, row ${JSON.stringify(rawKeyText(spec, conversions, raw))}: ${(e as Error).message}`, { cause: e });
    }
    if (v instanceof Unrepresentable) {
      (rejected ??= []).push({ table: spec.name, key: [], column: spec.columns[i]!.source, value: v.value, reason: v.reason });
      row[i] = null;
    } else {
      row[i] = v;
    }
  }
  if (rejected) {
    const key = keyText(spec, row);
    for (const r of rejected) r.key = key;
  }
  return { row, rejected: rejected ?? [] };
}

/** The key of a row that could not be converted, for the message: each key column converted alone. */
function rawKeyText(spec: TableSpec, conversions: ColumnConversion[], raw: unknown[]): string[] {
  return keyPositions(spec).map((i) => {
    try {
      const v = conversions[i]!.convert(raw[i]);
      return v instanceof Unrepresentable ? v.value : valueText(v);
    } catch {
      return '?';
    }
  });
}

/** A row's primary key as text values (Buffers as hex), the form chunks and control tables store. */
export function keyText(spec: TableSpec, row: Row): string[] {
  return keyPositions(spec).map((i) => valueText(row[i] ?? null));
}

/**
 * A row whose shard key is NULL, as a value the target cannot hold: no shard function routes NULL
 * (nor could the shim find the row). Copy records or refuses it by rows.on_unrepresentable, and
 * verify reports it as unrepresentable, as it does every such row.
 */
export function nullShardKeyRejection(spec: TableSpec, key: string[]): RejectedValue {
  return { table: spec.name, key, column: spec.shardKey, value: 'NULL', reason: 'the shard key is NULL: no shard to copy the row to' };
}

/** A value as text: bytes as lowercase hex, NULL as the empty string (keys are never NULL). */
export function valueText(v: Row[number]): string {
  if (v === null) return '';
  return Buffer.isBuffer(v) ? v.toString('hex') : v;
}

/**
 * A YEAR value as four digits. MySQL reads the text '0' (like '1'..'69') as 2000 (2001..2069) and
 * only '0000' as the year 0, while drivers and Debezium hand YEAR over as the number 0.
 */
export function yearText(value: string): string {
  return /^\d{1,3}$/.test(value) ? value.padStart(4, '0') : value;
}

/**
 * Fraction digits cut to `keep` (padded with zeros to it), or null when a digit cut off is not zero.
 * MySQL rounds extra fraction digits without a warning (a time can carry into the next second or
 * day), so every path flags such a value instead of writing it: the copy's type map and the change
 * events' decoder, for times and decimals alike.
 */
export function keptFraction(digits: string, keep: number): string | null {
  if (/[1-9]/.test(digits.slice(keep))) return null;
  return digits.slice(0, keep).padEnd(keep, '0');
}

/**
 * A float or double as every path writes it: the shortest text that parses back to the same
 * number (MySQL parses it to the same float/double), and -0 with its sign (String(-0) is "0").
 */
export function floatText(n: number): string {
  return Object.is(n, -0) ? '-0' : String(n);
}
