import { describe, expect, it } from 'vitest';
import { minimalConfig } from '../config/minimal.js';
import { copyWorkers } from './workers.js';

describe('copy workers', () => {
  it('auto: 4 chunk workers, 2 above 256 shards', () => {
    expect(minimalConfig(16).copy.workers).toBe('auto');
    expect([1, 16, 256, 257, 1024].map((n) => copyWorkers(minimalConfig(n)))).toEqual([4, 4, 4, 2, 2]);
  });

  it('a number in the config is taken as it is; anything else is refused with its YAML path', () => {
    expect(copyWorkers(minimalConfig(1024, 'copy: { workers: 6 }'))).toBe(6);
    expect(() => minimalConfig(16, 'copy: { workers: many }')).toThrow(/copy\.workers/);
    expect(() => minimalConfig(16, 'copy: { workers: 0 }')).toThrow(/copy\.workers/);
  });
});
