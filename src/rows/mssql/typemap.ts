import { isUtf8 } from 'node:buffer';
import { RefusedError } from '../../errors.js';
import { Unrepresentable, type ColumnConversion, type RowValue, type SourceType, type SourceTypeMap } from '../types.js';
import { assertCollationName, parseCollation, targetCollation, type CollationInfo, type TargetFlavor } from './collation.js';
import { decodeCodepage } from './codepage.js';
import { floatText } from '../convert.js';
import { toDatetimeoffsetText, toMysqlDate, toMysqlDateTime, toMysqlTime } from './temporal.js';

/**
 * The SQL Server type map of the row pipeline (mssql-brief.md §4–5). Every column is selected in a
 * form tedious hands over without loss: decimals and money as text (tedious would compute a JS
 * number), datetime2/time/datetimeoffset as style-121 text (tedious would build a ms Date and drop
 * the offset), GUIDs as SQL Server's own text. The converter then checks the value against what the
 * MySQL column can hold and returns Unrepresentable rather than bending it.
 */

/** How a column serves as a keyset-pagination key (see src/source/mssql/tsql.ts). */
export interface MssqlKeyBinding {
  /** The parameter's declared type: an integer type, or nvarchar text CAST to the column's type in T-SQL. */
  param: 'tinyint' | 'smallint' | 'int' | 'nvarchar';
  /** T-SQL that turns the bound parameter into a value of the column's exact type (and collation). */
  castParam(paramRef: string): string;
  /** T-SQL that reads the column as the text a ChunkKey holds. */
  keyText(quotedColumn: string): string;
}

export interface MssqlColumnConversion extends ColumnConversion {
  /** Undefined when the type cannot be a pagination key (float, MAX types, datetimeoffset, ...). */
  key?: MssqlKeyBinding;
  /**
   * The target type of the column in the primary key, where it differs from targetType: the
   * shard's primary key must keep apart every two keys the source keeps apart (see sqlSortOrderKey).
   */
  keyTargetType?: string;
}

export interface MssqlTypeMap extends SourceTypeMap {
  conversion(type: SourceType, column: string): MssqlColumnConversion;
}

export interface MssqlTypeMapOptions {
  /** MySQL 8 (the production target) or MariaDB (test shards): only collation names differ. */
  flavor?: TargetFlavor;
}

const identity = (c: string) => c;

/** varchar/nvarchar up to this many chars stay VARCHAR; longer ones become TEXT (the 65,535-byte row limit). */
const MAX_VARCHAR_CHARS = 1024;
const MAX_VARBINARY_BYTES = 4096;

export function createMssqlTypeMap(options: MssqlTypeMapOptions = {}): MssqlTypeMap {
  const flavor = options.flavor ?? 'mysql';
  return {
    conversion(type: SourceType, column: string): MssqlColumnConversion {
      const name = type.dataType.toLowerCase();
      const make = CONVERSIONS[name];
      if (!make) throw unsupported(type, column, REFUSED_TYPES[name] ? `is not supported (${REFUSED_TYPES[name]})` : 'is not supported');
      return make(type, column, flavor);
    },
  };
}

/** The map for MySQL 8 shards. */
export const mssqlTypeMap: MssqlTypeMap = createMssqlTypeMap();

type Make = (type: SourceType, column: string, flavor: TargetFlavor) => MssqlColumnConversion;

function unsupported(type: SourceType, column: string, why: string): RefusedError {
  return new RefusedError(
    `${column}: SQL Server type ${type.dataType} ${why}; leave the column out with exclude_columns, or convert it in a view`,
  );
}

function nullOr(convert: (v: unknown) => RowValue | Unrepresentable): (v: unknown) => RowValue | Unrepresentable {
  return (v) => (v === null || v === undefined ? null : convert(v));
}

// ---- numbers -------------------------------------------------------------------------------------

function integerText(v: unknown, min: bigint, max: bigint, what: string): string {
  let n: bigint;
  if (typeof v === 'number' && Number.isSafeInteger(v)) n = BigInt(v);
  else if (typeof v === 'bigint') n = v;
  else if (typeof v === 'string' && /^-?\d+$/.test(v)) n = BigInt(v);
  else throw new TypeError(`expected an integer for ${what}, got ${typeof v} ${String(v).slice(0, 40)}`);
  if (n < min || n > max) throw new RangeError(`${n} is outside the ${what} range`);
  return n.toString();
}

function integer(targetType: string, min: bigint, max: bigint, param: MssqlKeyBinding['param'] | 'bigint'): Make {
  return (type) => ({
    targetType,
    selectExpression: identity,
    convert: nullOr((v) => integerText(v, min, max, type.dataType)),
    key:
      param === 'bigint'
        ? { param: 'nvarchar', castParam: (p) => `CAST(${p} AS bigint)`, keyText: identity }
        : { param, castParam: identity, keyText: identity },
  });
}

const DECIMAL_TEXT = /^-?(\d*)(?:\.(\d+))?$/;

/** Text of a decimal as CAST(... AS varchar) prints it, normalised to MySQL's literal form. */
function decimalText(v: unknown, precision: number, scale: number): string {
  if (typeof v !== 'string') throw new TypeError(`expected decimal text from CAST(... AS varchar), got ${typeof v}`);
  const m = DECIMAL_TEXT.exec(v);
  if (!m || (m[1] === '' && m[2] === undefined)) throw new TypeError(`not a decimal: "${v}"`);
  const intDigits = m[1]!.replace(/^0+(?=\d)/, '') || '0';
  const fraction = (m[2] ?? '').padEnd(scale, '0');
  if (fraction.length > scale || (intDigits === '0' ? 0 : intDigits.length) > precision - scale) {
    throw new RangeError(`"${v}" does not fit DECIMAL(${precision},${scale})`);
  }
  const negative = v.startsWith('-') && /[1-9]/.test(intDigits + fraction);
  return `${negative ? '-' : ''}${intDigits}${scale > 0 ? '.' + fraction : ''}`;
}

const decimal: Make = (type, column) => {
  const precision = type.precision ?? 18;
  const scale = type.scale ?? 0;
  // MySQL DECIMAL holds at most 30 digits after the point (SQL Server allows 38).
  if (scale > 30) throw unsupported(type, column, `(${precision},${scale}) has more than 30 digits after the point, which MySQL DECIMAL cannot hold`);
  const read = (c: string) => `CAST(${c} AS varchar(50))`;
  return {
    targetType: `DECIMAL(${precision},${scale})`,
    selectExpression: read,
    convert: nullOr((v) => decimalText(v, precision, scale)),
    key: { param: 'nvarchar', castParam: (p) => `CAST(${p} AS ${type.dataType.toLowerCase()}(${precision},${scale}))`, keyText: read },
  };
};

/** money/smallmoney: exact through decimal(19,4)/(10,4); CAST(money AS varchar) alone prints 2 decimals. */
function money(precision: number): Make {
  return (type) => {
    const read = (c: string) => `CAST(CAST(${c} AS decimal(${precision},4)) AS varchar(30))`;
    return {
      targetType: `DECIMAL(${precision},4)`,
      selectExpression: read,
      convert: nullOr((v) => decimalText(v, precision, 4)),
      key: { param: 'nvarchar', castParam: (p) => `CAST(${p} AS ${type.dataType.toLowerCase()})`, keyText: read },
    };
  };
}

function float(targetType: string): Make {
  // tedious reads the 4 or 8 IEEE bytes into a double exactly; JS prints the shortest text that
  // parses back to the same double, and MySQL parses it back to the same float/double.
  return () => ({
    targetType,
    selectExpression: identity,
    convert: nullOr((v) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`expected a finite number, got ${String(v)}`);
      return floatText(v);
    }),
  });
}

const bit: Make = () => ({
  targetType: 'TINYINT(1)',
  selectExpression: identity,
  convert: nullOr((v) => {
    if (typeof v === 'boolean') return v ? '1' : '0';
    if (v === 0 || v === 1) return String(v);
    throw new TypeError(`expected a bit (boolean), got ${String(v)}`);
  }),
});

// ---- text ----------------------------------------------------------------------------------------

/** A UTF-16 surrogate without its partner: SQL Server can hold one, utf8mb4 cannot. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function hasLoneSurrogate(s: string): boolean {
  return LONE_SURROGATE.test(s);
}

function escapeSurrogates(s: string): string {
  return s.replace(/[\uD800-\uDFFF]/g, (c) => `\\u${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * `fixedChar`: the target is MySQL CHAR, which drops trailing spaces, while SQL Server pads char(n)
 * with them: the value is converted to what the target holds, so every side compares the same text.
 * With `nonUnicodeCodepage` the copy reads the column's bytes and decodes them here (decodeCodepage);
 * text decoded elsewhere (a Debezium event) is taken as it is.
 */
function textConverter(nonUnicodeCodepage: string | null, fixedChar = false): (v: unknown) => RowValue | Unrepresentable {
  const utf8 = nonUnicodeCodepage === 'utf-8';
  return nullOr((raw) => {
    let text = raw;
    if (nonUnicodeCodepage && Buffer.isBuffer(raw)) {
      // A _UTF8 collation does not keep SQL Server from storing bytes that are no UTF-8: they would read as U+FFFD.
      if (utf8 && !isUtf8(raw)) return new Unrepresentable('bytes not valid UTF-8 in a column of a _UTF8 collation', raw.toString('utf8'));
      text = utf8 ? raw.toString('utf8') : decodeCodepage(raw, nonUnicodeCodepage);
    }
    if (typeof text !== 'string') throw new TypeError(`expected text, got ${typeof raw}`);
    const v = fixedChar ? text.replace(/ +$/, '') : text;
    if (hasLoneSurrogate(v)) return new Unrepresentable('a lone UTF-16 surrogate: utf8mb4 would turn it into U+FFFD', escapeSurrogates(v));
    // No code page maps a byte to U+FFFD, so one in the decoded text marks bytes that were not valid there
    // (in UTF-8 it is a character like any other: its bytes were checked above).
    if (nonUnicodeCodepage && !utf8 && v.includes('\uFFFD')) {
      return new Unrepresentable(`bytes not valid in code page ${nonUnicodeCodepage} (decoded as U+FFFD)`, v);
    }
    return v;
  });
}

function charsetClause(info: CollationInfo | null, flavor: TargetFlavor): string {
  const collation = info ? targetCollation(info, flavor) : 'utf8mb4_bin';
  return `CHARACTER SET utf8mb4 COLLATE ${collation}`;
}

/**
 * A SQL collation (SQL_Latin1_General_CP1_CI_AS, ...) compares non-Unicode data by its old sort
 * order, one character at a time: no expansions, nothing ignorable. 'a…' <> 'a...', 'x™' <> 'xTM'
 * and CHAR(160) <> CHAR(32) there, while utf8mb4_0900_as_ci and utf8mb4_uca1400_as_ci equate each
 * pair (the second is a compatibility form of the first, a third-level difference): a primary key
 * holding both would keep one row on the shard, REPLACE and upserts silently dropping the other.
 * No utf8mb4 collation compares as that sort order does, so such a key column takes utf8mb4_bin,
 * which equates only strings that differ in trailing spaces, as SQL Server does too (the rule the
 * MySQL type map follows for keys of a collation it only approximates: uniqueKeyCollationOf).
 */
function sqlSortOrderKey(info: CollationInfo | null): boolean {
  return info !== null && /^SQL_/i.test(info.name) && targetCollation(info) !== 'utf8mb4_bin';
}

function textTargetType(kind: 'char' | 'varchar' | 'max', length: number | undefined, clause: string): string {
  if (kind === 'max' || length === undefined || length < 0) return `LONGTEXT ${clause}`;
  if (kind === 'char' && length <= 255) return `CHAR(${length}) ${clause}`;
  if (length <= MAX_VARCHAR_CHARS) return `VARCHAR(${length}) ${clause}`;
  return `TEXT ${clause}`;
}

/**
 * char/varchar/text: read as bytes and decoded as Windows decodes the collation's code page
 * (decodeCodepage; tedious' own decoding differs for some characters). When this module does not
 * know that code page, SQL Server converts to Unicode itself (CAST to nvarchar), so no guess of
 * ours can garble the text. Keys are read as SQL Server's nvarchar text either way: a keyset bound
 * goes back through CAST(... AS varchar) under the column's collation, which gives the same bytes.
 */
function nonUnicodeText(kind: 'char' | 'varchar' | 'max'): Make {
  return (type, _column, flavor) => {
    const info = type.collation ? parseCollation(type.collation) : null;
    const max = kind === 'max' || (type.length ?? 0) < 0;
    // _UTF8 collations too: their bytes are checked (textConverter), where SQL Server's CAST gives U+FFFD.
    const decodedHere = info?.codepage !== undefined;
    const nType = max || (type.length ?? 0) > 4000 ? 'nvarchar(max)' : `nvarchar(${type.length})`;
    const asUnicode = (c: string) => `CAST(${c} AS ${nType})`;
    // text converts to varbinary through varchar(max).
    const asBytes = (c: string) => (max ? `CAST(CAST(${c} AS varchar(max)) AS varbinary(max))` : `CAST(${c} AS varbinary(${type.length}))`);
    const targetType = textTargetType(max ? 'max' : kind, type.length, charsetClause(info, flavor));
    const conversion: MssqlColumnConversion = {
      targetType,
      selectExpression: decodedHere ? asBytes : asUnicode,
      convert: textConverter(decodedHere ? info!.codepage! : null, targetType.startsWith('CHAR(')),
    };
    if (!max && sqlSortOrderKey(info)) conversion.keyTargetType = textTargetType(kind, type.length, 'CHARACTER SET utf8mb4 COLLATE utf8mb4_bin');
    if (!max && type.collation) {
      const collation = assertCollationName(type.collation);
      const sqlType = `${kind === 'char' ? 'char' : 'varchar'}(${type.length})`;
      // COLLATE before the CAST: nvarchar → varchar then uses the column's code page, not the database's.
      conversion.key = {
        param: 'nvarchar',
        castParam: (p) => `CAST(${p} COLLATE ${collation} AS ${sqlType})`,
        keyText: info?.utf8 ? identity : asUnicode,
      };
    }
    return conversion;
  };
}

function unicodeText(kind: 'char' | 'varchar' | 'max'): Make {
  return (type, _column, flavor) => {
    const info = type.collation ? parseCollation(type.collation) : null;
    const max = kind === 'max' || (type.length ?? 0) < 0;
    const targetType = textTargetType(max ? 'max' : kind, type.length, charsetClause(info, flavor));
    const conversion: MssqlColumnConversion = {
      targetType,
      selectExpression: identity,
      convert: textConverter(null, targetType.startsWith('CHAR(')),
    };
    if (!max) conversion.key = { param: 'nvarchar', castParam: identity, keyText: identity };
    return conversion;
  };
}

const xml: Make = () => ({
  targetType: 'LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin',
  selectExpression: (c) => `CAST(${c} AS nvarchar(max))`,
  convert: textConverter(null),
});

// ---- bytes ---------------------------------------------------------------------------------------

function bytesConverter(v: unknown): RowValue {
  if (!Buffer.isBuffer(v)) throw new TypeError(`expected bytes (Buffer), got ${typeof v}`);
  return v;
}

function binary(kind: 'binary' | 'varbinary' | 'max'): Make {
  return (type) => {
    const n = type.length ?? -1;
    const max = kind === 'max' || n < 0;
    let targetType: string;
    if (max) targetType = 'LONGBLOB';
    else if (kind === 'binary' && n <= 255) targetType = `BINARY(${n})`;
    else if (n <= MAX_VARBINARY_BYTES) targetType = `VARBINARY(${n})`;
    else targetType = 'BLOB';
    const conversion: MssqlColumnConversion = { targetType, selectExpression: identity, convert: nullOr(bytesConverter) };
    if (!max) {
      // Key text in the form every other side uses for bytes (lowercase hex, no 0x: valueText, the
      // MySQL side's X'..' literals); style 1's '0xAB12' made verify refuse every chunk bound.
      conversion.key = {
        param: 'nvarchar',
        castParam: (p) => `CONVERT(${kind}(${n}), ${p}, 2)`,
        keyText: (c) => `LOWER(CONVERT(varchar(max), ${c}, 2))`,
      };
    }
    return conversion;
  };
}

const rowversion: Make = () => ({ targetType: 'BINARY(8)', selectExpression: identity, convert: nullOr(bytesConverter) });

// ---- GUIDs ---------------------------------------------------------------------------------------

const GUID = /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/i;

/**
 * SQL Server's own text of the GUID (CONVERT(char(36), g)), upper case as SQL Server and Debezium
 * print it. Kept as CHAR(36) text, never BINARY(16): the binary forms of SQL Server and MySQL's
 * UUID_TO_BIN differ in byte order.
 */
const uniqueidentifier: Make = () => {
  const read = (c: string) => `CONVERT(char(36), ${c})`;
  return {
    targetType: 'CHAR(36) CHARACTER SET ascii COLLATE ascii_bin',
    selectExpression: read,
    convert: nullOr((v) => {
      if (typeof v !== 'string' || !GUID.test(v)) throw new TypeError(`not a GUID: ${String(v).slice(0, 40)}`);
      return v.toUpperCase();
    }),
    key: { param: 'nvarchar', castParam: (p) => `CAST(${p} AS uniqueidentifier)`, keyText: read },
  };
};

// ---- dates and times -----------------------------------------------------------------------------

const date: Make = () => {
  const read = (c: string) => `CONVERT(varchar(10), ${c}, 23)`;
  return {
    targetType: 'DATE',
    selectExpression: read,
    convert: nullOr(toMysqlDate),
    key: { param: 'nvarchar', castParam: (p) => `CONVERT(date, ${p}, 23)`, keyText: read },
  };
};

/** datetime keeps 1/300 s ticks; style 121 prints SQL Server's own millisecond form (.003, .007). */
const datetime: Make = () => {
  const read = (c: string) => `CONVERT(varchar(23), ${c}, 121)`;
  return {
    targetType: 'DATETIME(3)',
    selectExpression: read,
    convert: nullOr((v) => toMysqlDateTime(v, 3)),
    key: { param: 'nvarchar', castParam: (p) => `CONVERT(datetime, ${p}, 121)`, keyText: read },
  };
};

const smalldatetime: Make = () => {
  const read = (c: string) => `CONVERT(varchar(19), ${c}, 120)`;
  return {
    targetType: 'DATETIME',
    selectExpression: read,
    convert: nullOr((v) => toMysqlDateTime(v, 0)),
    key: { param: 'nvarchar', castParam: (p) => `CONVERT(smalldatetime, ${p}, 120)`, keyText: read },
  };
};

function fractionDigits(type: SourceType): number {
  return type.scale ?? 7;
}

const datetime2: Make = (type) => {
  const scale = fractionDigits(type);
  const fsp = Math.min(scale, 6);
  const read = (c: string) => `CONVERT(varchar(27), ${c}, 121)`;
  return {
    targetType: `DATETIME${fsp > 0 ? `(${fsp})` : ''}`,
    selectExpression: read,
    convert: nullOr((v) => toMysqlDateTime(v, fsp)),
    key: { param: 'nvarchar', castParam: (p) => `CONVERT(datetime2(${scale}), ${p}, 121)`, keyText: read },
  };
};

const time: Make = (type) => {
  const scale = fractionDigits(type);
  const fsp = Math.min(scale, 6);
  const read = (c: string) => `CAST(${c} AS varchar(16))`;
  return {
    targetType: `TIME${fsp > 0 ? `(${fsp})` : ''}`,
    selectExpression: read,
    convert: nullOr((v) => toMysqlTime(v, fsp)),
    key: { param: 'nvarchar', castParam: (p) => `CAST(${p} AS time(${scale}))`, keyText: read },
  };
};

/**
 * datetimeoffset: tedious drops the offset, so read the local wall clock (style 121) and the offset
 * in minutes, and keep the whole value as text 'YYYY-MM-DD hh:mm:ss.fffffff +hh:mm' (VARCHAR(34)):
 * lossless, 100 ns and year 0001 included. NULL stays NULL (the concatenation yields NULL).
 */
const datetimeoffset: Make = (type) => {
  const scale = fractionDigits(type);
  return {
    targetType: 'VARCHAR(34) CHARACTER SET ascii COLLATE ascii_bin',
    selectExpression: (c) => `CONVERT(varchar(27), CAST(${c} AS datetime2(${scale})), 121) + ' ' + CAST(DATEPART(TZOFFSET, ${c}) AS varchar(6))`,
    convert: nullOr((v) => toDatetimeoffsetText(v, scale)),
  };
};

// ---- other ---------------------------------------------------------------------------------------

const hierarchyid: Make = () => ({
  targetType: 'VARCHAR(4000) CHARACTER SET ascii COLLATE ascii_bin',
  selectExpression: (c) => `${c}.ToString()`,
  convert: textConverter(null),
});

const CONVERSIONS: Record<string, Make> = {
  bit,
  tinyint: integer('TINYINT UNSIGNED', 0n, 255n, 'tinyint'),
  smallint: integer('SMALLINT', -32768n, 32767n, 'smallint'),
  int: integer('INT', -2147483648n, 2147483647n, 'int'),
  bigint: integer('BIGINT', -9223372036854775808n, 9223372036854775807n, 'bigint'),
  decimal,
  numeric: decimal,
  money: money(19),
  smallmoney: money(10),
  real: float('FLOAT'),
  float: float('DOUBLE'),
  char: nonUnicodeText('char'),
  varchar: nonUnicodeText('varchar'),
  text: nonUnicodeText('max'),
  nchar: unicodeText('char'),
  nvarchar: unicodeText('varchar'),
  ntext: unicodeText('max'),
  sysname: unicodeText('varchar'),
  xml,
  binary: binary('binary'),
  varbinary: binary('varbinary'),
  image: binary('max'),
  timestamp: rowversion,
  rowversion,
  uniqueidentifier,
  date,
  datetime,
  smalldatetime,
  datetime2,
  time,
  datetimeoffset,
  hierarchyid,
};

/** SQL Server types this map refuses, with the reason (for docs and messages). */
export const REFUSED_TYPES: Record<string, string> = {
  sql_variant: 'needs a base-type column beside it (SQL_VARIANT_PROPERTY)',
  geography: 'needs STAsBinary() and an SRID on the target',
  geometry: 'needs STAsBinary() and an SRID on the target',
};
