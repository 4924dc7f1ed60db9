import { describe, expect, it } from 'vitest';
import { ColumnCursor } from './row-packets.js';

describe('ColumnCursor (length-encoded columns of a text-protocol row)', () => {
  it('walks columns of every length form and NULL', () => {
    const long = Buffer.alloc(300, 0x61);
    const row = Buffer.concat([
      Buffer.from([2, 0x31, 0x35]), // '15'
      Buffer.from([0xfb]), // NULL
      Buffer.from([0xfc, 300 & 0xff, 300 >> 8]),
      long,
      Buffer.from([0xfd, 1, 0, 0, 0x7a]), // 'z' with a 3-byte length
      Buffer.from([0xfe, 0, 0, 0, 0, 0, 0, 0, 0]), // '' with an 8-byte length
    ]);
    const c = new ColumnCursor();
    c.reset(row, 0);
    c.next();
    expect([c.text(), c.digits(), c.isNull]).toEqual(['15', 15, false]);
    c.next();
    expect([c.text(), c.isNull, Number.isNaN(c.digits())]).toEqual([null, true, true]);
    c.next();
    expect(c.end - c.start).toBe(300);
    expect(c.text()).toBe('a'.repeat(300));
    c.next();
    expect(c.text()).toBe('z');
    c.next();
    expect([c.text(), c.at]).toEqual(['', row.length]);
  });

  it('reads digits only: a sign, a point or an empty column is not a shard number', () => {
    const c = new ColumnCursor();
    for (const text of ['-1', '1.0', '', ' 1']) {
      c.reset(Buffer.concat([Buffer.from([text.length]), Buffer.from(text)]), 0);
      c.next();
      expect(c.digits()).toBeNaN();
    }
    c.reset(Buffer.from([16, ...Buffer.from('9007199254740991')]), 0);
    c.next();
    expect(c.digits()).toBe(Number.MAX_SAFE_INTEGER);
  });
});
