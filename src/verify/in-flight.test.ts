import { describe, expect, it } from 'vitest';
import { behindOf, type TopicOffsets } from './in-flight.js';

describe('behindOf', () => {
  const offsets = (entries: [string, bigint][]): TopicOffsets => new Map(entries);

  it('names the partitions whose committed offset is below the end wanted', () => {
    const ends = offsets([
      ['t/0', 10n],
      ['t/1', 5n],
      ['u/0', 0n],
    ]);
    expect(behindOf(ends, offsets([['t/0', 10n], ['t/1', 4n], ['u/0', 0n]]))).toEqual(['t/1']);
    expect(behindOf(ends, offsets([['t/0', 12n], ['t/1', 5n]]))).toEqual([]);
  });

  it('a partition with nothing committed is behind any end above 0', () => {
    expect(behindOf(offsets([['t/0', 1n], ['t/1', 0n]]), offsets([]))).toEqual(['t/0']);
  });

  it('compares 64-bit offsets exactly', () => {
    expect(behindOf(offsets([['t/0', 9007199254740993n]]), offsets([['t/0', 9007199254740992n]]))).toEqual(['t/0']);
  });
});
