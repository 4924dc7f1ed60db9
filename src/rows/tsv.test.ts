import { describe, expect, it } from 'vitest';
import { LineBlocks } from './tsv.js';

describe('LineBlocks', () => {
  it('keeps every line whole and in order, in blocks of at most the block size unless one line is larger', () => {
    const blocks = new LineBlocks(10);
    const lines = ['a\n', 'bbbb\n', 'cc\n', 'dddddddddddddddd\n', 'e\n'].map((l) => Buffer.from(l));
    for (const line of lines) blocks.add(line);
    const out = blocks.done();
    expect(blocks.lines).toBe(5);
    expect(out.map((b) => b.toString())).toEqual(['a\nbbbb\ncc\n', 'dddddddddddddddd\n', 'e\n']);
  });

  it('starts with a small block and doubles up to the block size, so a few lines cost little', () => {
    const blocks = new LineBlocks(64, 8);
    for (let i = 0; i < 40; i++) blocks.add(Buffer.from(`${String(i).padStart(3, '0')}\n`));
    const out = blocks.done();
    expect(out.map((b) => b.length)).toEqual([8, 16, 32, 64, 40]);
    expect(Buffer.concat(out).toString()).toBe(Array.from({ length: 40 }, (_, i) => `${String(i).padStart(3, '0')}\n`).join(''));
  });

  it('counts bytes, and copies a mostly empty last block to its size so waiting lines do not hold the whole allocation', () => {
    const blocks = new LineBlocks(1 << 20, 1 << 20);
    blocks.add(Buffer.from('x'.repeat(99) + '\n'));
    const [only] = blocks.done();
    expect(blocks.bytes).toBe(100);
    expect(only!.length).toBe(100);
    expect(only!.buffer.byteLength).toBeLessThan(1 << 20);
  });

  it('gives no block for no lines', () => {
    expect(new LineBlocks().done()).toEqual([]);
  });
});
