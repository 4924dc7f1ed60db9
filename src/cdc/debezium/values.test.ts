import { describe, expect, it } from 'vitest';
import { memberLabels } from '../../rows/mysql.js';
import { Unrepresentable, type ColumnSpec } from '../../rows/types.js';
import { mssqlTypeMap } from '../../rows/mssql/typemap.js';
import { BadValue, daysFromCivil, decodeValue, encodingOfSourceType, encodingProblem, withSqlServerConversion } from './values.js';

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

describe('connector settings that lose what the copy keeps are refused, value by value', () => {
  const typed = (dataType: string, targetType: string, extra: object = {}): ColumnSpec => ({ source: 'c', target: 'c', sourceType: { dataType, ...extra }, targetType, nullable: true });
  const datetime2_7 = typed('datetime2', 'datetime(6)', { scale: 7 });
  const mysqlDatetime6 = typed('datetime', 'datetime(6)', { precision: 6 });

  it('date-times in fewer fraction digits than the column has (time.precision.mode=connect)', () => {
    expect(encodingProblem({ type: 'int64', name: 'io.debezium.time.Timestamp' }, datetime2_7)).toMatch(/datetime2\(7\) arrives as io\.debezium\.time\.Timestamp, which keeps 3 fraction digits: set the connector's time\.precision\.mode to adaptive/);
    expect(encodingProblem({ type: 'int64', name: 'org.apache.kafka.connect.data.Timestamp' }, mysqlDatetime6)).toMatch(/keeps 3 fraction digits/);
    expect(encodingProblem({ type: 'int64', name: 'io.debezium.time.NanoTimestamp' }, datetime2_7)).toBeUndefined();
    expect(encodingProblem({ type: 'int64', name: 'io.debezium.time.MicroTimestamp' }, mysqlDatetime6)).toBeUndefined();
    expect(encodingProblem({ type: 'int64', name: 'io.debezium.time.Timestamp' }, typed('datetime', 'datetime(3)', { precision: 3 }))).toBeUndefined();
    expect(encodingProblem({ type: 'int64', name: 'io.debezium.time.Timestamp' }, typed('datetime', 'datetime(3)'))).toBeUndefined(); // SQL Server datetime
    // The value is refused with the reason (the event is dead-lettered), never written with digits missing.
    expect(() => decodeValue(1709370000123, { type: 'int64', name: 'io.debezium.time.Timestamp', problem: 'lost digits' }, datetime2_7)).toThrow(BadValue);
    expect(decodeValue(null, { type: 'int64', name: 'io.debezium.time.Timestamp', problem: 'lost digits' }, datetime2_7)).toBeNull();
  });

  it("Kafka Connect's own date, time and timestamp (time.precision.mode=connect) are read as the instants they are, not as plain integers", () => {
    const time3 = typed('time', 'time(3)', { scale: 3 });
    expect(decodeValue(1000, { type: 'int32', name: 'org.apache.kafka.connect.data.Time' }, time3)).toBe('00:00:01.000');
    expect(decodeValue(30_000, { type: 'int32', name: 'org.apache.kafka.connect.data.Time' }, time3)).toBe('00:00:30.000');
    expect(decodeValue(19_784, { type: 'int32', name: 'org.apache.kafka.connect.data.Date' }, typed('date', 'date'))).toBe('2024-03-02');
    expect(decodeValue(1_709_370_000_123, { type: 'int64', name: 'org.apache.kafka.connect.data.Timestamp' }, typed('datetime2', 'datetime(3)', { scale: 3 }))).toBe('2024-03-02 09:00:00.123');
  });

  it('decimals as floating-point numbers (decimal.handling.mode=double) and bytes as text (binary.handling.mode=base64/hex)', () => {
    expect(encodingProblem({ type: 'float64' }, typed('decimal', 'decimal(20,2)', { precision: 20, scale: 2 }))).toMatch(/decimal\.handling\.mode to precise/);
    expect(encodingProblem({ type: 'float64' }, typed('money', 'decimal(19,4)'))).toMatch(/decimal\.handling\.mode/);
    expect(encodingProblem({ type: 'float64' }, typed('float', 'double'))).toBeUndefined();
    expect(encodingProblem({ type: 'string' }, typed('varbinary', 'varbinary(16)'))).toMatch(/binary\.handling\.mode to bytes/);
    expect(encodingProblem({ type: 'bytes' }, typed('varbinary', 'varbinary(16)'))).toBeUndefined();
    expect(encodingProblem({ type: 'string' }, typed('timestamp', 'timestamp(6)'))).toBeUndefined(); // MySQL's TIMESTAMP, not rowversion
  });

  it("SQL Server's timestamp (rowversion, BINARY(8)) as text (binary.handling.mode=base64/hex) is refused like every byte type", () => {
    // Taken as text, its base64 'AAAAAAAAB9E=' went into BINARY(8): too long, or cut to 'AAAAAAAA'.
    const rv = typed('timestamp', mssqlTypeMap.conversion({ dataType: 'timestamp' }, 'rv').targetType);
    expect(encodingProblem({ type: 'string' }, rv)).toMatch(/binary\.handling\.mode to bytes/);
    expect(encodingProblem({ type: 'bytes' }, rv)).toBeUndefined();
  });

  it('decimals as text (decimal.handling.mode=string) are checked as the bytes form is: digits, and no rounding', () => {
    const amount = typed('decimal', 'decimal(18,2)', { precision: 18, scale: 2 });
    expect(decodeValue('-12345678901234567.89', { type: 'string' }, typed('decimal', 'decimal(38,2)', { precision: 38, scale: 2 }))).toBe('-12345678901234567.89');
    expect(decodeValue('12.30', { type: 'string' }, amount)).toBe('12.30');
    expect(decodeValue('12.345', { type: 'string' }, amount)).toBeInstanceOf(Unrepresentable);
    expect(() => decodeValue('1.2E+3', { type: 'string' }, amount)).toThrow(/expected a decimal number/);
    expect(() => decodeValue('abc', { type: 'string' }, amount)).toThrow(BadValue);
  });
});

describe('MySQL BIGINT UNSIGNED from Debezium, in either bigint.unsigned.handling.mode', () => {
  const unsigned: ColumnSpec = { source: 'id', target: 'id', sourceType: { dataType: 'bigint', unsigned: true }, targetType: 'bigint unsigned', nullable: false };
  const signed: ColumnSpec = { ...unsigned, sourceType: { dataType: 'bigint' }, targetType: 'bigint' };
  const schemaless = encodingOfSourceType(unsigned.sourceType, { decimalHandling: 'precise', connector: 'mysql' });
  // Precise mode's form: a Decimal of scale 0, big-endian two's complement bytes.
  const decimalBytes = (n: bigint) => {
    const hex = n.toString(16).padStart(n.toString(16).length + (n.toString(16).length % 2), '0');
    return Buffer.from(parseInt(hex.slice(0, 2), 16) >= 0x80 ? `00${hex}` : hex, 'hex').toString('base64');
  };

  it('long (the default) sends 2^63 and up as the negative int64 of the same bits: they come back exact', () => {
    expect(decodeValue(-1, { type: 'int64' }, unsigned)).toBe('18446744073709551615');
    expect(decodeValue('-9223372036854775808', { type: 'int64' }, unsigned)).toBe('9223372036854775808'); // as json.ts gives 16+ digits
    expect(decodeValue('9223372036854775807', { type: 'int64' }, unsigned)).toBe('9223372036854775807');
    expect(decodeValue(42, { type: 'int64' }, unsigned)).toBe('42');
    expect(decodeValue(-1, { type: 'int64' }, signed)).toBe('-1');
  });

  it('events without schemas: a number or a long digit string is the long form, other text the Decimal bytes of precise mode', () => {
    expect(decodeValue(-2, schemaless, unsigned)).toBe('18446744073709551614');
    expect(decodeValue(7, schemaless, unsigned)).toBe('7');
    expect(decodeValue(decimalBytes(18446744073709551615n), schemaless, unsigned)).toBe('18446744073709551615');
    expect(decodeValue(decimalBytes(7n), schemaless, unsigned)).toBe('7');
    expect(() => decodeValue('not base64!', schemaless, unsigned)).toThrow(BadValue);
  });
});
