import { describe, expect, it } from 'vitest';
import { memberLabels } from '../../rows/mysql.js';
import { Unrepresentable, type ColumnSpec } from '../../rows/types.js';
import { mssqlTypeMap } from '../../rows/mssql/typemap.js';
import { daysFromCivil, decodeValue, encodingOfSourceType, withSqlServerConversion } from './values.js';

const enumColumn = (columnType: string): ColumnSpec => ({
  source: 'tier',
  target: 'tier',
  sourceType: { dataType: 'enum', columnType },
  targetType: columnType,
  nullable: true,
});
const ENUM = { type: 'string', name: 'io.debezium.data.Enum' };

describe('ENUM values from Debezium (MySQL/MariaDB sources)', () => {
  it("flags '' where '' is no member: it can only be the ENUM error value, as the copy path flags it", () => {
    const v = decodeValue('', ENUM, enumColumn("enum('gold','silver')"));
    expect(v).toBeInstanceOf(Unrepresentable);
    expect((v as Unrepresentable).reason).toMatch(/column tier: the ENUM error value \(index 0\)/);
    expect(decodeValue('gold', ENUM, enumColumn("enum('gold','silver')"))).toBe('gold');
    expect(decodeValue(null, ENUM, enumColumn("enum('gold','silver')"))).toBeNull();
  });

  it("writes '' where '' is a member (the event cannot tell it from the error value)", () => {
    expect(decodeValue('', ENUM, enumColumn("enum('','gold')"))).toBe('');
    expect(decodeValue('', ENUM, enumColumn("enum('gold','')"))).toBe('');
  });

  it('reads the member list of COLUMN_TYPE: doubled quotes, backslashes, commas and parentheses inside members', () => {
    expect(memberLabels("enum('a','it''s','','x,y','(z)')")).toEqual(['a', "it's", '', 'x,y', '(z)']);
    expect(memberLabels("enum('a\\\\b','''')")).toEqual(['a\\b', "'"]);
    expect(memberLabels("set('a','b')")).toEqual(['a', 'b']);
    // '' inside a member is a quote, not an empty member.
    expect(memberLabels("enum('a'',''b')")).toEqual(["a','b"]);
    expect(() => memberLabels('varchar(10)')).toThrow(/cannot read the members/);
    expect(() => memberLabels('int')).toThrow(/not an ENUM or SET/);
  });
});

const column = (source: string, dataType: string, targetType: string): ColumnSpec => ({ source, target: source, sourceType: { dataType }, targetType, nullable: true });

describe('MySQL zero values Debezium sends as values the column cannot hold', () => {
  it('YEAR 0000 arrives as 1900, which YEAR cannot hold: it is 0000 again; other years are as sent', () => {
    const year = column('y', 'year', 'year');
    expect(decodeValue(1900, { type: 'int32', name: 'io.debezium.time.Year' }, year)).toBe('0000');
    expect(decodeValue(1900, { type: 'int32' }, year)).toBe('0000');
    expect(decodeValue(1901, { type: 'int32', name: 'io.debezium.time.Year' }, year)).toBe('1901');
    expect(decodeValue(2155, { type: 'int32' }, year)).toBe('2155');
    // An INT column holding 1900 is 1900.
    expect(decodeValue(1900, { type: 'int32' }, column('n', 'int', 'int'))).toBe('1900');
  });

  it("the zero TIMESTAMP arrives as the epoch, which TIMESTAMP cannot hold: it is '0000-00-00 00:00:00' again, at the target's precision", () => {
    const zoned = { type: 'string', name: 'io.debezium.time.ZonedTimestamp' };
    expect(decodeValue('1970-01-01T00:00:00Z', zoned, column('ts', 'timestamp', 'timestamp'))).toBe('0000-00-00 00:00:00');
    expect(decodeValue('1970-01-01T00:00:00Z', zoned, column('ts', 'timestamp', 'timestamp(6)'))).toBe('0000-00-00 00:00:00.000000');
    expect(decodeValue('1970-01-01T00:00:01Z', zoned, column('ts', 'timestamp', 'timestamp'))).toBe('1970-01-01 00:00:01');
    // A DATETIME (or SQL Server datetimeoffset) can hold the epoch: it stays the epoch.
    expect(decodeValue('1970-01-01T00:00:00Z', zoned, column('dt', 'datetime', 'datetime'))).toBe('1970-01-01 00:00:00');
  });
});

describe('SQL Server dates from Debezium follow the copy path (its type map) to the letter', () => {
  const column = (dataType: string, scale?: number): ColumnSpec => {
    const sourceType = { dataType, ...(scale !== undefined ? { scale } : {}) };
    return { source: 'd', target: 'd', sourceType, targetType: mssqlTypeMap.conversion(sourceType, 'd').targetType, nullable: true };
  };
  const decode = (raw: unknown, c: ColumnSpec) =>
    decodeValue(raw, withSqlServerConversion(encodingOfSourceType(c.sourceType, { decimalHandling: 'precise', connector: 'sqlserver' }), c), c);
  const msOf = (y: number, m: number, d: number) => (BigInt(daysFromCivil(y, m, d)) * 86_400_000n).toString();

  it('a year before 1000 is Unrepresentable, as the copy path says (MySQL supports DATE/DATETIME from 1000)', () => {
    const date = decode(daysFromCivil(500, 1, 1), column('date'));
    expect(date).toBeInstanceOf(Unrepresentable);
    expect((date as Unrepresentable).reason).toBe('MySQL DATE is only supported from 1000-01-01');
    for (const c of [column('datetime2', 3), column('datetime')]) {
      expect(decode(msOf(1, 1, 1), c)).toBeInstanceOf(Unrepresentable);
    }
  });

  it('dates from 1000 on pass as the copy path writes them', () => {
    expect(decode(daysFromCivil(1000, 1, 1), column('date'))).toBe('1000-01-01');
    expect(decode(msOf(2024, 2, 29), column('datetime'))).toBe('2024-02-29 00:00:00.000');
    expect(decode(msOf(9999, 12, 31), column('datetime2', 0))).toBe('9999-12-31 00:00:00');
  });
});
