import { describe, expect, it } from 'vitest';
import { normalizeType } from '../target/shape.js';
import { integerRange, isIntegerColumnType, isIntegerDataType } from './mysql.js';

describe('MySQL integer types (one list)', () => {
  it('tells integer types by DATA_TYPE and by declared column type', () => {
    for (const t of ['tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint', 'BIGINT']) expect(isIntegerDataType(t)).toBe(true);
    for (const t of ['decimal', 'year', 'bit', 'float', 'varchar', 'interval', '']) expect(isIntegerDataType(t)).toBe(false);
    expect(isIntegerColumnType('bigint(20) unsigned')).toBe(true);
    expect(isIntegerColumnType(' INT')).toBe(true);
    expect(isIntegerColumnType('decimal(18,0)')).toBe(false);
    expect(isIntegerColumnType('internal')).toBe(false);
  });

  it('gives each type its range, INTEGER as INT', () => {
    expect(integerRange('mediumint', true)).toEqual({ min: 0n, max: 16777215n });
    expect(integerRange('integer', false)).toEqual(integerRange('int', false));
    expect(() => integerRange('decimal', false)).toThrow(/not an integer type/);
  });

  it('shape checks drop integer and YEAR display widths only', () => {
    expect(normalizeType('INT(11) UNSIGNED')).toBe('int unsigned');
    expect(normalizeType('integer(11)')).toBe('int');
    expect(normalizeType('year(4)')).toBe('year');
    expect(normalizeType('varchar(32)')).toBe('varchar(32)');
    expect(normalizeType('char(4)')).toBe('char(4)');
    expect(normalizeType('json')).toBe('longtext');
  });
});
