import { describe, expect, it } from 'vitest';
import { LineBlocks } from './tsv.js';
import { ValueTooLargeError } from './types.js';

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

/** A column as the text protocol sends it: a length-encoded string, 0xFB for NULL. */
function lengthEncoded(value: Buffer | null): Buffer {
  if (value === null) return Buffer.from([0xfb]);
  const n = value.length;
  if (n < 0xfb) return Buffer.concat([Buffer.from([n]), value]);
  if (n < 1 << 16) return Buffer.concat([Buffer.from([0xfc, n & 0xff, n >> 8]), value]);
  if (n < 1 << 24) return Buffer.concat([Buffer.from([0xfd, n & 0xff, (n >> 8) & 0xff, n >> 16]), value]);
  const head = Buffer.alloc(9);
  head[0] = 0xfe;
  head.writeBigUInt64LE(BigInt(n), 1);
  return Buffer.concat([head, value]);
}

/** The line LOAD DATA reads, built the plain way: the rule addRow must follow. */
function expectedLine(values: (Buffer | null)[], escaped: boolean[]): string {
  const fields = values.map((v, i) => {
    if (v === null) return '\\N';
    const text = v.toString('latin1');
    return escaped[i] ? text.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n') : text;
  });
  return fields.join('\t') + '\n';
}

describe('LineBlocks.addRow (lines from text-protocol row bytes)', () => {
  const escaped = [false, true, true, false, true];

  it('joins columns with tabs, escapes backslash, tab and newline in text and writes NULL as \\N', () => {
    const rows: (Buffer | null)[][] = [
      ['42', '张伟', 'plain', '2024-01-02 03:04:05.123456', 'x'],
      ['1', 'tab\there', null, '\\N', 'back\\slash\nnew'],
      ['7', '\\N', '', '', null],
      ['8', null, null, '1.50', '\t'],
    ].map((r) => r.map((v) => (v === null ? null : Buffer.from(v))));
    const blocks = new LineBlocks(64, 16);
    for (const row of rows) {
      const packet = Buffer.concat([Buffer.from('junk'), ...row.map(lengthEncoded), Buffer.from('after')]);
      blocks.addRow(packet, 4, packet.length - 5, escaped);
    }
    expect(Buffer.concat(blocks.done()).toString('latin1')).toBe(rows.map((r) => expectedLine(r, escaped)).join(''));
    expect(blocks.lines).toBe(4);
  });

  it('takes values of every length form (1, 3, 4 and 9 length bytes) and bytes that are not UTF-8', () => {
    const long = (n: number, fill: string) => Buffer.from(fill.repeat(Math.ceil(n / fill.length)).slice(0, n), 'latin1');
    const rows: (Buffer | null)[][] = [
      [long(250, 'a'), long(251, 'b\t'), long(70_000, 'c\\'), long(17_000_000, 'd'), Buffer.from([0xff, 0x00, 0x5c])],
      [long(0, ''), long(65_535, 'é\n'), null, long(65_536, 'f'), long(300, '\\\t\n')],
    ];
    const blocks = new LineBlocks();
    for (const row of rows) {
      const packet = Buffer.concat(row.map(lengthEncoded));
      blocks.addRow(packet, 0, packet.length, escaped);
    }
    expect(Buffer.concat(blocks.done()).toString('latin1')).toBe(rows.map((r) => expectedLine(r, escaped)).join(''));
  });

  it('gives the same lines as the plain rule for random rows', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const alphabet = ['a', 'Z', '0', '\\', '\t', '\n', 'N', '张', '\u0000', ' '];
    const value = (): Buffer | null => {
      if (random() < 0.2) return null;
      const n = random() < 0.1 ? 240 + Math.floor(random() * 30) : Math.floor(random() * 12);
      return Buffer.from(Array.from({ length: n }, () => alphabet[Math.floor(random() * alphabet.length)]).join(''));
    };
    // A column in its final form has its NULL as \N already (src/source/mysql/tsv.ts).
    const rows = Array.from({ length: 2_000 }, () => escaped.map((isText) => value() ?? (isText ? null : Buffer.from('\\N'))));
    const blocks = new LineBlocks(4096, 512);
    for (const row of rows) {
      const packet = Buffer.concat(row.map(lengthEncoded));
      blocks.addRow(packet, 0, packet.length, escaped);
    }
    expect(Buffer.concat(blocks.done()).toString('latin1')).toBe(rows.map((r) => expectedLine(r, escaped)).join(''));
  });

  it('refuses NULL in a column in its final form: a value the server could not build (HEX past max_allowed_packet)', () => {
    const row = Buffer.concat([lengthEncoded(Buffer.from('1')), lengthEncoded(Buffer.from('a')), lengthEncoded(null), lengthEncoded(null), lengthEncoded(Buffer.from('x'))]);
    expect(() => new LineBlocks().addRow(row, 0, row.length, escaped)).toThrow(ValueTooLargeError);
    expect(() => new LineBlocks().addRow(row, 0, row.length, escaped)).toThrow(/column 4 of a row: the source server gave NULL/);
  });

  it('refuses a row with fewer or more columns than expected, or a column running past its end', () => {
    const row = Buffer.concat(['1', 'a', 'b', 'c', 'd'].map((v) => lengthEncoded(Buffer.from(v))));
    expect(() => new LineBlocks().addRow(row, 0, row.length - 2, escaped)).toThrow(/a row has 4 columns, 5 expected/);
    const extra = Buffer.concat([row, lengthEncoded(Buffer.from('e'))]);
    expect(() => new LineBlocks().addRow(extra, 0, extra.length, escaped)).toThrow(/more than 5 columns/);
    const cut = Buffer.concat([row.subarray(0, 8), lengthEncoded(Buffer.from('x'.repeat(300)))]);
    expect(() => new LineBlocks().addRow(cut, 0, cut.length - 1, escaped)).toThrow(/runs past the row's end/);
  });
});
