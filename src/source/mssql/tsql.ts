import type { MssqlKeyBinding } from '../../rows/mssql/typemap.js';

/**
 * The T-SQL the SQL Server reader sends, as pure functions of plain data so that tests can check
 * the exact text. Identifiers are always bracket-quoted; values are always parameters.
 */

/** [name] with ] doubled: a name can never break out of its brackets. */
export function quoteName(name: string): string {
  if (name.length === 0 || name.length > 128) throw new Error(`SQL Server identifier must have 1..128 characters: "${name.slice(0, 40)}"`);
  if (name.includes('\0')) throw new Error('identifier contains a NUL byte');
  return '[' + name.replace(/]/g, ']]') + ']';
}

export function quoteTable(schema: string, table: string): string {
  return `${quoteName(schema)}.${quoteName(table)}`;
}

/** 'lsn' is binary(10), for LSNs and seqvals. */
export type ParamType = MssqlKeyBinding['param'] | 'bigint' | 'lsn';

export interface SqlParam {
  name: string;
  type: ParamType;
  value: string | number | Buffer;
}

export interface SqlStatement {
  text: string;
  params: SqlParam[];
}

// ---- catalog -------------------------------------------------------------------------------------

/** The table or view by schema and name; names compare in the database's collation, as SQL Server does. */
export const FIND_OBJECT_SQL = `SELECT o.object_id, o.type
FROM sys.objects AS o
JOIN sys.schemas AS s ON s.schema_id = o.schema_id
WHERE s.name = @schema AND o.name = @table AND o.type IN ('U', 'V')`;

/**
 * Columns with their type. An alias type (and sysname) is reported as its base system type;
 * CLR types (hierarchyid, geometry, geography) by their own name, since their system_type_id is shared.
 */
export const DESCRIBE_COLUMNS_SQL = `SELECT c.column_id, c.name AS column_name,
  CASE WHEN c.user_type_id <> c.system_type_id AND t.is_assembly_type = 0 THEN TYPE_NAME(c.system_type_id) ELSE t.name END AS type_name,
  c.max_length, c.precision, c.scale, c.collation_name, c.is_nullable, c.is_computed
FROM sys.columns AS c
JOIN sys.types AS t ON t.user_type_id = c.user_type_id
WHERE c.object_id = @object_id
ORDER BY c.column_id`;

/** Primary-key columns in key order. */
export const PRIMARY_KEY_SQL = `SELECT ic.key_ordinal, c.name AS column_name
FROM sys.indexes AS i
JOIN sys.index_columns AS ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id
JOIN sys.columns AS c ON c.object_id = ic.object_id AND c.column_id = ic.column_id
WHERE i.object_id = @object_id AND i.is_primary_key = 1 AND ic.key_ordinal > 0
ORDER BY ic.key_ordinal`;

/** The position `full` records before its first read: replay starts after it. NULL when CDC is off. */
export const MAX_LSN_SQL = 'SELECT sys.fn_cdc_get_max_lsn() AS max_lsn';

/**
 * The capture instances this login may read: all for db_owner; for another login those whose
 * captured columns it may SELECT and whose gating role it holds. Microsoft's interface for readers:
 * the cdc schema's tables (cdc.change_tables, cdc.captured_columns) need rights on that schema,
 * which the least-privilege account does not have. Up to two rows per table. Their columns come
 * from sys.sp_cdc_get_captured_columns (CAPTURED_COLUMNS_SQL in src/cdc/mssql/tsql.ts), one row per
 * column, rather than from captured_column_list, whose text form the docs do not specify.
 */
export const CAPTURE_INSTANCES_SQL = 'EXEC sys.sp_cdc_help_change_data_capture';

/** The columns of CAPTURE_INSTANCES_SQL's rows that membermig reads. */
export interface CaptureInstanceRow {
  source_schema: string;
  source_table: string;
  capture_instance: string;
  /** The instance's first LSN; NULL until the capture job has passed its creation. */
  start_lsn: Buffer | null;
}

/**
 * Why the capture job is not yet past every capture instance's start, or null when it is. An
 * instance whose first LSN is still NULL was created after the job's last scan: it is the newest
 * of all, and a start position taken now could lie before its window.
 */
export function captureJobBehind(rows: Pick<CaptureInstanceRow, 'capture_instance' | 'start_lsn'>[], maxLsn: Buffer): string | null {
  const unstarted = rows.find((r) => r.start_lsn === null);
  if (unstarted) return `capture instance ${unstarted.capture_instance} has no first LSN yet`;
  let newest: Pick<CaptureInstanceRow, 'capture_instance' | 'start_lsn'> | null = null;
  for (const r of rows) if (!newest || Buffer.compare(r.start_lsn!, newest.start_lsn!) > 0) newest = r;
  if (newest && Buffer.compare(newest.start_lsn!, maxLsn) > 0) return `capture instance ${newest.capture_instance} starts at LSN ${newest.start_lsn!.toString('hex')}, past the max LSN ${maxLsn.toString('hex')}`;
  return null;
}

/** sys.columns.max_length is in bytes: nchar/nvarchar hold 2 bytes per UTF-16 unit; -1 is MAX. */
export function characterLength(typeName: string, maxLength: number): number {
  if (maxLength < 0) return -1;
  return ['nchar', 'nvarchar', 'sysname'].includes(typeName.toLowerCase()) ? maxLength / 2 : maxLength;
}

// ---- keyset pages --------------------------------------------------------------------------------

export interface KeyColumn {
  /** Bracket-quoted column name. */
  quoted: string;
  binding: MssqlKeyBinding;
}

/** (a > @p0) OR (a = @p0 AND b > @p1) ...; `last` is the comparison for the last column. */
function keyComparison(keys: KeyColumn[], prefix: string, strict: '>' | '<', last: string): string {
  const param = (i: number) => keys[i]!.binding.castParam(`@${prefix}${i}`);
  const terms = keys.map((_k, i) => {
    const equal = keys.slice(0, i).map((k, j) => `${k.quoted} = ${param(j)}`);
    const op = i === keys.length - 1 ? last : strict;
    return [...equal, `${keys[i]!.quoted} ${op} ${param(i)}`].join(' AND ');
  });
  return terms.length === 1 ? `(${terms[0]})` : '(' + terms.map((t) => `(${t})`).join(' OR ') + ')';
}

/** Rows after `lower` (exclusive). */
export function afterKey(keys: KeyColumn[], prefix = 'l'): string {
  return keyComparison(keys, prefix, '>', '>');
}

/** Rows up to `upper` (inclusive). */
export function upToKey(keys: KeyColumn[], prefix = 'u'): string {
  return keyComparison(keys, prefix, '<', '<=');
}

function keyParams(keys: KeyColumn[], prefix: string, values: string[] | null): SqlParam[] {
  if (values === null) return [];
  if (values.length !== keys.length) throw new Error(`a key of ${keys.length} columns got ${values.length} values`);
  return keys.map((k, i) => ({
    name: `${prefix}${i}`,
    type: k.binding.param,
    value: k.binding.param === 'nvarchar' ? values[i]! : Number(values[i]),
  }));
}

function whereClause(keys: KeyColumn[], lower: string[] | null, upper: string[] | null): string {
  const conditions = [lower ? afterKey(keys) : null, upper ? upToKey(keys) : null].filter((c): c is string => c !== null);
  return conditions.length > 0 ? `\nWHERE ${conditions.join('\n  AND ')}` : '';
}

/** WHERE clause and parameters of the key range (lower, upper], as every keyset read binds them. */
export function keyRange(keys: KeyColumn[], lower: string[] | null, upper: string[] | null): { where: string; params: SqlParam[] } {
  return { where: whereClause(keys, lower, upper), params: [...keyParams(keys, 'l', lower), ...keyParams(keys, 'u', upper)] };
}

export interface PageQuery {
  table: string;
  /** SELECT expressions of the row's columns, in TableSpec order; aliased [c0], [c1], ... */
  columns: string[];
  keys: KeyColumn[];
  lower: string[] | null;
  upper: string[] | null;
  limit: number;
}

/**
 * One keyset page: the next `limit` rows after `lower`, up to `upper`, in key order. The key
 * columns are also selected as key text ([k0], ...) so the next page can start after the last row.
 */
export function pageQuery(q: PageQuery): SqlStatement {
  const range = keyRange(q.keys, q.lower, q.upper);
  const select = [
    ...q.columns.map((expr, i) => `${expr} AS [c${i}]`),
    ...q.keys.map((k, i) => `${k.binding.keyText(k.quoted)} AS [k${i}]`),
  ];
  const text =
    `SELECT TOP (@limit) ${select.join(', ')}\nFROM ${q.table}` +
    range.where +
    `\nORDER BY ${q.keys.map((k) => k.quoted).join(', ')}`;
  return { text, params: [{ name: 'limit', type: 'int', value: q.limit }, ...range.params] };
}

/** SQL Server takes at most 2,100 parameters per request. */
export const MAX_PARAMS = 2000;

/**
 * The rows with these primary keys, in one statement (at most MAX_PARAMS key values): each key is
 * an AND of its columns, bound as the keyset pages bind them (so collations and 64-bit keys are exact).
 */
export function rowsByKeyQuery(q: { table: string; columns: string[]; keys: KeyColumn[]; values: string[][] }): SqlStatement {
  if (q.values.length * q.keys.length > MAX_PARAMS) throw new Error(`${q.values.length} keys of ${q.keys.length} columns exceed ${MAX_PARAMS} parameters`);
  const select = [...q.columns.map((expr, i) => `${expr} AS [c${i}]`), ...q.keys.map((k, i) => `${k.binding.keyText(k.quoted)} AS [k${i}]`)];
  const terms = q.values.map((_v, r) => '(' + q.keys.map((k, i) => `${k.quoted} = ${k.binding.castParam(`@r${r}_${i}`)}`).join(' AND ') + ')');
  const text = `SELECT ${select.join(', ')}\nFROM ${q.table}\nWHERE ${terms.join('\n   OR ')}`;
  return { text, params: q.values.flatMap((v, r) => keyParams(q.keys, `r${r}_`, v)) };
}

// ---- chunks of an integer key by value (src/source/value-ranges.ts) -----------------------------

/** The table's rows as its heap or clustered index's partitions count them: kept by the engine, nothing read. */
export const TABLE_ROWS_SQL = `SELECT SUM(p.rows) AS n
FROM sys.partitions AS p
WHERE p.object_id = OBJECT_ID(@table) AND p.index_id IN (0, 1)`;

/** Smallest and largest value of a single integer key after `lower`, as text ([lo], [hi]; NULL when none). */
export function keySpanQuery(table: string, key: KeyColumn, lower: string[] | null): SqlStatement {
  const range = keyRange([key], lower, null);
  return { text: `SELECT CONVERT(varchar(20), MIN(${key.quoted})) AS lo, CONVERT(varchar(20), MAX(${key.quoted})) AS hi\nFROM ${table}` + range.where, params: range.params };
}

/**
 * The statistics histogram of the primary key's index (an index's stats_id is its index_id): up to
 * 200 steps, each with the rows equal to its high key and the rows between it and the step before.
 * The high key is a sql_variant, read as digits. sys.dm_db_stats_histogram: SQL Server 2016 SP1 CU2
 * and later; it needs SELECT on the key column (the reader has it) or ownership of the table.
 */
export const KEY_HISTOGRAM_SQL = `SELECT CONVERT(varchar(40), CONVERT(decimal(38, 0), h.range_high_key)) AS high_key, h.range_rows, h.equal_rows
FROM sys.indexes AS i
CROSS APPLY sys.dm_db_stats_histogram(i.object_id, i.index_id) AS h
WHERE i.object_id = OBJECT_ID(@table) AND i.is_primary_key = 1
ORDER BY h.step_number`;

/** The key `rows` rows after `lower` (the inclusive upper bound of the next chunk), or no row at the end. */
export function boundaryQuery(table: string, keys: KeyColumn[], lower: string[] | null, rows: number): SqlStatement {
  const text =
    `SELECT ${keys.map((k, i) => `${k.binding.keyText(k.quoted)} AS [k${i}]`).join(', ')}\nFROM ${table}` +
    whereClause(keys, lower, null) +
    `\nORDER BY ${keys.map((k) => k.quoted).join(', ')}\nOFFSET @skip ROWS FETCH NEXT 1 ROWS ONLY`;
  return { text, params: [{ name: 'skip', type: 'int', value: rows - 1 }, ...keyParams(keys, 'l', lower)] };
}
