import { mssqlTypeMap } from '../../rows/mssql/typemap.js';
import { Unrepresentable, type ColumnConversion, type ColumnSpec, type RowValue, type SourceType } from '../../rows/types.js';
import { floatText, keptFraction, yearText } from '../../rows/convert.js';
import { enumErrorValue, memberLabels } from '../../rows/mysql.js';

/**
 * Debezium's JSON value encodings to the row pipeline's target form (src/rows/types.ts): decimal
 * digits, 'YYYY-MM-DD HH:MM:SS.ffffff', bytes as Buffers. The field's Connect schema says which
 * encoding a value has when the converter includes schemas; otherwise the column's source type
 * (from the TableSpec) and Debezium's defaults for that source decide.
 *
 * MySQL BIT columns take the bytes the copy reads from mysql2: big-endian, ceil(n/8) of them (see
 * bitsValue, bitValue).
 *
 * SQL Server text and datetimeoffset columns end in the copy path's own conversion (the type map,
 * src/rows/mssql/typemap.ts): the event's value is put in the form the copy reads, then converted
 * by the same function, so copy and sync write the same text (see withSqlServerConversion).
 */

/** A field of a Connect struct schema, as JsonConverter writes it with schemas.enable=true. */
export interface FieldSchema {
  type: string;
  name?: string;
  field?: string;
  optional?: boolean;
  /** The column's default, in the field's encoding (Debezium writes it for columns that have one). */
  default?: unknown;
  parameters?: Record<string, string>;
}

/** How Debezium encodes one column: its Connect base type and logical name. */
export interface Encoding {
  type: string;
  name?: string;
  /** Decimal scale (org.apache.kafka.connect.data.Decimal). */
  scale?: number;
  /** The source type map's conversion that finishes the value (see withSqlServerConversion). */
  sourceConversion?: ColumnConversion['convert'];
  /** The type map's conversion, run again on the decoded text: its limits apply (see withSqlServerConversion). */
  checkDecoded?: ColumnConversion['convert'];
  /**
   * The default of an optional (nullable) field, as the event writes it: Kafka Connect's
   * JsonConverter sends a NULL as this value unless `replace.null.with.default` is false.
   */
  nullableDefault?: unknown;
  /** Why this column's values cannot be read exactly in this encoding (encodingProblem): each value is refused with it. */
  problem?: string;
}

export interface DecodeOptions {
  /** Debezium's decimal.handling.mode: precise (bytes, the default) or string. */
  decimalHandling: 'precise' | 'string';
  /** Debezium connector family: decides schema-less defaults (e.g. SQL Server datetime2(7) is NanoTimestamp). */
  connector: 'mysql' | 'sqlserver';
}

export const DECIMAL = 'org.apache.kafka.connect.data.Decimal';
const VARIABLE_SCALE_DECIMAL = 'io.debezium.data.VariableScaleDecimal';
const ZONED_TIMESTAMP = 'io.debezium.time.ZonedTimestamp';
const XML = 'io.debezium.data.Xml';
const BITS = 'io.debezium.data.Bits';

export function encodingOfField(field: FieldSchema): Encoding {
  const e: Encoding = { type: field.type };
  if (field.name) e.name = field.name;
  if (field.name === DECIMAL) e.scale = Number(field.parameters?.scale ?? 0);
  if (field.optional && field.default !== undefined && field.default !== null) e.nullableDefault = field.default;
  return e;
}

/** Fractional-second digits of a temporal source type (datetime2(7) → 7, datetime(3) → 3). */
function fractionDigits(type: SourceType, fallback: number): number {
  if (type.precision !== undefined && ['datetime', 'datetime2', 'time', 'timestamp', 'datetimeoffset'].includes(type.dataType)) {
    // MySQL's catalog gives DATETIME_PRECISION, SQL Server's gives the scale for datetime2/time.
    return type.scale ?? type.precision;
  }
  if (type.scale !== undefined) return type.scale;
  const m = /\((\d+)\)/.exec((type as { columnType?: string }).columnType ?? '');
  return m ? Number(m[1]) : fallback;
}

/** The encoding Debezium uses for a source type, for events without schemas. */
export function encodingOfSourceType(type: SourceType, options: DecodeOptions): Encoding {
  const dt = type.dataType.toLowerCase();
  const decimal = (scale: number): Encoding =>
    options.decimalHandling === 'precise' ? { type: 'bytes', name: DECIMAL, scale } : { type: 'string' };
  switch (dt) {
    case 'decimal':
    case 'numeric':
      return decimal(type.scale ?? 0);
    case 'money':
    case 'smallmoney':
      return decimal(4);
    case 'tinyint':
    case 'smallint':
    case 'mediumint':
    case 'int':
    case 'integer':
    case 'year':
      return { type: 'int32' };
    case 'bigint':
      // Also BIGINT UNSIGNED, whichever its bigint.unsigned.handling.mode: unsignedBigintText tells the two forms apart.
      return { type: 'int64' };
    case 'date':
      return { type: 'int32', name: 'io.debezium.time.Date' };
    case 'datetime':
    case 'smalldatetime':
    case 'datetime2': {
      if (dt === 'smalldatetime' || (dt === 'datetime' && options.connector === 'sqlserver')) return { type: 'int64', name: 'io.debezium.time.Timestamp' };
      const p = fractionDigits(type, dt === 'datetime2' ? 7 : 0);
      if (p <= 3) return { type: 'int64', name: 'io.debezium.time.Timestamp' };
      if (p <= 6) return { type: 'int64', name: 'io.debezium.time.MicroTimestamp' };
      return { type: 'int64', name: 'io.debezium.time.NanoTimestamp' };
    }
    case 'timestamp':
      // SQL Server's timestamp is rowversion, a binary(8) counter: no date-time at all.
      return options.connector === 'sqlserver' ? { type: 'bytes' } : { type: 'string', name: ZONED_TIMESTAMP };
    case 'datetimeoffset':
      return { type: 'string', name: ZONED_TIMESTAMP };
    case 'time': {
      if (options.connector === 'mysql') return { type: 'int64', name: 'io.debezium.time.MicroTime' };
      const p = fractionDigits(type, 7);
      if (p <= 3) return { type: 'int32', name: 'io.debezium.time.Time' };
      if (p <= 6) return { type: 'int64', name: 'io.debezium.time.MicroTime' };
      return { type: 'int64', name: 'io.debezium.time.NanoTime' };
    }
    case 'bit':
      return options.connector === 'sqlserver' || (type.length ?? type.precision ?? 1) <= 1 ? { type: 'boolean' } : { type: 'bytes', name: BITS };
    case 'binary':
    case 'varbinary':
    case 'image':
    case 'tinyblob':
    case 'blob':
    case 'mediumblob':
    case 'longblob':
    case 'rowversion':
    case 'timestamp_rowversion':
      return { type: 'bytes' };
    case 'float':
    case 'double':
    case 'real':
      return { type: 'float64' };
    default:
      return { type: 'string' };
  }
}

/**
 * SQL Server types Debezium sends as a string in the form the copy path reads them: text as
 * tedious hands it, a GUID as CONVERT(char(36)) prints it (the type map checks its shape and case).
 */
const SQLSERVER_TEXT = new Set(['char', 'varchar', 'text', 'nchar', 'nvarchar', 'ntext', 'sysname', 'xml', 'uniqueidentifier']);

/** SQL Server date types: decoded from Debezium's epoch counts into the text the copy path reads. */
const SQLSERVER_DATES = new Set(['date', 'datetime', 'datetime2', 'smalldatetime']);

/**
 * For the SQL Server connector: attaches the type map's conversion to a text or datetimeoffset
 * column's encoding, so the copy path's rules (CHAR(n) loses its trailing pad, lone surrogates and
 * U+FFFD are Unrepresentable, datetimeoffset keeps its own offset as 'YYYY-MM-DD hh:mm:ss.f +hh:mm')
 * apply to change events too; a date's decoded text passes the same conversion (a year before
 * 1000 is Unrepresentable in both). Other encodings are returned as they are.
 */
export function withSqlServerConversion(encoding: Encoding, column: ColumnSpec): Encoding {
  const dt = column.sourceType.dataType.toLowerCase();
  const convert = () => mssqlTypeMap.conversion(column.sourceType, column.source).convert;
  if (SQLSERVER_DATES.has(dt)) return { ...encoding, checkDecoded: convert() };
  const fits =
    dt === 'datetimeoffset'
      ? encoding.name === ZONED_TIMESTAMP
      : SQLSERVER_TEXT.has(dt) && encoding.type === 'string' && (encoding.name === undefined || encoding.name === XML);
  if (!fits) return encoding;
  return { ...encoding, sourceConversion: convert() };
}

/** Fraction digits of Debezium's (and Kafka Connect's) integer date-time encodings. */
const ENCODING_FRACTION_DIGITS: Record<string, number> = {
  'io.debezium.time.Timestamp': 3,
  'io.debezium.time.Time': 3,
  'io.debezium.time.MicroTimestamp': 6,
  'io.debezium.time.MicroTime': 6,
  'io.debezium.time.NanoTimestamp': 9,
  'io.debezium.time.NanoTime': 9,
  'org.apache.kafka.connect.data.Timestamp': 3,
  'org.apache.kafka.connect.data.Time': 3,
};
const DECIMAL_SOURCE_TYPES = new Set(['decimal', 'numeric', 'money', 'smallmoney']);
/** Byte types (not SQL Server's timestamp: MySQL's TIMESTAMP has the same name). */
const BYTE_SOURCE_TYPES = new Set(['binary', 'varbinary', 'image', 'tinyblob', 'blob', 'mediumblob', 'longblob', 'rowversion']);

/**
 * Why a column's values cannot be read exactly in the encoding an event's schema gives: a connector
 * set to drop digits or to send another form than the copy reads (time.precision.mode=connect,
 * decimal.handling.mode=double, binary.handling.mode=base64/hex). Undefined when it can. Events
 * without schemas cannot tell: they are read as the connector sends them by default (README).
 */
export function encodingProblem(encoding: Encoding, column: ColumnSpec): string | undefined {
  const dt = column.sourceType.dataType.toLowerCase();
  const digits = encoding.name === undefined ? undefined : ENCODING_FRACTION_DIGITS[encoding.name];
  if (digits !== undefined && digits < 9) {
    const p = fractionDigits(column.sourceType, 0);
    if (p > digits) return `${dt}(${p}) arrives as ${encoding.name}, which keeps ${digits} fraction digits: set the connector's time.precision.mode to adaptive (its default)`;
  }
  if (DECIMAL_SOURCE_TYPES.has(dt) && ['float32', 'float64', 'float', 'double'].includes(encoding.type)) {
    return `${dt} arrives as a floating-point number, which rounds it: set the connector's decimal.handling.mode to precise (its default) or string`;
  }
  // SQL Server's timestamp is rowversion: its target is BINARY(8) (MySQL's TIMESTAMP arrives as text by design).
  const bytes = BYTE_SOURCE_TYPES.has(dt) || (dt === 'timestamp' && /^\s*binary\b/i.test(column.targetType));
  if (bytes && encoding.type === 'string') {
    return `${dt} arrives as text (binary.handling.mode base64 or hex), not as bytes: set the connector's binary.handling.mode to bytes (its default)`;
  }
  return undefined;
}

const INTEGER_TEXT = /^-?\d+$/;

/** A problem with one value: the event is dead-lettered with this reason. */
export class BadValue extends Error {}

/** One column's JSON value to target form, or Unrepresentable when the target cannot hold it exactly. */
export function decodeValue(raw: unknown, encoding: Encoding, column: ColumnSpec): RowValue | Unrepresentable {
  const value = decodeEncoded(raw, encoding, column);
  return encoding.checkDecoded && typeof value === 'string' ? throughTypeMap(value, { type: 'string' }, encoding.checkDecoded) : value;
}

function decodeEncoded(raw: unknown, encoding: Encoding, column: ColumnSpec): RowValue | Unrepresentable {
  if (raw === null || raw === undefined) return null;
  if (encoding.problem) throw new BadValue(encoding.problem);
  if (encoding.sourceConversion) return throughTypeMap(raw, encoding, encoding.sourceConversion);
  switch (encoding.name) {
    case DECIMAL:
      return decimalValue(raw, encoding.scale ?? 0, column);
    case VARIABLE_SCALE_DECIMAL: {
      const v = raw as { scale?: unknown; value?: unknown };
      if (typeof v !== 'object' || typeof v.value !== 'string') throw new BadValue(`expected {scale, value} for a variable-scale decimal`);
      return decimalValue(v.value, Number(v.scale ?? 0), column);
    }
    // Debezium's time types, and with time.precision.mode=connect Kafka Connect's own (days; milliseconds).
    case 'io.debezium.time.Date':
    case 'org.apache.kafka.connect.data.Date':
      return formatDate(BigInt(integerText(raw)));
    case 'org.apache.kafka.connect.data.Timestamp':
    case 'io.debezium.time.Timestamp':
      return timestampText(BigInt(integerText(raw)) * 1_000_000n, column);
    case 'io.debezium.time.MicroTimestamp':
      return timestampText(BigInt(integerText(raw)) * 1000n, column);
    case 'io.debezium.time.NanoTimestamp':
      return timestampText(BigInt(integerText(raw)), column);
    case ZONED_TIMESTAMP:
      return zonedTimestampText(stringValue(raw), column);
    case 'io.debezium.time.Time':
    case 'org.apache.kafka.connect.data.Time':
      return timeText(BigInt(integerText(raw)) * 1_000_000n, column);
    case 'io.debezium.time.MicroTime':
      return timeText(BigInt(integerText(raw)) * 1000n, column);
    case 'io.debezium.time.NanoTime':
      return timeText(BigInt(integerText(raw)), column);
    case 'io.debezium.time.Year':
      return debeziumYear(integerText(raw));
    case BITS:
      return bitsValue(base64Bytes(raw), column);
  }
  switch (encoding.type) {
    case 'int8':
    case 'int16':
    case 'int32':
    case 'int64':
      if (isUnsignedBigint(column)) return unsignedBigintText(raw, column);
      return /^year\b/i.test(column.targetType) ? debeziumYear(integerText(raw)) : integerText(raw);
    case 'float32':
    case 'float64':
    case 'double':
    case 'float':
      // -0 keeps its sign, as the copy path writes it (String(-0) is "0").
      if (typeof raw === 'number') return floatText(raw);
      if (typeof raw === 'string' && /^(-?(\d+(\.\d*)?([eE][-+]?\d+)?)|NaN|-?Infinity)$/.test(raw)) return raw;
      throw new BadValue(`expected a number, got ${JSON.stringify(raw)}`);
    case 'boolean':
      if (typeof raw === 'boolean') return bitValue(raw, column);
      throw new BadValue(`expected true or false, got ${JSON.stringify(raw)}`);
    case 'bytes':
      return base64Bytes(raw);
    case 'string':
      if (DECIMAL_SOURCE_TYPES.has(column.sourceType.dataType.toLowerCase())) return decimalTextValue(stringValue(raw), column);
      return column.sourceType.dataType === 'enum' ? enumValue(stringValue(raw), column) : stringValue(raw);
    default:
      throw new BadValue(`unsupported Connect type ${encoding.type}${encoding.name ? ` (${encoding.name})` : ''}`);
  }
}

/**
 * MySQL's YEAR holds 1901-2155 and 0000; Debezium sends 0000 as 1900, which YEAR cannot hold,
 * so 1900 can only be 0000.
 */
function debeziumYear(value: string): string {
  return value === '1900' ? '0000' : yearText(value);
}

/**
 * A ZonedTimestamp (UTC) at the target's precision. MySQL's zero TIMESTAMP ('0000-00-00 00:00:00')
 * arrives as the epoch, which a TIMESTAMP cannot hold (it starts at 00:00:01 UTC): so the epoch in a
 * MySQL TIMESTAMP column can only be the zero value.
 */
function zonedTimestampText(text: string, column: ColumnSpec): string | Unrepresentable {
  const nanos = zonedToEpochNanos(text);
  if (nanos !== 0n || column.sourceType.dataType !== 'timestamp') return timestampText(nanos, column);
  const digits = targetFraction(column);
  return `0000-00-00 00:00:00${digits > 0 ? `.${'0'.repeat(digits)}` : ''}`;
}

/** The value in the form the copy path reads it, converted by the type map's function. */
function throughTypeMap(raw: unknown, encoding: Encoding, convert: ColumnConversion['convert']): RowValue | Unrepresentable {
  const read = encoding.name === ZONED_TIMESTAMP ? datetimeoffsetAsRead(stringValue(raw)) : stringValue(raw);
  try {
    return convert(read);
  } catch (e) {
    // The type map throws these for a value not in the expected form: a bad event, not a crash.
    if (e instanceof TypeError || e instanceof RangeError) throw new BadValue(e.message);
    throw e;
  }
}

/**
 * Debezium sends the ENUM error value (index 0, left by a non-strict insert) as '', like a real ''
 * member (its MySqlValueConverters). Where '' is no member it can only be the error value, flagged
 * as the copy path flags it; where '' is a member the event cannot tell them apart, and the member
 * is written.
 */
function enumValue(value: string, column: ColumnSpec): string | Unrepresentable {
  if (value !== '' || !column.sourceType.columnType) return value;
  return memberLabels(column.sourceType.columnType).includes('') ? value : enumErrorValue(column.source);
}

function stringValue(raw: unknown): string {
  if (typeof raw === 'string') return raw;
  throw new BadValue(`expected a string, got ${JSON.stringify(raw)}`);
}

/** An integer as decimal text: a JSON number (safe range) or digit text (lossless parse of a big one). */
const isUnsignedBigint = (column: ColumnSpec): boolean => column.sourceType.dataType.toLowerCase() === 'bigint' && column.sourceType.unsigned === true;

const TWO_TO_64 = 1n << 64n;
/** Digits of 16 or more: an int64 as the lossless parser gives it (json.ts); base64 of a BIGINT UNSIGNED Decimal has at most 12 characters. */
const LONG_DIGITS = /^-?\d{16,}$/;

/**
 * A MySQL BIGINT UNSIGNED value. Debezium's default bigint.unsigned.handling.mode, long, sends
 * values from 2^63 up as the int64 of the same 64 bits, i.e. negative (18446744073709551615 as -1):
 * adding 2^64 gives them back exactly, as its precise mode does. Events without schemas may also
 * carry precise mode's form, a Decimal's base64 bytes; a number or a long digit string is the long form.
 */
function unsignedBigintText(raw: unknown, column: ColumnSpec): RowValue | Unrepresentable {
  if (typeof raw === 'string' && !LONG_DIGITS.test(raw)) return decimalValue(raw, 0, column);
  const n = BigInt(integerText(raw));
  return String(n < 0n ? n + TWO_TO_64 : n);
}

export function integerText(raw: unknown): string {
  if (typeof raw === 'number') {
    if (!Number.isSafeInteger(raw)) throw new BadValue(`expected an integer, got ${raw}`);
    return String(raw);
  }
  if (typeof raw === 'string' && INTEGER_TEXT.test(raw)) return raw;
  throw new BadValue(`expected an integer, got ${JSON.stringify(raw)}`);
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function base64Bytes(raw: unknown): Buffer {
  if (typeof raw !== 'string' || raw.length % 4 !== 0 || !BASE64.test(raw)) throw new BadValue(`expected base64 bytes, got ${JSON.stringify(raw).slice(0, 80)}`);
  return Buffer.from(raw, 'base64');
}

/**
 * A boolean in the target's form. MySQL BIT(1) arrives as a boolean: its BIT(1) target takes the
 * one byte the copy reads from mysql2 (the text '1' is a string literal there, too long for bit(1)
 * under strict mode). TINYINT(1) targets (SQL Server bit, MySQL BOOLEAN) take '1'/'0' as the copy writes.
 */
function bitValue(value: boolean, column: ColumnSpec): RowValue {
  return targetBits(column.targetType) === undefined ? (value ? '1' : '0') : Buffer.from([value ? 1 : 0]);
}

/**
 * An io.debezium.data.Bits value as the copy reads it from mysql2: big-endian, ceil(n/8) bytes.
 * Debezium sends the bits little-endian and not always at that width (from the binlog the high
 * zero bytes are trimmed, then padded back to ceil(n/8); a numeric default keeps 2, 4 or 8 bytes),
 * so the value is reversed and then padded or cut to the width, never losing a set bit.
 */
function bitsValue(littleEndian: Buffer, column: ColumnSpec): RowValue | Unrepresentable {
  const n = targetBits(column.targetType);
  if (n === undefined) throw new BadValue(`a BIT value for a ${column.targetType} column`);
  const bigEndian = Buffer.from(littleEndian).reverse();
  const width = Math.ceil(n / 8);
  const extra = bigEndian.length - width;
  const cut = bigEndian.subarray(0, Math.max(extra, 0));
  const out = extra >= 0 ? bigEndian.subarray(extra) : Buffer.concat([Buffer.alloc(-extra), bigEndian]);
  // A bit above n (in a cut byte or high in the top byte) is a value BIT(n) cannot hold.
  if (cut.some((b) => b !== 0) || out[0]! >> (n - 8 * (width - 1)) !== 0) {
    return new Unrepresentable(`column ${column.source}: ${column.targetType} cannot hold 0x${bigEndian.toString('hex')}`, bigEndian.toString('hex'));
  }
  return out;
}

/** Big-endian two's-complement bytes as a signed integer. */
export function twosComplement(bytes: Buffer): bigint {
  if (bytes.length === 0) return 0n;
  // Up to 6 bytes fit a double exactly; readIntBE spares the hex text (most amounts are this small).
  if (bytes.length <= 6) return BigInt(bytes.readIntBE(0, bytes.length));
  const unsigned = BigInt('0x' + bytes.toString('hex'));
  return bytes[0]! & 0x80 ? unsigned - (1n << BigInt(bytes.length * 8)) : unsigned;
}

/** An unscaled integer and a scale as exact decimal text: (-2550, 2) → "-25.50". */
export function scaledText(unscaled: bigint, scale: number): string {
  const negative = unscaled < 0n;
  let digits = (negative ? -unscaled : unscaled).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, '0');
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  }
  return negative ? `-${digits}` : digits;
}

/** Decimal from base64 unscaled two's-complement bytes (precise mode), checked against the target scale. */
function decimalValue(raw: unknown, scale: number, column: ColumnSpec): RowValue | Unrepresentable {
  return withinTargetScale(scaledText(twosComplement(base64Bytes(raw)), scale), column);
}

/** A decimal sent as text (decimal.handling.mode=string): plain digits, checked as the bytes form is. */
function decimalTextValue(text: string, column: ColumnSpec): RowValue | Unrepresentable {
  if (!/^-?\d+(\.\d+)?$/.test(text)) throw new BadValue(`expected a decimal number, got ${JSON.stringify(text.slice(0, 40))}`);
  return withinTargetScale(text, column);
}

function withinTargetScale(text: string, column: ColumnSpec): RowValue | Unrepresentable {
  const targetScale = targetDecimalScale(column.targetType);
  if (targetScale !== undefined) {
    if (keptFraction(text.split('.')[1] ?? '', targetScale) === null) {
      return new Unrepresentable(`column ${column.source}: ${column.targetType} would round ${text}`, text);
    }
  }
  return text;
}

/** A property of a target type, read from its text once (values are decoded per event, types are few). */
function perTargetType<T>(read: (targetType: string) => T): (targetType: string) => T {
  const known = new Map<string, T>();
  return (targetType) => {
    if (!known.has(targetType)) known.set(targetType, read(targetType));
    return known.get(targetType)!;
  };
}

const targetDecimalScale = perTargetType((targetType): number | undefined => {
  const m = /^\s*(?:decimal|numeric)\s*\(\s*\d+\s*,\s*(\d+)\s*\)/i.exec(targetType);
  if (m) return Number(m[1]);
  return /^\s*(?:decimal|numeric)\b/i.test(targetType) ? 0 : undefined;
});

/**
 * Fractional digits a DATETIME, TIMESTAMP or TIME column keeps (DATETIME(6) → 6, TIME → 0). Any
 * other target (e.g. the VARCHAR(34) of a datetimeoffset) has no such precision: a date-time
 * value decoded for it is an error, not a guess.
 */
const targetFractionOf = perTargetType((targetType): number => {
  const m = /^\s*(?:datetime|timestamp|time)\b\s*(?:\(\s*(\d+)\s*\))?/i.exec(targetType);
  if (!m) throw new BadValue(`a date-time value for a ${targetType} column`);
  return m[1] ? Number(m[1]) : 0;
});
const targetFraction = (column: ColumnSpec): number => targetFractionOf(column.targetType);

/** The n of a BIT(n) target (BIT is BIT(1)); undefined for any other target. */
const targetBits = perTargetType((targetType): number | undefined => {
  const m = /^\s*bit\b\s*(?:\(\s*(\d+)\s*\))?/i.exec(targetType);
  return m ? Number(m[1] ?? 1) : undefined;
});

const NS_PER_DAY = 86_400_000_000_000n;

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/** Days since 1970-01-01 to a civil date (proleptic Gregorian), any year. */
export function civilFromDays(days: bigint): { y: number; m: number; d: number } {
  const z = Number(days) + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return { y: yoe + era * 400 + (m <= 2 ? 1 : 0), m, d };
}

export function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

const pad = (n: number | bigint, w: number): string => String(n).padStart(w, '0');

function formatDate(days: bigint): string {
  const { y, m, d } = civilFromDays(days);
  if (y < 0 || y > 9999) throw new BadValue(`date year ${y} is outside 0000-9999`);
  return `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}`;
}

/** Nanoseconds as a fraction of `digits` digits, or Unrepresentable when digits beyond them are not zero. */
function fractionText(nanos: bigint, digits: number, column: ColumnSpec, whole: () => string): string | Unrepresentable {
  const nine = pad(nanos, 9);
  const kept = keptFraction(nine, digits);
  if (kept === null) {
    return new Unrepresentable(`column ${column.source}: ${column.targetType} would round the fraction .${nine.replace(/0+$/, '')}`, `${whole()}.${nine}`);
  }
  return digits > 0 ? `.${kept}` : '';
}

/** Nanoseconds since the epoch (UTC wall clock) to 'YYYY-MM-DD HH:MM:SS[.f]' at the target's precision. */
export function timestampText(epochNanos: bigint, column: ColumnSpec): string | Unrepresentable {
  const days = floorDiv(epochNanos, NS_PER_DAY);
  const inDay = epochNanos - days * NS_PER_DAY;
  const secondsOfDay = Number(inDay / 1_000_000_000n);
  const nanos = inDay % 1_000_000_000n;
  const whole = `${formatDate(days)} ${pad(Math.floor(secondsOfDay / 3600), 2)}:${pad(Math.floor(secondsOfDay / 60) % 60, 2)}:${pad(secondsOfDay % 60, 2)}`;
  const fraction = fractionText(nanos, targetFraction(column), column, () => whole);
  return fraction instanceof Unrepresentable ? fraction : whole + fraction;
}

/** Nanoseconds since midnight (may be negative or past 24 h, as MySQL TIME allows) to '[-]HH:MM:SS[.f]'. */
export function timeText(nanosOfDay: bigint, column: ColumnSpec): string | Unrepresentable {
  const negative = nanosOfDay < 0n;
  const abs = negative ? -nanosOfDay : nanosOfDay;
  const seconds = abs / 1_000_000_000n;
  const nanos = abs % 1_000_000_000n;
  const whole = `${negative ? '-' : ''}${pad(seconds / 3600n, 2)}:${pad((seconds / 60n) % 60n, 2)}:${pad(seconds % 60n, 2)}`;
  const fraction = fractionText(nanos, targetFraction(column), column, () => whole);
  return fraction instanceof Unrepresentable ? fraction : whole + fraction;
}

const ZONED = /^(\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/;

/** A ZonedTimestamp's parts: its own wall clock (date, time, fraction digits) and its offset. */
function parseZoned(text: string): { date: string; time: string; fraction: string; offsetMinutes: number } {
  const m = ZONED.exec(text);
  if (!m) throw new BadValue(`expected an ISO-8601 timestamp with zone, got ${JSON.stringify(text)}`);
  const offset = m[8]!;
  const offsetMinutes = offset === 'Z' ? 0 : (offset.startsWith('-') ? -1 : 1) * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6)));
  return { date: `${m[1]}-${m[2]}-${m[3]}`, time: `${m[4]}:${m[5]}:${m[6]}`, fraction: m[7] ?? '', offsetMinutes };
}

/** An ISO-8601 instant with Z or an offset (Debezium's ZonedTimestamp) to nanoseconds since the epoch, UTC. */
export function zonedToEpochNanos(text: string): bigint {
  const { date, time, fraction, offsetMinutes } = parseZoned(text);
  const [y, mo, d] = date.split('-').map(Number) as [number, number, number];
  const [h, mi, sec] = time.split(':').map(Number) as [number, number, number];
  const seconds = BigInt(daysFromCivil(y, mo, d)) * 86400n + BigInt(h * 3600 + mi * 60 + sec - offsetMinutes * 60);
  return seconds * 1_000_000_000n + BigInt(fraction.padEnd(9, '0'));
}

/**
 * A SQL Server datetimeoffset as Debezium sends it (ISO-8601 in the value's own offset, e.g.
 * 2024-03-02T17:00:00.1234567+08:00; Z for +00:00) in the form the copy path selects it:
 * '<wall clock, style 121> <offset minutes>' (src/rows/mssql/typemap.ts). The fraction's trailing
 * zeros carry nothing (Debezium may pad to a width); datetimeoffset has at most 7 digits.
 */
export function datetimeoffsetAsRead(text: string): string {
  const { date, time, fraction, offsetMinutes } = parseZoned(text);
  const digits = fraction.replace(/0+$/, '');
  if (digits.length > 7) throw new BadValue(`datetimeoffset ${JSON.stringify(text)} has more than 7 fraction digits`);
  return `${date} ${time}${digits ? `.${digits}` : ''} ${offsetMinutes}`;
}
