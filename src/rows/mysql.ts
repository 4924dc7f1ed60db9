import { RefusedError } from '../errors.js';
import { Unrepresentable, ValueTooLargeError, type ColumnConversion, type RowValue, type SourceType, type SourceTypeMap } from './types.js';
import { yearText } from './convert.js';

/**
 * The row pipeline's type map for MySQL/MariaDB legacy sources (resharding, sandbox, tests).
 * MySQL to MySQL keeps every type; what changes is text: every text column lands in utf8mb4,
 * converted by the source server from its own character set (latin1, gbk, ...). A value whose
 * bytes are not valid in that character set cannot be converted without bending it, so it is
 * flagged Unrepresentable (see textConversion).
 */

/** MySQL's integer types (the one list of them) with their widths in bits; INTEGER is a synonym of INT. */
const INTEGER_BITS: Readonly<Record<string, bigint>> = { tinyint: 8n, smallint: 16n, mediumint: 24n, int: 32n, integer: 32n, bigint: 64n };
const TEXT_TYPES = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'enum', 'set', 'json']);
const BYTE_TYPES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob', 'bit']);
const TEMPORAL_TYPES = new Set(['date', 'time', 'datetime', 'timestamp', 'year']);
const FLOAT_TYPES = new Set(['float', 'double', 'real']);
/** Character sets whose text is already valid UTF-8 (the server's conversion to utf8mb4 is exact). */
const UTF8_CHARSETS = new Set(['utf8mb4', 'utf8mb3', 'utf8']);

/**
 * utf8mb4 keeps the source collation; other sets map to the utf8mb4 collation with the same rule:
 * binary or not, and NO PAD or not (MariaDB's *_nopad_* collations tell 'a' and 'a ' apart, so
 * keys the source holds apart would collide under a PAD SPACE one).
 */
export function targetCollationOf(type: SourceType): string {
  const collation = type.collation ?? '';
  if (collation.startsWith('utf8mb4_')) return collation;
  if (collation.startsWith('utf8mb3_') || collation.startsWith('utf8_')) return collation.replace(/^utf8(mb3)?_/, 'utf8mb4_');
  if (collation.endsWith('_bin')) return binaryCollationOf(type);
  return isNoPad(collation) ? 'utf8mb4_general_nopad_ci' : 'utf8mb4_general_ci';
}

const isNoPad = (collation: string): boolean => collation.includes('_nopad_');

/** utf8mb4's binary collation with the source's trailing-space rule. */
function binaryCollationOf(type: SourceType): string {
  return isNoPad(type.collation ?? '') ? 'utf8mb4_nopad_bin' : 'utf8mb4_bin';
}

/**
 * The target collation of a column in a unique key (the primary key or a UNIQUE index). Where the
 * utf8mb4 collation only approximates the source's (a non-UTF-8, non-binary one: latin1_swedish_ci
 * keeps 'bar' and 'bår' apart, utf8mb4_general_ci does not), two keys the source holds apart would
 * collide on the target and REPLACE would drop one: such a column takes utf8mb4_bin (or
 * utf8mb4_nopad_bin for a NO PAD source), which merges no two different strings.
 */
export function uniqueKeyCollationOf(type: SourceType): string {
  return isUtf8Compatible(type) ? targetCollationOf(type) : binaryCollationOf(type);
}

export function isUtf8Compatible(type: SourceType): boolean {
  return type.charset === undefined || UTF8_CHARSETS.has(type.charset);
}

/** Whether an information_schema DATA_TYPE (e.g. 'bigint') is an integer type. */
export function isIntegerDataType(dataType: string): boolean {
  return Object.hasOwn(INTEGER_BITS, dataType.toLowerCase());
}

/** Whether a column type as declared (e.g. 'bigint(20) unsigned', 'INT') is an integer type. */
export function isIntegerColumnType(columnType: string): boolean {
  return isIntegerDataType(/^\s*([a-z]+)/i.exec(columnType)?.[1] ?? '');
}

/** The lowest and highest value an integer column of this DATA_TYPE holds. */
export function integerRange(dataType: string, unsigned: boolean): { min: bigint; max: bigint } {
  const bits = INTEGER_BITS[dataType.toLowerCase()];
  if (bits === undefined) throw new Error(`${dataType} is not an integer type`);
  return unsigned ? { min: 0n, max: (1n << bits) - 1n } : { min: -(1n << (bits - 1n)), max: (1n << (bits - 1n)) - 1n };
}

export function isIntegerType(type: SourceType): boolean {
  return isIntegerDataType(type.dataType);
}

export function isTextType(type: SourceType): boolean {
  return TEXT_TYPES.has(type.dataType);
}

export function isByteType(type: SourceType): boolean {
  return BYTE_TYPES.has(type.dataType);
}

/** Numbers arrive from mysql2 as JS numbers only for types whose every value a double holds exactly. */
function textOf(value: unknown): RowValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || Buffer.isBuffer(value)) return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  throw new TypeError(`unexpected driver value of type ${typeof value}`);
}

const yearOf = (v: RowValue): RowValue => (typeof v === 'string' ? yearText(v) : v);

function plain(targetType: string): ColumnConversion {
  return { targetType, selectExpression: (c) => c, convert: textOf };
}

/** An integer or decimal column's conversion: its number without ZEROFILL's padding (see unpadded). */
function numeric(targetType: string, type: SourceType): ColumnConversion {
  return { ...plain(targetType), selectExpression: (c) => unpadded(c, type) };
}

/**
 * A number column's value in plain digits. A ZEROFILL column prints its numbers padded with zeros
 * (00000042), which is not the text the shards hold, nor the key text the shard functions hash;
 * adding 0 gives the plain number and keeps the type's scale and range. Other columns as they are.
 */
export function unpadded(quotedColumn: string, type: SourceType): string {
  return /\bzerofill\b/i.test(type.columnType ?? '') ? `(${quotedColumn} + 0)` : quotedColumn;
}

/** A text column's value as UTF-8 (the server converts other character sets). */
export function utf8Text(quotedColumn: string, type: SourceType): string {
  return isUtf8Compatible(type) ? quotedColumn : `CONVERT(${quotedColumn} USING utf8mb4)`;
}

/**
 * A legacy shard key in the form the shard functions hash (src/shard): text as UTF-8, integers in
 * plain digits. The copy routes by it and verify's --shards selects legacy rows by it.
 */
export function shardKeyExpression(quotedColumn: string, type: SourceType): string {
  return isTextType(type) ? utf8Text(quotedColumn, type) : unpadded(quotedColumn, type);
}

/** The column type as the target should declare it, without display widths or charset clauses. */
function columnTypeOf(type: SourceType): string {
  const full = type.columnType ?? type.dataType;
  // ENUM and SET members are values: kept as they are, case and all (only the type name is lower-cased).
  if (isMemberListType(type.dataType)) return `${type.dataType}${full.slice(full.indexOf('('), full.lastIndexOf(')') + 1)}`;
  return full.toLowerCase().replace(/\s+(character set|charset|collate)\s+\S+/g, '').trim();
}

const isMemberListType = (dataType: string): boolean => dataType === 'enum' || dataType === 'set';

function integerType(type: SourceType): string {
  const dataType = type.dataType === 'integer' ? 'int' : type.dataType;
  return `${dataType}${type.unsigned ? ' unsigned' : ''}`;
}

/**
 * Text from a non-UTF-8 column. The SELECT returns NULL, or '1' + the utf8mb4 text when the
 * bytes round-trip through utf8mb4 unchanged, or '0' + the bytes' hex when they do not (the
 * server would have put '?' in their place), or '2' when the server could not build either: it
 * makes a result longer than its max_allowed_packet NULL, with a warning only, and that NULL
 * must not pass for the value's (a repair wrote it over good text).
 */
function textConversion(targetType: string, targetCollation: string, type: SourceType, column: string): ColumnConversion {
  if (isUtf8Compatible(type)) return { targetType, targetCollation, selectExpression: (c) => c, convert: textOf };
  const charset = type.charset!;
  return {
    targetType,
    targetCollation,
    selectExpression: (c) =>
      `CASE WHEN ${c} IS NULL THEN NULL ELSE COALESCE(CASE WHEN ${roundTrips(c, charset)} THEN CONCAT('1', CONVERT(${c} USING utf8mb4)) ELSE CONCAT('0', HEX(${c})) END, '2') END`,
    convert(value) {
      if (value === null || value === undefined) return null;
      const text = typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
      if (text.startsWith('1')) return text.slice(1);
      if (text === '2') throw new ValueTooLargeError(`column ${column}: ${TOO_LARGE_TO_CONVERT}`);
      return new Unrepresentable(`column ${column}: bytes are not valid ${charset} text, utf8mb4 would get '?' in their place`, `0x${text.slice(1)}`);
    },
  };
}

export const TOO_LARGE_TO_CONVERT =
  "the source server could not convert the value to utf8mb4 within its max_allowed_packet (the result, up to 3 bytes a character, is larger): raise the source's max_allowed_packet";

/**
 * A FLOAT column's exact value as text: the server prints a FLOAT with 6 digits, but times 1e0 it
 * is the DOUBLE it exactly equals, printed in full. Text, not a DOUBLE result: mysql2 parses a
 * DOUBLE's text into a JS number itself, and is off by an ulp at times (9592.180569541113 came
 * back as 9592.180569541111).
 */
export function floatExpression(quotedColumn: string): string {
  return `CAST((${quotedColumn} * 1e0) AS CHAR)`;
}

/** A DOUBLE column's value as the server prints it (shortest exact digits), as text for the reason above. */
export function doubleExpression(quotedColumn: string): string {
  return `CAST(${quotedColumn} AS CHAR)`;
}

/**
 * ENUM's error value (index 0, stored by a non-strict insert of a bad value) can only be written
 * again in non-strict mode, which would bend other values: it is flagged instead. It prints as ''
 * just as a real '' member does, so the SELECT tells them apart by index: '0' for the error value,
 * '1' + the value's own text otherwise.
 */
function enumConversion(base: ColumnConversion, column: string): ColumnConversion {
  return {
    ...base,
    selectExpression: (c) => `CASE WHEN ${c} IS NULL THEN NULL WHEN ${c} + 0 = 0 THEN '0' ELSE CONCAT('1', ${base.selectExpression(c)}) END`,
    convert(value) {
      if (value === null || value === undefined) return null;
      const text = Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
      if (text === '0') return enumErrorValue(column);
      return base.convert(text.slice(1));
    },
  };
}

/** The ENUM error value, flagged (see enumConversion). */
export function enumErrorValue(column: string): Unrepresentable {
  return new Unrepresentable(`column ${column}: the ENUM error value (index 0) can only be written by a non-strict insert`, "''");
}

/**
 * The members of an ENUM (or SET) as information_schema's COLUMN_TYPE lists them, e.g.
 * `enum('a','it''s','')` → ['a', "it's", '']. A quote inside a member is doubled and a backslash
 * escaped with another (as MariaDB writes COLUMN_TYPE): one reader for the keyset bounds of ENUM
 * and SET keys (src/source/mysql/sql.ts) and for sync's ENUM values.
 */
export function memberLabels(columnType: string): string[] {
  const open = columnType.indexOf('(');
  if (open < 0) throw new Error(`not an ENUM or SET type: ${columnType}`);
  const members: string[] = [];
  let i = open + 1;
  while (i < columnType.length && columnType[i] === "'") {
    let member = '';
    for (i++; i < columnType.length; i++) {
      const ch = columnType[i]!;
      if (ch === '\\' && i + 1 < columnType.length) member += columnType[++i];
      else if (ch === "'" && columnType[i + 1] === "'") member += columnType[++i];
      else if (ch === "'") break;
      else member += ch;
    }
    members.push(member);
    i++; // past the closing quote
    if (columnType[i] === ',') i++;
  }
  if (columnType[i] !== ')') throw new Error(`cannot read the members of ${columnType}`);
  return members;
}

/** SQL: true when a non-UTF-8 text value converts to utf8mb4 and back to the same bytes. */
export function roundTrips(quotedColumn: string, charset: string): string {
  if (!/^[a-z0-9_]+$/.test(charset)) throw new Error(`bad character set name ${charset}`);
  return `CAST(CONVERT(CONVERT(${quotedColumn} USING utf8mb4) USING ${charset}) AS BINARY) = CAST(${quotedColumn} AS BINARY)`;
}

/** VARCHAR(n) of a 1- or 2-byte charset can exceed the row limit in utf8mb4: such columns become TEXT types. */
function varcharTarget(type: SourceType): string {
  const length = type.length ?? 0;
  const name = type.dataType;
  if (length <= 16383) return `${name}(${length})`;
  return length <= 16_777_215 / 4 ? 'mediumtext' : 'longtext';
}

/**
 * TEXT types hold bytes, not characters: a non-UTF-8 value takes more bytes in utf8mb4 (gbk's 2 per
 * character become 3, latin1's 1 up to 3), so a full TINYTEXT/TEXT/MEDIUMTEXT would not fit the same
 * type: such columns take the next size.
 */
const NEXT_TEXT_SIZE: Record<string, string> = { tinytext: 'text', text: 'mediumtext', mediumtext: 'longtext' };
function textTarget(type: SourceType): string {
  const bigger = NEXT_TEXT_SIZE[type.dataType];
  return bigger && !isUtf8Compatible(type) ? bigger : columnTypeOf(type);
}

export const mysqlTypeMap: SourceTypeMap = {
  conversion(type: SourceType, column: string): ColumnConversion {
    const dt = type.dataType;
    if (isIntegerDataType(dt)) return numeric(integerType(type), type);
    if (dt === 'decimal' || dt === 'numeric') return numeric(`decimal(${type.precision ?? 10},${type.scale ?? 0})${type.unsigned ? ' unsigned' : ''}`, type);
    // The server prints a FLOAT with 6 digits, which loses bits; times 1e0 it is the DOUBLE it exactly
    // equals, printed in full, and that text stores back into FLOAT as the same value.
    if (dt === 'float') return { ...plain(columnTypeOf(type)), selectExpression: floatExpression };
    if (FLOAT_TYPES.has(dt)) return { ...plain(columnTypeOf(type)), selectExpression: doubleExpression };
    if (dt === 'year') return { ...plain('year'), convert: (v) => yearOf(textOf(v)) };
    if (TEMPORAL_TYPES.has(dt)) return plain(columnTypeOf(type));
    if (BYTE_TYPES.has(dt)) return { ...plain(columnTypeOf(type)), wire: 'hex' };
    if (dt === 'char' || dt === 'varchar') return textConversion(varcharTarget(type), targetCollationOf(type), type, column);
    if (dt === 'json') return textConversion('json', 'utf8mb4_bin', type, column);
    if (dt === 'enum') return enumConversion(textConversion(columnTypeOf(type), targetCollationOf(type), type, column), column);
    if (TEXT_TYPES.has(dt)) return textConversion(textTarget(type), targetCollationOf(type), type, column);
    throw new RefusedError(`column ${column}: source type ${type.columnType ?? dt} is not supported by the MySQL type map`);
  },
};
