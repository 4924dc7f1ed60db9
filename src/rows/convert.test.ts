import { describe, expect, it } from 'vitest';
import { keptFraction } from './convert.js';

describe('keptFraction (the one rule for digits a target precision drops)', () => {
  it('cuts zeros and pads short fractions to the kept width', () => {
    expect(keptFraction('1234560', 6)).toBe('123456');
    expect(keptFraction('5', 3)).toBe('500');
    expect(keptFraction('', 2)).toBe('00');
    expect(keptFraction('000', 0)).toBe('');
  });

  it('refuses a fraction whose dropped digits are not all zero (MySQL would round it)', () => {
    expect(keptFraction('1234567', 6)).toBeNull();
    expect(keptFraction('9999999', 0)).toBeNull();
    expect(keptFraction('000000001', 6)).toBeNull();
  });
});
