import { isIntegerType } from '../rows/mysql.js';
import type { TableSpec } from '../rows/types.js';

/**
 * Chunks of a single integer key cut by value instead of by reading keys. Keyset boundaries
 * (`LIMIT 1 OFFSET chunkRows - 1` from each bound) read the whole clustered index once more before
 * the copy reads it: on a MySQL source that was 0.76 s of the legacy server's CPU per 2M member
 * rows, a quarter of all it spent on a copy, and a billion-row table would be scanned twice.
 */

/** True when the table's key is one integer column: ranges can then be split by value, without reading keys. */
export function hasIntegerKey(spec: TableSpec): boolean {
  if (spec.primaryKey.length !== 1) return false;
  const column = spec.columns.find((c) => c.source === spec.primaryKey[0]);
  return column !== undefined && isIntegerType(column.sourceType);
}

/** Below this many chunks by the catalog's estimate, keyset boundaries cost little and are exact: value ranges are not worth it. */
export const VALUE_RANGES_MIN_CHUNKS = 10;

/**
 * A range estimated at more than this many times `chunkRows` is cut again. InnoDB's estimate of
 * a large range was twice the rows in it on the bench's evenly spread keys, so only a clear
 * excess is a dense stretch of keys (a few outliers far above the rest put all of them in one range).
 */
const SPLIT_ABOVE = 4;

/** The width of value ranges of about `chunkRows` rows over [min, max], from an estimate of the rows there (at least 1). */
export function evenWidth(min: bigint, max: bigint, estimatedRows: number, chunkRows: number): bigint {
  const width = ((max - min + 1n) * BigInt(chunkRows)) / BigInt(Math.max(1, Math.round(estimatedRows)));
  return width > 0n ? width : 1n;
}

/** The estimated rows with lower < key <= upper. */
export type RangeEstimate = (lower: bigint, upper: bigint) => Promise<number>;

/**
 * Upper bounds (inclusive) of value ranges over (min - 1, max] that hold about `chunkRows` rows
 * each by the estimates: ranges of even width first, a range estimated far above `chunkRows` cut
 * again (until its estimate is reasonable or it is one value wide), and consecutive ranges
 * estimated small joined. `max` itself is not yielded: the caller's last chunk is open-ended.
 * Estimates need not be exact: a wrong one only makes a chunk bigger or smaller.
 */
export async function* valueRangeBounds(min: bigint, max: bigint, estimatedRows: number, chunkRows: number, estimate: RangeEstimate): AsyncIterable<bigint> {
  let rows = 0; // estimated rows since the last bound
  // Estimates that do not shrink with the range (an optimizer that ignored the key) must not cut it down to single
  // values: past a few per expected chunk, ranges are taken as they are.
  const budget = { left: 4 * Math.ceil(Math.max(1, estimatedRows) / chunkRows) + 1000 };
  for await (const range of estimatedRanges(min - 1n, max, evenWidth(min, max, estimatedRows, chunkRows), chunkRows, estimate, budget)) {
    if (rows > 0 && rows + range.rows > chunkRows) {
      yield range.lower;
      rows = 0;
    }
    rows += range.rows;
    if (rows >= chunkRows && range.upper < max) {
      yield range.upper;
      rows = 0;
    }
  }
}

interface EstimatedRange {
  lower: bigint;
  upper: bigint;
  rows: number;
}

/** Ranges of `width` over (lower, upper] in key order with their estimates, those estimated far too big cut again. */
async function* estimatedRanges(lower: bigint, upper: bigint, width: bigint, chunkRows: number, estimate: RangeEstimate, budget: { left: number }): AsyncIterable<EstimatedRange> {
  for (let from = lower; from < upper; from += width) {
    const to = upper - from > width ? from + width : upper;
    const rows = await estimate(from, to);
    budget.left--;
    if (rows > SPLIT_ABOVE * chunkRows && to - from > 1n && budget.left > 0) {
      const parts = BigInt(Math.ceil(rows / chunkRows));
      yield* estimatedRanges(from, to, (to - from + parts - 1n) / parts, chunkRows, estimate, budget);
    } else yield { lower: from, upper: to, rows };
  }
}
