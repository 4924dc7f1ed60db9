import { describe, expect, it } from 'vitest';
import { evenWidth, valueRangeBounds, type RangeEstimate } from './value-ranges.js';

/** Exact counts over sorted keys, times `bias` (InnoDB's estimate of a large range was about 2x). */
function estimator(keys: bigint[], bias = 1): RangeEstimate & { calls: number } {
  const below = (k: bigint) => {
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (keys[mid]! <= k) lo = mid + 1;
      else hi = mid;
    }
    return lo; // keys <= k
  };
  const f = Object.assign(async (lower: bigint, upper: bigint) => {
    f.calls++;
    return Math.round((below(upper) - below(lower)) * bias);
  }, { calls: 0 });
  return f;
}

async function plan(keys: bigint[], chunkRows: number, bias = 1, estimatedRows = keys.length) {
  const estimate = estimator(keys, bias);
  const bounds: bigint[] = [];
  for await (const b of valueRangeBounds(keys[0]!, keys.at(-1)!, estimatedRows, chunkRows, estimate)) bounds.push(b);
  // Rows per chunk: (-inf, b0], (b0, b1], ..., (bn, +inf)
  const edges = [...bounds, null];
  let from = 0;
  const sizes = edges.map((b) => {
    const to = b === null ? keys.length : keys.findLastIndex((k) => k <= b) + 1;
    const n = to - from;
    from = to;
    return n;
  });
  return { bounds, sizes, calls: estimate.calls };
}

const range = (from: bigint, n: number, step = 1n) => Array.from({ length: n }, (_, i) => from + BigInt(i) * step);

describe('value ranges of an integer key', () => {
  it('cuts evenly spread keys into chunks of about chunkRows, one estimate per chunk', async () => {
    const { bounds, sizes, calls } = await plan(range(10_000_000n, 20_000, 7n), 500);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(20_000);
    expect(bounds.length).toBeGreaterThanOrEqual(38);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(520);
    expect(calls).toBeLessThanOrEqual(41);
    for (let i = 1; i < bounds.length; i++) expect(bounds[i]!).toBeGreaterThan(bounds[i - 1]!);
  });

  it('keeps the ranges as they are when estimates are twice the rows (no cutting of every range)', async () => {
    const { sizes, calls } = await plan(range(1n, 20_000), 500, 2);
    expect(calls).toBeLessThanOrEqual(41);
    expect(sizes.length).toBeGreaterThanOrEqual(38);
    expect(sizes.length).toBeLessThanOrEqual(42);
  });

  it('cuts again the range that a few outliers far above the rest left holding every row', async () => {
    // Width from the span puts all 20,000 dense keys in the first range: it is cut until chunks are small.
    const keys = [...range(1n, 20_000), 10n ** 15n, 5n * 10n ** 17n, 9_223_372_036_854_775_807n];
    const { sizes, calls } = await plan(keys, 500, 2);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(keys.length);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(4 * 500);
    expect(sizes.filter((n) => n > 0).length).toBeGreaterThanOrEqual(20_000 / 2000);
    // Empty stretches are joined, not each a chunk.
    expect(sizes.length).toBeLessThanOrEqual(100);
    expect(calls).toBeLessThan(2_000);
  });

  it('joins the empty stretches between clusters of keys', async () => {
    const keys = [...range(0n, 5_000), ...range(10n ** 12n, 5_000), ...range(2n * 10n ** 12n, 5_000)];
    const { sizes } = await plan(keys, 1_000);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(15_000);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(4 * 1_000);
    expect(sizes.length).toBeLessThanOrEqual(45);
  });

  it('works over negative keys and keys past 2^63 (BIGINT UNSIGNED)', async () => {
    for (const from of [-9_223_372_036_854_775_808n, 18_446_744_073_709_551_615n - 99_999n]) {
      const { bounds, sizes } = await plan(range(from, 10_000, 10n), 1_000);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(10_000);
      expect(bounds.every((b) => b >= from && b < from + 99_990n)).toBe(true);
    }
  });

  it('never makes a range narrower than one value', () => {
    expect(evenWidth(1n, 10n, 1_000_000, 5)).toBe(1n);
    expect(evenWidth(1n, 1_000n, 100, 10)).toBe(100n);
  });

  it('stops cutting when estimates do not shrink with the range, after a bounded number of them', async () => {
    // An estimator that always says "the whole table": without a budget this would cut a 2^63-wide span to single values.
    let calls = 0;
    const stubborn = async () => (calls++, 1_000_000);
    const bounds: bigint[] = [];
    for await (const b of valueRangeBounds(0n, 2n ** 63n, 1_000_000, 1_000, stubborn)) bounds.push(b);
    // The budget (5,000), plus the ranges beside each one being cut when it ran out (~1,000 a level).
    expect(calls).toBeLessThan(20_000);
    for (let i = 1; i < bounds.length; i++) expect(bounds[i]!).toBeGreaterThan(bounds[i - 1]!);
  });
});
