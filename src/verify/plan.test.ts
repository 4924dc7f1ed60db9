import { describe, expect, it } from 'vitest';
import { minimalConfig } from '../config/minimal.js';
import { verifyChunkRows } from './plan.js';

describe('verify chunk size', () => {
  it('auto: about 320 rows per shard table, within 5,000..100,000', () => {
    expect(minimalConfig(16).verify.chunk_rows).toBe('auto');
    expect([1, 16, 64, 1024].map((n) => verifyChunkRows(minimalConfig(n)))).toEqual([5_000, 5_120, 20_480, 100_000]);
  });

  it('a number in the config is taken as it is; anything else is refused with its YAML path', () => {
    expect(verifyChunkRows(minimalConfig(16, 'verify: { chunk_rows: 777 }'))).toBe(777);
    expect(() => minimalConfig(16, 'verify: { chunk_rows: lots }')).toThrow(/verify\.chunk_rows/);
  });
});
