import iconv from 'iconv-lite';
import { Collation } from 'tedious/lib/collation.js';
import { bufferToUpperCaseGuid } from 'tedious/lib/guid-parser.js';
import { describe, expect, it } from 'vitest';
import { RefusedError } from '../../../src/errors.js';
import { parseCollation, targetCollation } from '../../../src/rows/mssql/collation.js';
import { createMssqlTypeMap, mssqlTypeMap } from '../../../src/rows/mssql/typemap.js';
import { Unrepresentable, type SourceType } from '../../../src/rows/types.js';

/**
 * Type fidelity without a server: for each SQL Server type, the value tedious really hands over
 * for the SELECT expression the map emits (mssql-brief.md §4) → RowValue, the target DDL type, and
 * the edges where the target cannot hold the value (Unrepresentable, never bent).
 */
const map = mssqlTypeMap;
const conv = (type: SourceType) => map.conversion(type, 'dbo.T column c');
const col = '[c]';

function unrepresentable(v: unknown): Unrepresentable {
  expect(v).toBeInstanceOf(Unrepresentable);
  return v as Unrepresentable;
}

describe('integers', () => {
  it('bit: tedious boolean → 1/0 in TINYINT(1)', () => {
    const c = conv({ dataType: 'bit' });
    expect(c.targetType).toBe('TINYINT(1)');
    expect(c.selectExpression(col)).toBe('[c]');
    expect([c.convert(true), c.convert(false), c.convert(null)]).toEqual(['1', '0', null]);
  });

  it('tinyint 0..255 → TINYINT UNSIGNED (a signed TINYINT would overflow at 128)', () => {
    const c = conv({ dataType: 'tinyint' });
    expect(c.targetType).toBe('TINYINT UNSIGNED');
    expect(c.convert(255)).toBe('255');
    expect(c.convert(0)).toBe('0');
    expect(() => c.convert(256)).toThrow(/outside the tinyint range/);
  });

  it('smallint and int extremes', () => {
    expect(conv({ dataType: 'smallint' }).targetType).toBe('SMALLINT');
    expect(conv({ dataType: 'smallint' }).convert(-32768)).toBe('-32768');
    expect(conv({ dataType: 'int' }).targetType).toBe('INT');
    expect(conv({ dataType: 'int' }).convert(2147483647)).toBe('2147483647');
    expect(conv({ dataType: 'int' }).convert(-2147483648)).toBe('-2147483648');
  });

  it('bigint: tedious gives a string; 2^53+1 and both extremes survive, a lossy JS number is refused', () => {
    const c = conv({ dataType: 'bigint' });
    expect(c.targetType).toBe('BIGINT');
    expect(c.convert('9007199254740993')).toBe('9007199254740993');
    expect(c.convert('9223372036854775807')).toBe('9223372036854775807');
    expect(c.convert('-9223372036854775808')).toBe('-9223372036854775808');
    expect(() => c.convert(9007199254740993)).toThrow(/expected an integer/);
    expect(() => c.convert('9223372036854775808')).toThrow(/range/);
  });
});

describe('decimals and money are read as text, never through a JS number', () => {
  it('decimal(38,0) and decimal(38,20) extremes keep every digit', () => {
    const c = conv({ dataType: 'decimal', precision: 38, scale: 0 });
    expect(c.targetType).toBe('DECIMAL(38,0)');
    expect(c.selectExpression(col)).toBe('CAST([c] AS varchar(50))');
    const max = '9'.repeat(38);
    expect(c.convert(max)).toBe(max);
    expect(c.convert('-' + max)).toBe('-' + max);
    const d = conv({ dataType: 'numeric', precision: 38, scale: 20 });
    expect(d.targetType).toBe('DECIMAL(38,20)');
    // tedious' own readNumeric would give 499.99999999999994 here (issue #1675)
    expect(d.convert('500.00000000000000000000')).toBe('500.00000000000000000000');
    expect(d.convert('-999999999999999999.99999999999999999999')).toBe('-999999999999999999.99999999999999999999');
    expect(d.convert('0.00000000000000000001')).toBe('0.00000000000000000001');
  });

  it('normalises a missing leading zero and refuses numbers and overflow', () => {
    const c = conv({ dataType: 'decimal', precision: 5, scale: 2 });
    expect(c.convert('.50')).toBe('0.50');
    expect(c.convert('-.5')).toBe('-0.50');
    expect(c.convert('-0.00')).toBe('0.00');
    expect(() => c.convert(0.5)).toThrow(/decimal text/);
    expect(() => c.convert('1234.00')).toThrow(/does not fit DECIMAL\(5,2\)/);
    expect(() => c.convert('1.234')).toThrow(/does not fit/);
  });

  it('refuses a scale above 30 (MySQL DECIMAL limit), naming the column', () => {
    expect(() => map.conversion({ dataType: 'decimal', precision: 38, scale: 31 }, 'table member (dbo.Member), column ratio')).toThrow(RefusedError);
    expect(() => map.conversion({ dataType: 'decimal', precision: 38, scale: 31 }, 'table member (dbo.Member), column ratio')).toThrow(
      /table member \(dbo\.Member\), column ratio: SQL Server type decimal \(38,31\)/,
    );
    expect(conv({ dataType: 'decimal', precision: 38, scale: 30 }).targetType).toBe('DECIMAL(38,30)');
  });

  it('money/smallmoney through decimal(19,4)/(10,4): CAST(money AS varchar) alone would print 2 decimals', () => {
    const m = conv({ dataType: 'money' });
    expect(m.targetType).toBe('DECIMAL(19,4)');
    expect(m.selectExpression(col)).toBe('CAST(CAST([c] AS decimal(19,4)) AS varchar(30))');
    expect(m.convert('922337203685477.5807')).toBe('922337203685477.5807');
    expect(m.convert('-922337203685477.5808')).toBe('-922337203685477.5808');
    const s = conv({ dataType: 'smallmoney' });
    expect(s.targetType).toBe('DECIMAL(10,4)');
    expect(s.selectExpression(col)).toBe('CAST(CAST([c] AS decimal(10,4)) AS varchar(30))');
    expect(s.convert('214748.3647')).toBe('214748.3647');
    expect(s.convert('-214748.3648')).toBe('-214748.3648');
  });
});

describe('floating point', () => {
  it('real → FLOAT: the text parses back to the same float32', () => {
    const c = conv({ dataType: 'real' });
    expect(c.targetType).toBe('FLOAT');
    const tediousValue = Math.fround(0.1); // readFloatLE widened to a double
    const text = c.convert(tediousValue) as string;
    expect(Math.fround(Number(text))).toBe(tediousValue);
  });

  it('float → DOUBLE: extremes and -0 round-trip through their text', () => {
    const c = conv({ dataType: 'float' });
    expect(c.targetType).toBe('DOUBLE');
    for (const v of [1.7976931348623157e308, 5e-324, -2.2250738585072014e-308, 0.1 + 0.2]) expect(Number(c.convert(v))).toBe(v);
    expect(c.convert(-0)).toBe('-0');
    expect(() => c.convert(Number.NaN)).toThrow(/finite/);
  });
});

describe('text', () => {
  const nvarchar = conv({ dataType: 'nvarchar', length: 100, collation: 'Chinese_PRC_CI_AS' });

  it('nvarchar keeps surrogate pairs and flags lone surrogates (utf8mb4 would store U+FFFD)', () => {
    expect(nvarchar.targetType).toBe('VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_as_ci');
    expect(nvarchar.selectExpression(col)).toBe('[c]');
    expect(nvarchar.convert('张伟 𠀀 😀')).toBe('张伟 𠀀 😀');
    const lone = unrepresentable(nvarchar.convert('ab\uD83Dcd'));
    expect(lone.reason).toMatch(/lone UTF-16 surrogate/);
    expect(lone.value).toBe('ab\\uD83Dcd');
    expect(unrepresentable(nvarchar.convert('\uDE00x')).value).toBe('\\uDE00x');
    // a genuine U+FFFD in Unicode data is a character like any other
    expect(nvarchar.convert('\uFFFD')).toBe('\uFFFD');
  });

  it('empty string and NULL stay apart', () => {
    expect(nvarchar.convert('')).toBe('');
    expect(nvarchar.convert(null)).toBeNull();
    expect(nvarchar.convert(undefined)).toBeNull();
  });

  it('varchar in Chinese_PRC_CI_AS: read as bytes and decoded as Windows decodes CP936; GBK text survives, bad bytes are flagged', () => {
    const c = conv({ dataType: 'varchar', length: 40, collation: 'Chinese_PRC_CI_AS' });
    expect(parseCollation('Chinese_PRC_CI_AS').codepage).toBe('CP936');
    expect(new Collation(0x0804, 0, 0, 0).codepage).toBe('CP936'); // the code page tedious would decode with
    expect(c.targetType).toBe('VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_as_ci');
    expect(c.selectExpression(col)).toBe('CAST([c] AS varbinary(40))');
    // Keys as SQL Server's own Unicode text, which CAST(@p COLLATE … AS varchar(40)) turns back into the same bytes.
    expect(c.key!.keyText(col)).toBe('CAST([c] AS nvarchar(40))');
    expect(c.key!.castParam('@l0')).toBe('CAST(@l0 COLLATE Chinese_PRC_CI_AS AS varchar(40))');
    for (const s of ['张伟', '喆', '镕', '€', 'Ａ全角', 'abc']) expect(c.convert(iconv.encode(s, 'CP936'))).toBe(s);
    // Windows maps what iconv-lite (tedious' decoder) cannot: the user-defined area, where rare name
    // characters are kept (0xAAA1 → U+E000), and characters such as 0xA8BC (U+E7C7).
    expect(iconv.decode(Buffer.from('d5c5aaa1', 'hex'), 'CP936')).toContain('\uFFFD');
    expect(c.convert(Buffer.from('d5c5aaa1', 'hex'))).toBe('张\uE000');
    expect(c.convert(Buffer.from('a8bc', 'hex'))).toBe('\uE7C7');
    expect(unrepresentable(c.convert(Buffer.from([0x41, 0xd5]))).reason).toMatch(/not valid in code page CP936/);
    // Text decoded elsewhere (a Debezium event) is taken as it is.
    expect(c.convert('张伟')).toBe('张伟');
  });

  it('varchar in Latin1_General: CP1252 as Windows reads it (0x81, 0x8D, 0x8F, 0x90, 0x9D are U+0081..); char(n) loses its pad', () => {
    const c = conv({ dataType: 'varchar', length: 10, collation: 'Latin1_General_CI_AS' });
    expect(c.convert(Buffer.from([0x41, 0x81, 0x8d, 0x8f, 0x90, 0x9d, 0x80, 0xe9]))).toBe('A\u0081\u008D\u008F\u0090\u009D€é');
    const fixed = conv({ dataType: 'char', length: 4, collation: 'Latin1_General_CI_AS' });
    expect(fixed.selectExpression(col)).toBe('CAST([c] AS varbinary(4))');
    expect(fixed.convert(Buffer.from('ab  '))).toBe('ab');
    // text and varchar(max): through varchar(max), the one conversion to varbinary every text type has.
    expect(conv({ dataType: 'text', length: -1, collation: 'Latin1_General_CI_AS' }).selectExpression(col)).toBe('CAST(CAST([c] AS varchar(max)) AS varbinary(max))');
    // A DOS code page keeps iconv-lite (Node has no WHATWG decoder for it).
    expect(conv({ dataType: 'varchar', length: 10, collation: 'SQL_Latin1_General_CP437_CI_AS' }).convert(Buffer.from([0x80, 0x41]))).toBe('ÇA');
  });

  it('a collation whose code page is not known here is converted to Unicode by SQL Server itself', () => {
    const c = conv({ dataType: 'varchar', length: 30, collation: 'Klingon_100_CI_AS' });
    expect(c.selectExpression(col)).toBe('CAST([c] AS nvarchar(30))');
    expect(c.key!.keyText(col)).toBe('CAST([c] AS nvarchar(30))');
    expect(conv({ dataType: 'varchar', length: -1, collation: 'Klingon_100_CI_AS' }).selectExpression(col)).toBe('CAST([c] AS nvarchar(max))');
    expect(conv({ dataType: 'varchar', length: 8000, collation: 'Klingon_100_CI_AS' }).selectExpression(col)).toBe('CAST([c] AS nvarchar(max))');
  });

  it('UTF-8 collations: read as bytes, which must be UTF-8 (SQL Server stores others and would give U+FFFD); a real U+FFFD is kept', () => {
    const c = conv({ dataType: 'varchar', length: 10, collation: 'Latin1_General_100_CI_AS_SC_UTF8' });
    expect(parseCollation('Latin1_General_100_CI_AS_SC_UTF8')).toMatchObject({ codepage: 'utf-8', utf8: true });
    expect(c.selectExpression(col)).toBe('CAST([c] AS varbinary(10))');
    expect(c.convert(Buffer.from('北京 é', 'utf8'))).toBe('北京 é');
    expect(c.convert(Buffer.from([0xef, 0xbf, 0xbd]))).toBe('\uFFFD');
    const bad = c.convert(Buffer.from([0x61, 0xff, 0x62]));
    expect(bad).toBeInstanceOf(Unrepresentable);
    expect((bad as Unrepresentable).reason).toMatch(/not valid UTF-8/);
    // Text decoded elsewhere (a Debezium event) is taken as it is.
    expect(c.convert('\uFFFD')).toBe('\uFFFD');
  });

  it('maps sensitivity to a target collation that merges nothing the source keeps apart', () => {
    const cases: [string, string, string, string | undefined][] = [
      ['Chinese_PRC_CI_AS', 'utf8mb4_0900_as_ci', 'utf8mb4_uca1400_as_ci', 'CP936'],
      ['SQL_Latin1_General_CP1_CI_AS', 'utf8mb4_0900_as_ci', 'utf8mb4_uca1400_as_ci', 'CP1252'],
      ['Latin1_General_CI_AI', 'utf8mb4_0900_ai_ci', 'utf8mb4_uca1400_ai_ci', 'CP1252'],
      ['Latin1_General_CS_AS', 'utf8mb4_bin', 'utf8mb4_bin', 'CP1252'],
      ['Chinese_PRC_BIN2', 'utf8mb4_bin', 'utf8mb4_bin', 'CP936'],
      ['SQL_Latin1_General_CP437_BIN', 'utf8mb4_bin', 'utf8mb4_bin', 'CP437'],
      ['Chinese_Taiwan_Stroke_CI_AS', 'utf8mb4_0900_as_ci', 'utf8mb4_uca1400_as_ci', 'CP950'],
      ['Japanese_CI_AS', 'utf8mb4_0900_as_ci', 'utf8mb4_uca1400_as_ci', 'CP932'],
      ['Cyrillic_General_CI_AS', 'utf8mb4_0900_as_ci', 'utf8mb4_uca1400_as_ci', 'CP1251'],
      // Turkish keeps 'kim' and 'KIM' apart (i pairs with İ); the root collation would merge them.
      ['Turkish_CI_AS', 'utf8mb4_bin', 'utf8mb4_bin', 'CP1254'],
      // Swedish å is a letter of its own, not an accented a: accent-insensitive there keeps it apart.
      ['Finnish_Swedish_CI_AI', 'utf8mb4_0900_as_ci', 'utf8mb4_uca1400_as_ci', 'CP1252'],
      // Kana-, width- or variation-selector-sensitive: はは/ハハ and ＡＢＣ/ABC stay apart, which _as_ci would merge.
      ['Japanese_CI_AS_KS_WS', 'utf8mb4_bin', 'utf8mb4_bin', 'CP932'],
      ['Japanese_XJIS_140_CI_AS_VSS', 'utf8mb4_bin', 'utf8mb4_bin', 'CP932'],
      ['Latin1_General_CI_AS_WS', 'utf8mb4_bin', 'utf8mb4_bin', 'CP1252'],
    ];
    for (const [name, mysql, mariadb, codepage] of cases) {
      const info = parseCollation(name);
      expect([name, targetCollation(info, 'mysql'), targetCollation(info, 'mariadb'), info.codepage]).toEqual([name, mysql, mariadb, codepage]);
    }
    const maria = createMssqlTypeMap({ flavor: 'mariadb' });
    expect(maria.conversion({ dataType: 'varchar', length: 10, collation: 'Chinese_PRC_CI_AS' }, 'c').targetType).toBe(
      'VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_uca1400_as_ci',
    );
  });

  it('char(n) padding: a CHAR target drops trailing spaces as MySQL does; a longer char kept as VARCHAR keeps them', () => {
    const fixed = conv({ dataType: 'nchar', length: 5, collation: 'Latin1_General_CI_AS' });
    expect(['ab   ', '     ', ' a b ', '长  '].map((v) => fixed.convert(v))).toEqual(['ab', '', ' a b', '长']);
    expect(conv({ dataType: 'char', length: 5, collation: 'Chinese_PRC_CI_AS' }).convert('张伟 ')).toBe('张伟');
    expect(conv({ dataType: 'char', length: 300, collation: 'Latin1_General_CI_AS' }).convert('ab   ')).toBe('ab   ');
    expect(conv({ dataType: 'nvarchar', length: 5, collation: 'Latin1_General_CI_AS' }).convert('ab   ')).toBe('ab   ');
  });

  it('sizes: CHAR up to 255, VARCHAR up to 1024, then TEXT; MAX, text, ntext and xml are LONGTEXT', () => {
    const t = (type: SourceType) => conv(type).targetType.split(' ')[0];
    expect(t({ dataType: 'nchar', length: 10, collation: 'Latin1_General_CI_AS' })).toBe('CHAR(10)');
    expect(t({ dataType: 'char', length: 300, collation: 'Latin1_General_CI_AS' })).toBe('VARCHAR(300)');
    expect(t({ dataType: 'nvarchar', length: 1024, collation: 'Latin1_General_CI_AS' })).toBe('VARCHAR(1024)');
    expect(t({ dataType: 'nvarchar', length: 4000, collation: 'Latin1_General_CI_AS' })).toBe('TEXT');
    expect(t({ dataType: 'varchar', length: -1, collation: 'Latin1_General_CI_AS' })).toBe('LONGTEXT');
    expect(t({ dataType: 'nvarchar', length: -1, collation: 'Latin1_General_CI_AS' })).toBe('LONGTEXT');
    expect(t({ dataType: 'text', length: -1, collation: 'Chinese_PRC_CI_AS' })).toBe('LONGTEXT');
    expect(t({ dataType: 'ntext', length: -1, collation: 'Chinese_PRC_CI_AS' })).toBe('LONGTEXT');
    const x = conv({ dataType: 'xml', length: -1 });
    expect(x.targetType).toBe('LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin');
    expect(x.selectExpression(col)).toBe('CAST([c] AS nvarchar(max))');
    const big = 'x'.repeat(1_000_000) + '😀';
    expect(conv({ dataType: 'nvarchar', length: -1, collation: 'Latin1_General_CI_AS' }).convert(big)).toBe(big);
  });
});

describe('bytes', () => {
  it('binary/varbinary/image/rowversion: Buffers pass unchanged, empty stays empty', () => {
    expect(conv({ dataType: 'binary', length: 16 }).targetType).toBe('BINARY(16)');
    expect(conv({ dataType: 'varbinary', length: 100 }).targetType).toBe('VARBINARY(100)');
    expect(conv({ dataType: 'varbinary', length: 8000 }).targetType).toBe('BLOB');
    expect(conv({ dataType: 'varbinary', length: -1 }).targetType).toBe('LONGBLOB');
    expect(conv({ dataType: 'image', length: -1 }).targetType).toBe('LONGBLOB');
    expect(conv({ dataType: 'timestamp', length: 8 }).targetType).toBe('BINARY(8)');
    const c = conv({ dataType: 'varbinary', length: 100 });
    const b = Buffer.from([0, 1, 0xff, 0]);
    expect(c.convert(b)).toBe(b);
    expect((c.convert(Buffer.alloc(0)) as Buffer).length).toBe(0);
    expect(c.convert(null)).toBeNull();
    expect(() => c.convert('00ff')).toThrow(/Buffer/);
  });
});

describe('uniqueidentifier', () => {
  const c = conv({ dataType: 'uniqueidentifier' });

  it('is kept as SQL Server’s own upper-case text in CHAR(36), so the binary byte-order trap never applies', () => {
    expect(c.targetType).toBe('CHAR(36) CHARACTER SET ascii COLLATE ascii_bin');
    expect(c.selectExpression(col)).toBe('CONVERT(char(36), [c])');
    expect(c.convert('6F9619FF-8B86-D011-B42D-00C04FC964FF')).toBe('6F9619FF-8B86-D011-B42D-00C04FC964FF');
    expect(c.convert('6f9619ff-8b86-d011-b42d-00c04fc964ff')).toBe('6F9619FF-8B86-D011-B42D-00C04FC964FF');
    expect(() => c.convert('6F9619FF8B86D011B42D00C04FC964FF')).toThrow(/not a GUID/);
  });

  it('the trap itself: SQL Server stores the first three groups byte-swapped, unlike UUID_TO_BIN', () => {
    const sqlServerBytes = Buffer.from('FF19966F868B11D0B42D00C04FC964FF', 'hex'); // CAST(g AS binary(16))
    expect(bufferToUpperCaseGuid(sqlServerBytes)).toBe('6F9619FF-8B86-D011-B42D-00C04FC964FF');
    const uuidToBin = Buffer.from('6F9619FF8B86D011B42D00C04FC964FF', 'hex');
    expect(uuidToBin.equals(sqlServerBytes)).toBe(false);
  });
});

describe('dates and times', () => {
  it('date: style 23 text; year 0001 is Unrepresentable (MySQL DATE starts at 1000)', () => {
    const c = conv({ dataType: 'date' });
    expect(c.targetType).toBe('DATE');
    expect(c.selectExpression(col)).toBe('CONVERT(varchar(10), [c], 23)');
    expect(c.convert('2024-02-29')).toBe('2024-02-29');
    expect(c.convert('9999-12-31')).toBe('9999-12-31');
    expect(unrepresentable(c.convert('0001-01-01')).value).toBe('0001-01-01');
  });

  it('datetime: SQL Server’s own millisecond text in DATETIME(3)', () => {
    const c = conv({ dataType: 'datetime' });
    expect(c.targetType).toBe('DATETIME(3)');
    expect(c.selectExpression(col)).toBe('CONVERT(varchar(23), [c], 121)');
    expect(c.convert('1753-01-01 00:00:00.000')).toBe('1753-01-01 00:00:00.000');
    expect(c.convert('2024-03-01 10:00:00.003')).toBe('2024-03-01 10:00:00.003');
  });

  it('smalldatetime → DATETIME', () => {
    const c = conv({ dataType: 'smalldatetime' });
    expect(c.targetType).toBe('DATETIME');
    expect(c.selectExpression(col)).toBe('CONVERT(varchar(19), [c], 120)');
    expect(c.convert('2079-06-06 23:59:00')).toBe('2079-06-06 23:59:00');
  });

  it('datetime2(7) → DATETIME(6): a seventh digit of 0 is dropped, any other is Unrepresentable, never rounded', () => {
    const c = conv({ dataType: 'datetime2', scale: 7 });
    expect(c.targetType).toBe('DATETIME(6)');
    expect(c.selectExpression(col)).toBe('CONVERT(varchar(27), [c], 121)');
    expect(c.convert('2024-03-02 09:00:00.1234560')).toBe('2024-03-02 09:00:00.123456');
    const ns = unrepresentable(c.convert('2024-03-02 09:00:00.1234567'));
    expect(ns.reason).toMatch(/DATETIME\(6\) would round/);
    expect(ns.value).toBe('2024-03-02 09:00:00.1234567');
    // rounding here would carry into the next year; it is flagged instead
    expect(c.convert('9999-12-31 23:59:59.9999999')).toBeInstanceOf(Unrepresentable);
    expect(c.convert('2024-12-31 23:59:59.9999990')).toBe('2024-12-31 23:59:59.999999');
    expect(unrepresentable(c.convert('0001-01-01 00:00:00.0000000')).reason).toMatch(/1000-01-01/);
  });

  it('datetime2 with a smaller scale maps to that precision', () => {
    expect(conv({ dataType: 'datetime2', scale: 0 }).targetType).toBe('DATETIME');
    expect(conv({ dataType: 'datetime2', scale: 0 }).convert('2024-03-02 09:00:00')).toBe('2024-03-02 09:00:00');
    expect(conv({ dataType: 'datetime2', scale: 3 }).targetType).toBe('DATETIME(3)');
    expect(conv({ dataType: 'datetime2', scale: 3 }).convert('2024-03-02 09:00:00.120')).toBe('2024-03-02 09:00:00.120');
    expect(conv({ dataType: 'datetime2', scale: 6 }).convert('2024-03-02 09:00:00.000001')).toBe('2024-03-02 09:00:00.000001');
  });

  it('time(7) → TIME(6) with the same rule', () => {
    const c = conv({ dataType: 'time', scale: 7 });
    expect(c.targetType).toBe('TIME(6)');
    expect(c.selectExpression(col)).toBe('CAST([c] AS varchar(16))');
    expect(c.convert('12:34:56.1234560')).toBe('12:34:56.123456');
    expect(c.convert('23:59:59.9999999')).toBeInstanceOf(Unrepresentable);
    expect(conv({ dataType: 'time', scale: 0 }).convert('12:34:56')).toBe('12:34:56');
  });

  it('datetimeoffset: wall clock + offset minutes → the whole value as text, 100 ns, offset and year 0001 kept', () => {
    const c = conv({ dataType: 'datetimeoffset', scale: 7 });
    expect(c.targetType).toBe('VARCHAR(34) CHARACTER SET ascii COLLATE ascii_bin');
    expect(c.selectExpression(col)).toBe(
      "CONVERT(varchar(27), CAST([c] AS datetime2(7)), 121) + ' ' + CAST(DATEPART(TZOFFSET, [c]) AS varchar(6))",
    );
    expect(c.convert('2024-03-02 09:00:00.1234567 480')).toBe('2024-03-02 09:00:00.1234567 +08:00');
    expect(c.convert('2024-03-02 09:00:00.0000000 -330')).toBe('2024-03-02 09:00:00.0000000 -05:30');
    expect(c.convert('2024-03-02 09:00:00.0000000 0')).toBe('2024-03-02 09:00:00.0000000 +00:00');
    expect(c.convert('0001-01-01 00:00:00.0000000 -840')).toBe('0001-01-01 00:00:00.0000000 -14:00');
    expect(c.convert('9999-12-31 23:59:59.9999999 840')).toBe('9999-12-31 23:59:59.9999999 +14:00');
    expect(conv({ dataType: 'datetimeoffset', scale: 0 }).convert('2024-03-02 09:00:00 60')).toBe('2024-03-02 09:00:00 +01:00');
    expect(c.convert(null)).toBeNull();
    expect(() => c.convert(new Date())).toThrow(/text/);
  });

  it('refuses a JS Date: the SELECT expression must have produced text', () => {
    expect(() => conv({ dataType: 'datetime2', scale: 7 }).convert(new Date())).toThrow(/as text/);
  });
});

describe('other types', () => {
  it('hierarchyid through ToString()', () => {
    const c = conv({ dataType: 'hierarchyid' });
    expect(c.selectExpression(col)).toBe('[c].ToString()');
    expect(c.convert('/1/2.5/')).toBe('/1/2.5/');
  });

  it('refuses sql_variant, geography, geometry and unknown types, naming the column', () => {
    for (const t of ['sql_variant', 'geography', 'geometry', 'cursor']) {
      expect(() => map.conversion({ dataType: t }, 'table member (dbo.Member), column x')).toThrow(
        new RegExp(`table member \\(dbo\\.Member\\), column x: SQL Server type ${t} is not supported`),
      );
    }
  });
});
