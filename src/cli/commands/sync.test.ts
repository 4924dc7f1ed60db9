import { describe, expect, it } from 'vitest';
import { parseDeadLetterIds } from './sync.js';
import { idRanges } from '../../cdc/deadletters.js';

describe('sync skip-dead-letters ids', () => {
  it('reads ids and ranges, sorted and without repeats', () => {
    expect(parseDeadLetterIds('12,15-18, 3 ,16')).toEqual([3, 12, 15, 16, 17, 18]);
    expect(parseDeadLetterIds('7-7')).toEqual([7]);
  });

  it('refuses what is not an id or a range, naming the part', () => {
    expect(() => parseDeadLetterIds('12,,13')).toThrow(/an empty id/);
    expect(() => parseDeadLetterIds('0')).toThrow(/"0" is not an id or a range/);
    expect(() => parseDeadLetterIds('12-x')).toThrow(/"12-x" is not an id/);
    expect(() => parseDeadLetterIds('40-15')).toThrow(/the range 40-15 runs backwards/);
    expect(() => parseDeadLetterIds('1-200000')).toThrow(/more than 100000 ids at once/);
  });

  it('names many ids as ranges, not one by one', () => {
    expect(idRanges([4, 5, 6, 9, 11, 12])).toBe('4-6, 9, 11-12');
    expect(idRanges(parseDeadLetterIds('1-5000'))).toBe('1-5000');
    expect(idRanges([])).toBe('');
  });
});
