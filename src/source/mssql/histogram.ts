import type { RangeEstimate } from '../value-ranges.js';

/** One step of a SQL Server statistics histogram over an integer key. */
export interface HistogramStep {
  high: bigint;
  /** Rows with a key between the step before's high key and this one's (both excluded). */
  rangeRows: number;
  /** Rows with this step's high key. */
  equalRows: number;
}

/**
 * Estimated rows with lower < key <= upper from the key's histogram: a step's range rows spread
 * evenly over the values between its high key and the one before, its equal rows on its high key.
 * Rows the histogram has not seen (inserted since the statistics were taken: `totalRows` over its
 * sum) are spread over the keys past its last step up to `max`, where new keys of an ascending key go.
 */
export function histogramEstimate(steps: HistogramStep[], totalRows: number, max: bigint): RangeEstimate {
  const counted = steps.reduce((n, s) => n + s.rangeRows + s.equalRows, 0);
  const unseen = Math.max(0, totalRows - counted);
  const last = steps.at(-1)?.high;
  return async (lower, upper) => {
    let rows = 0;
    let before: bigint | undefined;
    for (const step of steps) {
      if (before !== undefined && step.rangeRows > 0) rows += step.rangeRows * share(before, step.high - 1n, lower, upper);
      if (step.high > lower && step.high <= upper) rows += step.equalRows;
      before = step.high;
    }
    if (last !== undefined && unseen > 0 && max > last) rows += unseen * share(last, max, lower, upper);
    return rows;
  };
}

/** The share of the values in (from, to] that are in (lower, upper]. */
function share(from: bigint, to: bigint, lower: bigint, upper: bigint): number {
  if (to <= from) return 0;
  const a = from > lower ? from : lower;
  const b = to < upper ? to : upper;
  return b > a ? Number(b - a) / Number(to - from) : 0;
}
