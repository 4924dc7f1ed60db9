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

  it('gives no block for no lines', () => {
    expect(new LineBlocks().done()).toEqual([]);
  });
});
