import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { roundTrips, unpadded } from './mysql.js';
import type { ColumnSpec, Row, RowValue, SourceType } from './types.js';

/**
 * The canonical row form and its hash: the one definition every comparison of rows uses
 * (verify's chunk checksums, drill-down and re-checks). It is defined on the target form of a
 * row (src/rows/types.ts) and can be computed three ways that must agree byte for byte:
 * in Node from a Row, in MySQL/MariaDB SQL over a shard table or a MySQL legacy table, and in
 * T-SQL over a SQL Server table.
 *
 * Canonical bytes of a row: the canonical bytes of each column, joined by 0xFF.
 * Canonical bytes of a value:
 * - NULL: the single byte 0xFE;
 * - text: its UTF-8 bytes, exactly (no trimming, no case folding: 'a' ≠ 'A' ≠ 'a ');
 * - bytes: upper-case hex (so a value can never contain 0xFE/0xFF);
 * - BIT: its unsigned decimal value;
 * - everything else (integers, decimals, dates and times, YEAR): the target's literal text,
 *   e.g. '1.50' for DECIMAL(10,2), '2024-01-01 00:00:00.000100' for DATETIME(6).
 * UTF-8 text never contains the bytes 0xFE or 0xFF, and hex and literal text are ASCII, so the
 * form is unambiguous: NULL ≠ '' ≠ '\N', and no two different rows share canonical bytes.
 *
 * Row hash (`CanonicalHash`):
 * - crc32: CRC-32 (IEEE, MySQL's CRC32()) of the row's canonical bytes plus 1, multiplied by the
 *   key multiplier: the CRC-32 of its key's canonical bytes with its low `keyBits` bits set (odd),
 *   an unsigned 64-bit product (at most 2^32 x (2^32 - 1)). The 1 keeps a row whose CRC-32 is 0
 *   from a product of 0, which would hide its multiplier (and with it a wrong shard). CRC-32
 *   alone is linear: two rows of the same shape with the same edit
 *   (the same digit changed at the same offset) change their CRCs by the same bits, so XOR or SUM
 *   of row CRCs can cancel out exactly, and such edits are common in real data. The per-key odd
 *   multiplier breaks that symmetry for a few percent of the cost, where MD5 costs 3-4× a bare
 *   CRC32(CONCAT_WS(...)). keyBits is 1, or log2 of the shard count where those low bits are the
 *   key's shard (src/verify/sql.ts, shardBitsInMultiplier): a shard then forms the multiplier from
 *   its own number instead (mysqlRowHash), so a row on a wrong shard changes that shard's digest
 *   with no per-row routing check.
 * - md5: the first 8 bytes of MD5, as an unsigned big-endian 64-bit number (non-linear). SQL
 *   Server has no CRC32 but has HASHBYTES('MD5'), so a SQL Server legacy side is compared with
 *   md5 on both sides.
 *
 * A key range's checksum is (row count, digest), the digest combining the row hashes in an
 * order-independent way that also combines across shards and sub-ranges:
 * - crc32: BIT_XOR. Cheapest in the databases (a SUM accumulates in DECIMAL, ~15% slower over a
 *   chunk). XOR's known weakness, a row present twice cancelling itself out, cannot hide a
 *   difference here: a key is unique within the legacy table and within each shard table, and a
 *   key present on two shards is on a shard the map does not route it to, which verify checks
 *   separately per shard (misrouted rows) and treats as a mismatch by itself.
 * - md5: the exact SUM (DECIMAL in MySQL, two 32-bit halves in T-SQL), since SQL Server has no
 *   XOR aggregate; nothing rounds or wraps on either side.
 * For a single changed row the digest changes unless the two row hashes collide (CRC-32: never for
 * a change of up to 3 bits or a burst of up to 32 bits, else 2^-32); the count catches rows
 * missing or extra whatever their hashes.
 */

export type CanonicalHash = 'crc32' | 'md5';

/**
 * How a column's value turns into canonical bytes; derived from the column's target type.
 * float/double: the text the server gives for `column * 1e0` (see doubleText); a FLOAT's value
 * is its 4-byte float widened, so every side, SQL or Node, prints the same exact double.
 */
export type CanonicalKind = 'text' | 'bytes' | 'bit' | 'float' | 'double' | 'literal';

const TEXT_TYPES = /^(char|varchar|tinytext|text|mediumtext|longtext|enum|set|json)\b/;
const BYTE_TYPES = /^(binary|varbinary|tinyblob|blob|mediumblob|longblob)\b/;

export function canonicalKind(targetType: string): CanonicalKind {
  const t = targetType.trim().toLowerCase();
  if (TEXT_TYPES.test(t)) return 'text';
  if (BYTE_TYPES.test(t)) return 'bytes';
  if (/^bit\b/.test(t)) return 'bit';
  if (/^(double|real)\b/.test(t)) return 'double';
  // FLOAT(p) with p > 24 is a DOUBLE.
  if (/^float\b/.test(t)) return Number(/^float\s*\(\s*(\d+)\s*\)/.exec(t)?.[1] ?? 0) > 24 ? 'double' : 'float';
  return 'literal';
}

/**
 * A double as MariaDB/MySQL print a DOUBLE expression: the shortest digits that read back to
 * the same double, in plain notation unless the number is below 1e-15, or holds 16 or more
 * integer digits and no fraction (then d.ddde±x, the exponent without '+'); -0 prints as 0.
 * Checked against MariaDB 10.11 over 10,000 values of every magnitude (src/rows/canonical.test.ts).
 */
export function doubleText(value: number): string {
  if (!Number.isFinite(value)) throw new TypeError(`not a finite number: ${value}`);
  if (value === 0) return '0';
  const sign = value < 0 ? '-' : '';
  const [mantissa, exponent] = Math.abs(value).toExponential().split('e') as [string, string];
  const digits = mantissa.replace('.', '');
  const decimalPoint = Number(exponent) + 1; // digits before the point (negative: zeros after it)
  if (decimalPoint < -14 || (decimalPoint > 15 && digits.length <= decimalPoint)) {
    return `${sign}${digits[0]}${digits.length > 1 ? `.${digits.slice(1)}` : ''}e${decimalPoint - 1}`;
  }
  if (decimalPoint <= 0) return `${sign}0.${'0'.repeat(-decimalPoint)}${digits}`;
  if (decimalPoint >= digits.length) return `${sign}${digits}${'0'.repeat(decimalPoint - digits.length)}`;
  return `${sign}${digits.slice(0, decimalPoint)}.${digits.slice(decimalPoint)}`;
}

const NULL_BYTE = Buffer.from([0xfe]);
const SEPARATOR = Buffer.from([0xff]);

/** Canonical bytes of one value of a column of the given kind. */
export function canonicalValue(kind: CanonicalKind, value: RowValue | number | bigint): Buffer {
  if (value === null) return NULL_BYTE;
  switch (kind) {
    case 'bytes':
      return Buffer.from((Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'utf8')).toString('hex').toUpperCase(), 'ascii');
    case 'bit': {
      const hex = Buffer.isBuffer(value) ? value.toString('hex') : '';
      return Buffer.from(Buffer.isBuffer(value) ? (hex.length === 0 ? '0' : BigInt('0x' + hex).toString()) : String(value), 'ascii');
    }
    case 'float':
      return Buffer.from(doubleText(Math.fround(Number(value))), 'ascii');
    case 'double':
      return Buffer.from(doubleText(Number(value)), 'ascii');
    default:
      return Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'utf8');
  }
}

/** Canonical bytes of a row whose values are in `kinds` order. */
export function canonicalRow(kinds: CanonicalKind[], row: Row): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < kinds.length; i++) {
    if (i > 0) parts.push(SEPARATOR);
    parts.push(canonicalValue(kinds[i]!, row[i] ?? null));
  }
  return Buffer.concat(parts);
}

/** The row hash of canonical bytes, as an unsigned integer. */
export function hashCanonical(hash: CanonicalHash, bytes: Buffer): bigint {
  if (hash === 'crc32') return BigInt(crc32(bytes));
  return createHash('md5').update(bytes).digest().readBigUInt64BE(0);
}

/** The low bits set in the crc32 key multiplier: 2^keyBits - 1. */
export const keyMask = (keyBits: number): number => 2 ** keyBits - 1;

/**
 * A row's hash. `keyAt` are the positions of the primary key columns and `keyBits` the low bits
 * set in the key multiplier (only crc32 uses them).
 */
export function rowHash(hash: CanonicalHash, kinds: CanonicalKind[], row: Row, keyAt: number[], keyBits = 1): bigint {
  const rowCrc = hashCanonical(hash, canonicalRow(kinds, row));
  if (hash !== 'crc32') return rowCrc;
  const keyCrc = hashCanonical('crc32', canonicalRow(keyAt.map((i) => kinds[i]!), keyAt.map((i) => row[i] ?? null)));
  return (rowCrc + 1n) * (keyCrc | BigInt(keyMask(keyBits)));
}

/** A key range's checksum: row count and the digest of its row hashes (XOR for crc32, SUM for md5). */
export interface RangeChecksum {
  count: number;
  digest: bigint;
}

export const emptyChecksum = (): RangeChecksum => ({ count: 0, digest: 0n });

/** Folds one more row hash into a digest. */
export function foldHash(hash: CanonicalHash, digest: bigint, rowHashValue: bigint): bigint {
  return hash === 'crc32' ? digest ^ rowHashValue : digest + rowHashValue;
}

export function combineChecksums(hash: CanonicalHash, a: RangeChecksum, b: RangeChecksum): RangeChecksum {
  return { count: a.count + b.count, digest: foldHash(hash, a.digest, b.digest) };
}

export function sameChecksum(a: RangeChecksum, b: RangeChecksum): boolean {
  return a.count === b.count && a.digest === b.digest;
}

/** The canonical kinds of a table's columns, in spec order. */
export function canonicalKinds(columns: ColumnSpec[]): CanonicalKind[] {
  return columns.map((c) => canonicalKind(c.targetType));
}

/** Names of the columns whose canonical values differ between two rows of the same spec. */
export function differingColumns(columns: ColumnSpec[], a: Row, b: Row): string[] {
  const kinds = canonicalKinds(columns);
  return columns.filter((_c, i) => !canonicalValue(kinds[i]!, a[i] ?? null).equals(canonicalValue(kinds[i]!, b[i] ?? null))).map((c) => c.target);
}

// ---------------------------------------------------------------------------------------------
// SQL: the same bytes and hash computed by MySQL/MariaDB.

/**
 * Character sets whose bytes are already UTF-8 (no conversion needed for canonical text). Not
 * ascii: MariaDB keeps any byte in an ascii column, and X'FE' there read as the NULL marker.
 */
const UTF8_CHARSETS = new Set(['utf8mb4', 'utf8mb3', 'utf8']);

/**
 * MySQL expression for one column's canonical bytes. `sourceType` is given for a MySQL legacy
 * column (its character set may need converting to UTF-8); omit it for a shard column (utf8mb4).
 */
export function mysqlCanonicalValue(quotedColumn: string, column: Pick<ColumnSpec, 'targetType' | 'nullable'>, sourceType?: SourceType): string {
  const kind = canonicalKind(column.targetType);
  let expr: string;
  let mayOutgrowPacket = false;
  switch (kind) {
    case 'bytes':
      expr = `HEX(${quotedColumn})`;
      mayOutgrowPacket = true;
      break;
    case 'bit':
      expr = `CAST(${quotedColumn} AS UNSIGNED)`;
      break;
    case 'text':
      // Bytes with no utf8mb4 form would convert to '?', equal to a shard's '?': they get 0xFD + hex
      // instead, which no UTF-8 text starts with (the copy flags them unrepresentable the same way).
      mayOutgrowPacket = sourceType?.charset !== undefined && !UTF8_CHARSETS.has(sourceType.charset);
      expr = mayOutgrowPacket
        ? `IF(${roundTrips(quotedColumn, sourceType!.charset!)}, CONVERT(${quotedColumn} USING utf8mb4), CONCAT(CAST(0xFD AS BINARY), HEX(${quotedColumn})))`
        : quotedColumn;
      // ENUM's error value (index 0) prints as '', like a real '' member a shard may hold: 0xFD alone.
      if (sourceType?.dataType === 'enum') expr = `IF(${quotedColumn} + 0 = 0, CAST(0xFD AS BINARY), ${expr})`;
      break;
    case 'float':
    case 'double':
      // A FLOAT column prints with 6 digits, and DOUBLE(M,D) with D: times 1e0 is the exact double.
      expr = `(${quotedColumn} * 1e0)`;
      break;
    default:
      expr = sourceType ? unpadded(quotedColumn, sourceType) : quotedColumn;
  }
  // CONCAT_WS skips NULLs, so a nullable value needs an explicit marker. The marker is a binary
  // string: a text literal 0xFE would be converted to the column's character set and refused.
  if (!mayOutgrowPacket) return column.nullable ? `IFNULL(${expr}, CAST(0xFE AS BINARY))` : expr;
  // HEX() or CONVERT() of a value whose result outgrows max_allowed_packet is NULL (a warning
  // only): it must not hash as NULL does, nor drop out of CONCAT_WS. See UNHASHABLE_VALUE.
  const given = `COALESCE(${expr}, ${UNHASHABLE_VALUE})`;
  return column.nullable ? `IF(${quotedColumn} IS NULL, CAST(0xFE AS BINARY), ${given})` : given;
}

/**
 * A value too large for the server to give in canonical form: random bytes after 0xFC (which
 * neither UTF-8 nor hex holds), different on each side, so the row's chunk drills down to the row
 * and Node compares its full values, as for an UNHASHABLE_ROW.
 */
const UNHASHABLE_VALUE = 'CONCAT(CAST(0xFC AS BINARY), RAND())';

/**
 * MySQL expression for a row's canonical bytes. The separator is a binary string, which makes the
 * whole result binary: bytes kept as they are, no collation mixing, no conversion of 0xFF into
 * the text columns' character set (a plain 0xFF literal is converted, and refused as utf8mb4).
 */
export function mysqlCanonicalRow(values: string[]): string {
  // One value (a single-column key) is its own canonical bytes; CONCAT_WS would only cost time per row.
  if (values.length === 1) return values[0]!;
  return `CONCAT_WS(CAST(0xFF AS BINARY), ${values.join(', ')})`;
}

/** MySQL aggregate of row hashes over a range: the digest (0 for no rows). */
export function mysqlDigest(hash: CanonicalHash, rowHashSql: string): string {
  return hash === 'crc32' ? `BIT_XOR(${rowHashSql})` : `COALESCE(SUM(${rowHashSql}), 0)`;
}

/**
 * MySQL expression for a row's hash (an unsigned integer), from its canonical row and key
 * expressions. With `shard`, the key multiplier is formed on a shard whose rows' low keyBits of
 * the key's CRC-32 should equal that shard's number: CRC XOR (shard XOR mask) equals CRC | mask
 * exactly for those rows, and differs for a row that belongs elsewhere.
 */
export function mysqlRowHash(hash: CanonicalHash, canonicalRowSql: string, canonicalKeySql: string, keyBits = 1, shard?: number): string {
  if (hash === 'crc32') {
    const mask = keyMask(keyBits);
    const multiplier = shard === undefined ? `(CRC32(${canonicalKeySql}) | ${mask})` : `(CRC32(${canonicalKeySql}) ^ ${shard ^ mask})`;
    return `COALESCE((CRC32(${canonicalRowSql}) + 1) * ${multiplier}, ${UNHASHABLE_ROW})`;
  }
  return `COALESCE(CAST(CONV(LEFT(MD5(${canonicalRowSql}), 16), 16, 10) AS UNSIGNED), ${UNHASHABLE_ROW})`;
}

/**
 * The hash of a row whose canonical bytes outgrow max_allowed_packet: the server makes such a
 * HEX() or CONCAT_WS() NULL (a warning, not an error), and NULL hashes drop out of BIT_XOR and
 * SUM, so two different large rows passed as equal. A random number instead differs on each side:
 * the row's chunk always drills down to the row, whose full values Node then compares.
 */
const UNHASHABLE_ROW = 'CAST(FLOOR(RAND() * 18446744073709551615) AS UNSIGNED)';

// ---------------------------------------------------------------------------------------------
// T-SQL: the same bytes and the md5 hash computed by SQL Server (2019 or later: UTF-8 collations).

/** Text to UTF-8 bytes: nvarchar → varchar under a UTF-8 collation is UTF-8 encoding (SQL Server 2019+). */
const UTF8 = (e: string) => `CAST(CAST(CAST(${e} AS nvarchar(max)) COLLATE Latin1_General_100_BIN2_UTF8 AS varchar(max)) AS varbinary(max))`;
const ASCII = (e: string) => `CAST(${e} AS varbinary(max))`;

/**
 * T-SQL expression for one SQL Server column's canonical bytes (varbinary), matching the
 * canonical bytes of the value the row pipeline writes into the MySQL column `targetType`.
 * Undefined when no T-SQL expression yields exactly those bytes (float, real, sql_variant,
 * xml, ...): such a table is then hashed in Node from the rows the reader converts.
 */
export function mssqlCanonicalValue(quotedColumn: string, sourceType: SourceType, nullable: boolean): string | undefined {
  const c = quotedColumn;
  const dt = sourceType.dataType.toLowerCase();
  const frac = (p: number | undefined) => Math.min(p ?? 7, 6);
  let expr: string | undefined;
  switch (dt) {
    case 'tinyint':
    case 'smallint':
    case 'int':
    case 'bigint':
      expr = ASCII(`CONVERT(varchar(20), ${c})`);
      break;
    case 'bit':
      expr = ASCII(`CONVERT(varchar(1), ${c})`);
      break;
    case 'decimal':
    case 'numeric': {
      const text = `CONVERT(varchar(50), ${c})`;
      // A decimal(p,p) prints without its leading zero ('.50000', '-.50000'), which the copy writes and MySQL prints.
      expr = ASCII(sourceType.scale !== undefined && sourceType.scale === sourceType.precision ? `CASE WHEN ${c} < 0 THEN '-0' + SUBSTRING(${text}, 2, 50) ELSE '0' + ${text} END` : text);
      break;
    }
    case 'money':
    case 'smallmoney':
      // Four decimals, no thousands separators: the text of DECIMAL(19,4) / DECIMAL(10,4).
      expr = ASCII(`CAST(CAST(${c} AS decimal(${dt === 'money' ? 19 : 10},4)) AS varchar(30))`);
      break;
    case 'date':
      expr = ASCII(`CONVERT(varchar(10), ${c}, 23)`);
      break;
    case 'datetime':
      expr = ASCII(`CONVERT(varchar(23), ${c}, 121)`);
      break;
    case 'smalldatetime':
      expr = ASCII(`CONVERT(varchar(19), ${c}, 120)`);
      break;
    case 'datetime2': {
      // DATETIME(min(p,6)) text: 19 characters, then '.' and the fraction when p > 0.
      const p = frac(sourceType.scale ?? sourceType.precision);
      expr = ASCII(p === 0 ? `CONVERT(varchar(19), ${c}, 120)` : `LEFT(CONVERT(varchar(27), ${c}, 121), ${20 + p})`);
      break;
    }
    case 'time': {
      // Style 121 (time's default) is hh:mi:ss.fffffff; 114 would put a colon before 3 digits.
      const p = frac(sourceType.scale ?? sourceType.precision);
      expr = ASCII(`LEFT(CONVERT(varchar(16), ${c}, 121), ${p === 0 ? 8 : 9 + p})`);
      break;
    }
    case 'char':
    case 'nchar':
      // A MySQL CHAR (up to 255) drops trailing spaces, SQL Server pads them; longer ones map to VARCHAR and keep them.
      expr = UTF8((sourceType.length ?? 0) > 0 && sourceType.length! <= 255 ? `RTRIM(${c})` : c);
      break;
    case 'varchar':
    case 'nvarchar':
    case 'text':
    case 'ntext':
      expr = UTF8(c);
      break;
    case 'uniqueidentifier':
      expr = ASCII(`UPPER(CONVERT(char(36), ${c}))`);
      break;
    case 'binary':
    case 'varbinary':
    case 'image':
    case 'rowversion':
    case 'timestamp':
      // Style 2: upper-case hex without 0x, as MySQL's HEX().
      expr = ASCII(`CONVERT(varchar(max), CAST(${c} AS varbinary(max)), 2)`);
      break;
    default:
      return undefined;
  }
  return nullable ? `ISNULL(${expr}, 0xFE)` : expr;
}

/** T-SQL expression for a row's canonical bytes. */
export function mssqlCanonicalRow(values: string[]): string {
  return values.join(' + 0xFF + ');
}
