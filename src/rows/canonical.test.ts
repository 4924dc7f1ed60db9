import { describe, expect, it } from 'vitest';
import { canonicalKind, canonicalRow, canonicalValue, doubleText, hashCanonical, mssqlCanonicalRow, mssqlCanonicalValue, mysqlCanonicalValue, rowHash } from './canonical.js';

describe('canonical row form', () => {
  it('keeps NULL, empty text, trailing spaces and case apart', () => {
    const kinds = canonicalKind('varchar(10)');
    const forms = [null, '', ' ', 'a', 'a ', 'A', '\\N'].map((v) => canonicalRow([kinds], [v]).toString('hex'));
    expect(new Set(forms).size).toBe(forms.length);
    expect(canonicalRow([kinds], [null])).toEqual(Buffer.from([0xfe]));
  });

  it('is unambiguous across column boundaries', () => {
    const kinds = [canonicalKind('varchar(10)'), canonicalKind('varchar(10)')];
    const a = canonicalRow(kinds, ['ab', 'c']);
    const b = canonicalRow(kinds, ['a', 'bc']);
    const c = canonicalRow(kinds, [null, '']);
    const d = canonicalRow(kinds, ['', null]);
    expect(new Set([a, b, c, d].map((x) => x.toString('hex'))).size).toBe(4);
  });

  it('writes bytes as upper-case hex and BIT as its number', () => {
    expect(canonicalRow(['bytes'], [Buffer.from([0xff, 0x00, 0xfe])]).toString()).toBe('FF00FE');
    expect(canonicalRow(['bit'], [Buffer.from([0x01, 0x02])]).toString()).toBe('258');
  });

  it('hashes as MySQL does: CRC32 and the first 64 bits of MD5', () => {
    // CRC32('abc') and MD5('abc') = 900150983cd24fb0..., as the servers print them.
    expect(hashCanonical('crc32', Buffer.from('abc'))).toBe(891568578n);
    expect(hashCanonical('md5', Buffer.from('abc'))).toBe(BigInt('0x900150983cd24fb0'));
    expect(rowHash('md5', ['literal'], ['abc'], [0])).toBe(BigInt('0x900150983cd24fb0'));
  });

  it('crc32 rows: (CRC32 of the row + 1) times (CRC32 of the key | 1), so equal edits of two rows do not cancel', () => {
    // (CRC32('1' 0xFF 'abc') + 1) * (CRC32('1') | 1), as MySQL computes (CRC32(CONCAT_WS(0xFF, 1, 'abc')) + 1) * (CRC32(1) | 1).
    const kinds = ['literal', 'text'] as const;
    const h = rowHash('crc32', [...kinds], ['1', 'abc'], [0]);
    expect(h).toBe((hashCanonical('crc32', Buffer.from([0x31, 0xff, 0x61, 0x62, 0x63])) + 1n) * (hashCanonical('crc32', Buffer.from('1')) | 1n));
    // The same edit (balance 10.05 → 10.06) on two rows of the same shape: plain CRC deltas are equal
    // (CRC is linear), so XOR of plain CRCs cancels; the keyed hash does not.
    const plain = (k: string, v: string) => hashCanonical('crc32', canonicalRow([...kinds], [k, v]));
    expect(plain('11', '10.05') ^ plain('11', '10.06') ^ plain('12', '10.05') ^ plain('12', '10.06')).toBe(0n);
    const keyed = (k: string, v: string) => rowHash('crc32', [...kinds], [k, v], [0]);
    expect(keyed('11', '10.05') ^ keyed('11', '10.06') ^ keyed('12', '10.05') ^ keyed('12', '10.06')).not.toBe(0n);
  });

  it('builds MySQL expressions with a NULL marker only for nullable columns and UTF-8 for other charsets', () => {
    expect(mysqlCanonicalValue('`a`', { targetType: 'int', nullable: false })).toBe('`a`');
    expect(mysqlCanonicalValue('`a`', { targetType: 'varchar(5)', nullable: true })).toBe('IFNULL(`a`, CAST(0xFE AS BINARY))');
    expect(mysqlCanonicalValue('`a`', { targetType: 'varchar(5)', nullable: false }, { dataType: 'varchar', charset: 'gbk' })).toBe(
      'COALESCE(IF(CAST(CONVERT(CONVERT(`a` USING utf8mb4) USING gbk) AS BINARY) = CAST(`a` AS BINARY), CONVERT(`a` USING utf8mb4), CONCAT(CAST(0xFD AS BINARY), HEX(`a`))), CONCAT(CAST(0xFC AS BINARY), RAND()))',
    );
    // HEX() past max_allowed_packet is NULL: a random value then, never the NULL marker (test/verify-large-values.test.ts).
    expect(mysqlCanonicalValue('`a`', { targetType: 'varbinary(5)', nullable: false })).toBe('COALESCE(HEX(`a`), CONCAT(CAST(0xFC AS BINARY), RAND()))');
    expect(mysqlCanonicalValue('`a`', { targetType: 'longblob', nullable: true })).toBe(
      'IF(`a` IS NULL, CAST(0xFE AS BINARY), COALESCE(HEX(`a`), CONCAT(CAST(0xFC AS BINARY), RAND())))',
    );
  });

  it('emits T-SQL with explicit CONVERT styles, UTF-8 text and the same NULL marker (cannot run here: no SQL Server)', () => {
    expect(mssqlCanonicalValue('[id]', { dataType: 'bigint' }, false)).toBe('CAST(CONVERT(varchar(20), [id]) AS varbinary(max))');
    expect(mssqlCanonicalValue('[d]', { dataType: 'datetime2', scale: 7 }, true)).toBe('ISNULL(CAST(LEFT(CONVERT(varchar(27), [d], 121), 26) AS varbinary(max)), 0xFE)');
    expect(mssqlCanonicalValue('[d]', { dataType: 'datetime2', scale: 0 }, false)).toBe('CAST(CONVERT(varchar(19), [d], 120) AS varbinary(max))');
    expect(mssqlCanonicalValue('[n]', { dataType: 'nvarchar', length: 50 }, false)).toBe(
      'CAST(CAST(CAST([n] AS nvarchar(max)) COLLATE Latin1_General_100_BIN2_UTF8 AS varchar(max)) AS varbinary(max))',
    );
    expect(mssqlCanonicalValue('[c]', { dataType: 'nchar', length: 5 }, false)).toContain('RTRIM([c])');
    expect(mssqlCanonicalValue('[c]', { dataType: 'char', length: 300 }, false)).not.toContain('RTRIM');
    // TIME(6) text hh:mm:ss.ffffff: style 121, cut after the fraction MySQL keeps (none for time(0)).
    expect(mssqlCanonicalValue('[t]', { dataType: 'time', scale: 7 }, false)).toBe('CAST(LEFT(CONVERT(varchar(16), [t], 121), 15) AS varbinary(max))');
    expect(mssqlCanonicalValue('[t]', { dataType: 'time', scale: 0 }, false)).toBe('CAST(LEFT(CONVERT(varchar(16), [t], 121), 8) AS varbinary(max))');
    expect(mssqlCanonicalValue('[p]', { dataType: 'decimal', precision: 18, scale: 2 }, false)).toBe('CAST(CONVERT(varchar(50), [p]) AS varbinary(max))');
    // decimal(p,p): SQL Server prints .50000 and -.50000; the copy writes (and MySQL prints) 0.50000 and -0.50000.
    expect(mssqlCanonicalValue('[r]', { dataType: 'decimal', precision: 5, scale: 5 }, true)).toBe(
      "ISNULL(CAST(CASE WHEN [r] < 0 THEN '-0' + SUBSTRING(CONVERT(varchar(50), [r]), 2, 50) ELSE '0' + CONVERT(varchar(50), [r]) END AS varbinary(max)), 0xFE)",
    );
    expect(mssqlCanonicalValue('[m]', { dataType: 'money' }, false)).toBe('CAST(CAST(CAST([m] AS decimal(19,4)) AS varchar(30)) AS varbinary(max))');
    expect(mssqlCanonicalValue('[g]', { dataType: 'uniqueidentifier' }, false)).toBe('CAST(UPPER(CONVERT(char(36), [g])) AS varbinary(max))');
    expect(mssqlCanonicalValue('[b]', { dataType: 'varbinary', length: 8 }, false)).toBe('CAST(CONVERT(varchar(max), CAST([b] AS varbinary(max)), 2) AS varbinary(max))');
    expect(mssqlCanonicalValue('[f]', { dataType: 'float' }, false)).toBeUndefined();
    expect(mssqlCanonicalRow(['A', 'B', 'C'])).toBe('A + 0xFF + B + 0xFF + C');
  });
});

describe('doubleText: a double as MariaDB prints `column * 1e0`', () => {
  // Pairs printed by MariaDB 10.11 (test/verify-canonical.test.ts checks thousands more against a live server).
  const printed: [number, string][] = [
    [0, '0'],
    [-0, '0'],
    [0.1, '0.1'],
    [Math.fround(0.1), '0.10000000149011612'],
    [-1.5, '-1.5'],
    [12345678, '12345678'],
    [999999986991104, '999999986991104'],
    [1e15, '1e15'],
    [9007199254740992, '9.007199254740992e15'],
    [4097885430382135.5, '4097885430382135.5'],
    [123456789012345680000, '1.2345678901234568e20'],
    [0.000009999999747378752, '0.000009999999747378752'],
    [1.3712436103842895e-12, '0.0000000000013712436103842895'],
    [-1.7578563486056643e-16, '-1.7578563486056643e-16'],
    [0.30000000000000004, '0.30000000000000004'],
    [1.7976931348623157e308, '1.7976931348623157e308'],
    [5e-324, '5e-324'],
  ];
  it.each(printed)('%s prints as %s', (value, text) => expect(doubleText(value)).toBe(text));

  it('FLOAT and DOUBLE columns are canonical as those doubles, whatever text they were read as', () => {
    expect(canonicalKind('float')).toBe('float');
    expect(canonicalKind('FLOAT(53)')).toBe('double');
    expect(canonicalKind('double(10,2)')).toBe('double');
    expect(canonicalKind('real')).toBe('double');
    expect(canonicalValue('float', '0.1').toString()).toBe('0.10000000149011612');
    expect(canonicalValue('float', '0.10000000149011612').toString()).toBe('0.10000000149011612');
    expect(canonicalValue('double', '1e+21').toString()).toBe('1e21');
    expect(canonicalValue('double', '-0').toString()).toBe('0');
  });
});
