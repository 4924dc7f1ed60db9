import type { ColumnSpec, Row, RowValue } from './types.js';

/**
 * The bulk text form of rows, as LOAD DATA reads it with FIELDS TERMINATED BY '\t' ESCAPED BY '\\'
 * LINES TERMINATED BY '\n': one line per row, values in the spec's column order, NULL as \N,
 * backslash, tab, newline and NUL escaped, bytes (wire 'hex') as hex digits that the LOAD DATA
 * statement turns back with UNHEX. The MySQL source builds the same text in SQL (src/source/mysql/tsv.ts).
 */

export const TSV_NULL = '\\N';

export function tsvField(value: RowValue, column: Pick<ColumnSpec, 'wire'>): string {
  if (value === null) return TSV_NULL;
  if (Buffer.isBuffer(value)) return column.wire === 'hex' ? value.toString('hex') : escapeTsv(value.toString('utf8'));
  return column.wire === 'hex' ? Buffer.from(value, 'utf8').toString('hex') : escapeTsv(value);
}

const SPECIAL = /[\\\t\n\0]/;

export function escapeTsv(text: string): string {
  if (!SPECIAL.test(text)) return text;
  return text.replace(/[\\\t\n\0]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\0'));
}

/** One row as a line (with its newline), UTF-8 encoded. */
export function tsvLine(row: Row, columns: Pick<ColumnSpec, 'wire'>[]): Buffer {
  return Buffer.from(row.map((v, i) => tsvField(v, columns[i]!)).join('\t') + '\n', 'utf8');
}

/**
 * Lines gathered into blocks of whole lines, each becoming one packet of a LOAD DATA stream.
 * Each line is copied on arrival, so the driver's row objects die young instead of being kept
 * (and promoted by the garbage collector) until the block is written.
 */
export class LineBlocks {
  readonly blocks: Buffer[] = [];
  lines = 0;
  private block = Buffer.alloc(0);
  private used = 0;

  constructor(private readonly blockBytes = 256 * 1024) {}

  add(line: Buffer): void {
    if (this.used + line.length > this.block.length) {
      this.seal();
      this.block = Buffer.allocUnsafe(Math.max(this.blockBytes, line.length));
    }
    line.copy(this.block, this.used);
    this.used += line.length;
    this.lines++;
  }

  /** The blocks, the last one cut to its lines. */
  done(): Buffer[] {
    this.seal();
    return this.blocks;
  }

  private seal(): void {
    if (this.used > 0) this.blocks.push(this.block.subarray(0, this.used));
    this.block = Buffer.alloc(0);
    this.used = 0;
  }
}
