import { describe, expect, it } from 'vitest';
import { histogramEstimate, type HistogramStep } from '../../../src/source/mssql/histogram.js';
import { valueRangeBounds } from '../../../src/source/value-ranges.js';

const step = (high: bigint, rangeRows: number, equalRows = 1): HistogramStep => ({ high, rangeRows, equalRows });

describe('estimates from a SQL Server key histogram', () => {
  // Keys 1..10,000 every one, in 4 steps as SQL Server would summarise them.
  const dense = [step(1n, 0), step(2_500n, 2_498), step(5_000n, 2_499), step(10_000n, 4_999)];

  it('spreads a step\'s range rows evenly between its high key and the one before, and counts its equal rows on its high key', async () => {
    const estimate = histogramEstimate(dense, 10_000, 10_000n);
    expect(await estimate(0n, 10_000n)).toBeCloseTo(10_000, 6);
    expect(await estimate(0n, 1n)).toBe(1); // the first step's key alone
    expect(await estimate(2_500n, 5_000n)).toBeCloseTo(2_500, 6); // (2500, 5000]: 2,499 between, 1 on 5000
    expect(await estimate(1_000n, 2_000n)).toBeCloseTo(1_000, 0);
    expect(await estimate(7_000n, 7_100n)).toBeCloseTo(100, 0);
    expect(await estimate(10_000n, 20_000n)).toBe(0);
  });

  it('puts rows the statistics have not seen (added since) past the last step, up to the largest key', async () => {
    // Statistics from when the table ended at 10,000; it now holds 15,000 rows, up to key 15,000.
    const estimate = histogramEstimate(dense, 15_000, 15_000n);
    expect(await estimate(10_000n, 15_000n)).toBeCloseTo(5_000, 6);
    expect(await estimate(12_000n, 13_000n)).toBeCloseTo(1_000, 6);
    expect(await estimate(0n, 10_000n)).toBeCloseTo(10_000, 6);
  });

  it('cuts a table whose few outlying keys stretch the span into chunks of about chunkRows', async () => {
    // 20,000 keys from 1, three far above: SQL Server gives the outliers steps of their own.
    const steps = [step(1n, 0), step(20_000n, 19_998), step(10n ** 15n, 0), step(5n * 10n ** 17n, 0), step(9_223_372_036_854_775_807n, 0)];
    const estimate = histogramEstimate(steps, 20_003, 9_223_372_036_854_775_807n);
    const bounds: bigint[] = [];
    for await (const b of valueRangeBounds(1n, 9_223_372_036_854_775_807n, 20_003, 500, estimate)) bounds.push(b);
    const dense = bounds.filter((b) => b < 20_000n);
    // By width alone every dense key would be in the first chunk; here no chunk of them holds over 4x chunkRows.
    expect(dense.length).toBeGreaterThanOrEqual(20_000 / 2_000);
    expect(dense[0]!).toBeLessThanOrEqual(2_000n);
    for (let i = 1; i < dense.length; i++) expect(dense[i]! - dense[i - 1]!).toBeLessThanOrEqual(2_000n);
    expect(20_000n - dense.at(-1)!).toBeLessThanOrEqual(2_000n);
    // The empty stretch up to the outliers is joined, not cut into chunks.
    expect(bounds.length - dense.length).toBeLessThanOrEqual(5);
  });
});
