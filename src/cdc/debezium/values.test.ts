import { describe, expect, it } from 'vitest';
import { memberLabels } from '../../rows/mysql.js';
import { Unrepresentable, type ColumnSpec } from '../../rows/types.js';
import { decodeValue } from './values.js';

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
