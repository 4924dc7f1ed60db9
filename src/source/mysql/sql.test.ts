import { describe, expect, it } from 'vitest';
import type { SourceType } from '../../rows/types.js';
import { memberLabels } from '../../rows/mysql.js';
import { canBeShardKey } from './catalog.js';
import { keyLiteral } from './sql.js';

describe('keyLiteral', () => {
  const kind: SourceType = { dataType: 'enum', columnType: "enum('email','phone','address','it''s')" };
  const flags: SourceType = { dataType: 'set', columnType: "set('vip','gold','new')" };

  it('reads ENUM and SET members, quotes included', () => {
    expect(memberLabels(kind.columnType!)).toEqual(['email', 'phone', 'address', "it's"]);
  });

  it('gives ENUM and SET bounds as their numbers, the order ORDER BY uses (not text order)', () => {
    expect(keyLiteral(kind, 'phone')).toBe('2');
    expect(keyLiteral(kind, 'address')).toBe('3');
    expect(keyLiteral(kind, "it's")).toBe('4');
    expect(keyLiteral(kind, '')).toBe('0'); // the error value
    expect(keyLiteral(flags, 'vip,new')).toBe('5');
    expect(keyLiteral(flags, '')).toBe('0');
    expect(() => keyLiteral(kind, 'fax')).toThrow(/not a member/);
    expect(() => keyLiteral(flags, 'vip,fax')).toThrow(/not made of members/);
    // COLUMN_TYPE doubles a member's backslash: the member a\b is the first, not "a\\b".
    expect(keyLiteral({ dataType: 'enum', columnType: "enum('a\\\\b','c')" }, 'a\\b')).toBe('1');
  });

  it('keeps integers as digits, bytes as hex literals and text quoted', () => {
    expect(keyLiteral({ dataType: 'bigint' }, '18446744073709551615')).toBe('18446744073709551615');
    expect(keyLiteral({ dataType: 'varbinary' }, '00ff')).toBe("X'00ff'");
    expect(keyLiteral({ dataType: 'varchar' }, "o'k")).toBe("'o\\'k'");
    expect(() => keyLiteral({ dataType: 'int' }, '1 OR 1=1')).toThrow(/not a number/);
    // Exact numbers stay numbers (a quoted one compares through a double, inexact past 15 digits).
    expect(keyLiteral({ dataType: 'decimal' }, '12345678901234567.89')).toBe('12345678901234567.89');
    expect(keyLiteral({ dataType: 'numeric' }, '-1.5')).toBe('-1.5');
    expect(keyLiteral({ dataType: 'money' }, '922337203685477.5807')).toBe('922337203685477.5807');
  });
});

describe('canBeShardKey', () => {
  it('takes integer and text columns (ZEROFILL, ENUM, latin1 too), not JSON, DECIMAL, FLOAT or bytes', () => {
    const ok: SourceType[] = [
      { dataType: 'bigint', unsigned: true },
      { dataType: 'int', columnType: 'int(8) unsigned zerofill' },
      { dataType: 'varchar', charset: 'latin1' },
      { dataType: 'char' },
      { dataType: 'enum', columnType: "enum('a','b')" },
    ];
    for (const type of ok) expect(canBeShardKey(type), type.dataType).toBe(true);
    for (const dataType of ['json', 'decimal', 'float', 'double', 'varbinary', 'blob', 'datetime']) expect(canBeShardKey({ dataType }), dataType).toBe(false);
  });
});
