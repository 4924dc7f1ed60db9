import { describe, expect, it } from 'vitest';
import { describeShards, formatRanges, parseRanges } from './ranges.js';
import { parseShardList } from './cli/commands/verify.js';
import { parseDeadLetterIds } from './cli/commands/sync.js';

describe('lists of numbers and ranges (verify --shards, sync skip-dead-letters, status scopes)', () => {
  const ids = { what: 'ids', noun: 'an id', min: 1, max: 1000, maxCount: 50 };

  it('reads numbers and ranges, sorted and without repeats', () => {
    expect(parseRanges('12,15-18, 3 ,16', ids)).toEqual([3, 12, 15, 16, 17, 18]);
    expect(parseRanges('7-7', ids)).toEqual([7]);
  });

  it('refuses what is not a number or a range, naming the flag and the part', () => {
    expect(() => parseRanges('12,,13', ids)).toThrow('ids: an empty item is not an id or a range like 1-4');
    expect(() => parseRanges('12-x', ids)).toThrow('ids: "12-x" is not an id');
    expect(() => parseRanges('-3', ids)).toThrow('"-3" is not an id');
    expect(() => parseRanges('40-15', ids)).toThrow('ids: range 40-15 ends before it starts');
    expect(() => parseRanges('0', ids)).toThrow('ids: 0 is outside 1..1000');
    expect(() => parseRanges('990-1001', ids)).toThrow('ids: 990-1001 is outside 1..1000');
    expect(() => parseRanges('1-60', ids)).toThrow('ids: more than 50 at once');
  });

  it('checks bounds before expanding a range', () => {
    expect(() => parseShardList('0-20000000000', 16)).toThrow('--shards: 0-20000000000 is outside 0..15');
    expect(() => parseDeadLetterIds('1-200000')).toThrow('skip-dead-letters: more than 100000 at once');
    expect(parseDeadLetterIds('5,2-3')).toEqual([2, 3, 5]);
  });

  it('writes many numbers as ranges, not one by one', () => {
    expect(formatRanges([4, 5, 6, 9, 11, 12])).toBe('4-6,9,11-12');
    expect(formatRanges(parseRanges('1-50', ids))).toBe('1-50');
    expect(formatRanges([])).toBe('');
  });

  it('names shards briefly: ranges, or the count and span when the ranges would be many', () => {
    expect(describeShards([7])).toBe('shard 7');
    expect(describeShards([9, 2, 3, 1])).toBe('shards 1-3,9');
    expect(describeShards(Array.from({ length: 256 }, (_, i) => 1023 - i))).toBe('shards 768-1023');
    expect(describeShards(Array.from({ length: 200 }, (_, i) => 768 + i * 2))).toBe('200 shards from 768 to 1166');
  });
});
