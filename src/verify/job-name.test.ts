import { describe, expect, it } from 'vitest';
import { verifyJobName } from './index.js';

describe('verifyJobName', () => {
  const scope = (sample: number | null, shards: number[] | 'all') => ({ shards, sample, since: null, hash: 'crc32', repair: 'no' });

  it('is the tables and the scope as they are while they fit', () => {
    expect(verifyJobName(['member'], scope(null, 'all'))).toBe('member|{"shards":"all","sample":null,"since":null,"hash":"crc32","repair":"no"}');
  });

  it('tells apart scopes that differ only past 191 characters, and stays within them', () => {
    const shards = Array.from({ length: 64 }, (_, i) => i);
    const sampled = verifyJobName(['member'], scope(10, shards));
    const whole = verifyJobName(['member'], scope(null, shards));
    expect(sampled).not.toBe(whole);
    expect(sampled.length).toBeLessThanOrEqual(191);
    expect(whole.length).toBeLessThanOrEqual(191);
    expect(verifyJobName(['member'], scope(10, shards))).toBe(sampled);
  });
});
