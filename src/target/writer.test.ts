import { describe, expect, it } from 'vitest';
import { infilePackets } from './writer.js';

describe('infilePackets (the LOAD DATA stream)', () => {
  it('joins small blocks up to 256 KB, sends a full block alone and cuts one over 1 MB, keeping every byte in order', () => {
    const KB = 1024;
    const block = (kb: number, fill: number) => Buffer.alloc(kb * KB, fill);
    const blocks = [block(10, 1), block(10, 2), block(240, 3), block(256, 4), block(3000, 5), block(1, 6), block(1, 7)];
    const packets = [...infilePackets(blocks)];
    expect(packets.map((p) => p.length / KB)).toEqual([20, 240, 256, 1024, 1024, 952, 2]);
    expect(Buffer.compare(Buffer.concat(packets), Buffer.concat(blocks))).toBe(0);
    expect([...infilePackets([])]).toEqual([]);
  });
});
