import { describe, expect, it } from 'vitest';
import { decodeValue } from '../cdc/debezium/values.js';
import { yearText } from './convert.js';
import { mysqlTypeMap } from './mysql.js';
import type { ColumnSpec } from './types.js';

/** MySQL stores the text '0' into a YEAR as 2000; only '0000' is the year 0. */
describe('YEAR 0000 survives every path as four digits', () => {
  it('yearText pads what MySQL would read as 20xx', () => {
    expect(yearText('0')).toBe('0000');
    expect(yearText('1901')).toBe('1901');
    expect(yearText('2155')).toBe('2155');
  });

  it('the MySQL reader (row copy, repair) turns the driver number 0 into 0000', () => {
    const year = mysqlTypeMap.conversion({ dataType: 'year' }, 'y');
    expect(year.convert(0)).toBe('0000');
    expect(year.convert(1901)).toBe('1901');
    expect(year.convert(null)).toBeNull();
  });

  it('sync decodes Debezium YEAR 0, with or without its schema name, as 0000', () => {
    const column: ColumnSpec = { source: 'y', target: 'y', sourceType: { dataType: 'year' }, targetType: 'year', nullable: true };
    expect(decodeValue(0, { type: 'int32', name: 'io.debezium.time.Year' }, column)).toBe('0000');
    expect(decodeValue(0, { type: 'int32' }, column)).toBe('0000');
    expect(decodeValue(2024, { type: 'int32' }, column)).toBe('2024');
    expect(decodeValue(0, { type: 'int32' }, { ...column, targetType: 'int' })).toBe('0');
  });
});
