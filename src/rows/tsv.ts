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
