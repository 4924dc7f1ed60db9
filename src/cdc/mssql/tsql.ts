import { quoteName, type SqlStatement } from '../../source/mssql/tsql.js';
import type { Lsn } from './lsn.js';

/**
 * The T-SQL of the direct CDC source, as pure functions (tested exactly). LSNs and seqvals are
 * bound as binary(10) parameters.
 */

/** Low end of the instance's window; 0x00…00 when the instance is missing or the caller lacks rights. */
export const MIN_LSN_SQL = 'SELECT sys.fn_cdc_get_min_lsn(@instance) AS min_lsn';

/** The highest LSN the capture job has processed (database-wide). */
export const MAX_LSN_SQL = 'SELECT sys.fn_cdc_get_max_lsn() AS max_lsn';

/** Every capture instance of a table: a second one appears when someone prepares a schema change. */
export const TABLE_INSTANCES_SQL = `SELECT ct.capture_instance, ct.start_lsn, ct.create_date
FROM cdc.change_tables AS ct
WHERE ct.source_object_id = OBJECT_ID(@table)
ORDER BY ct.create_date`;

/** The source columns an instance captures (new columns added after it was created are missing). */
export const CAPTURED_COLUMNS_SQL = `SELECT cc.column_name
FROM cdc.captured_columns AS cc
JOIN cdc.change_tables AS ct ON ct.object_id = cc.object_id
WHERE ct.capture_instance = @instance
ORDER BY cc.column_ordinal`;

/** Computed columns of the source table: CDC always records NULL for them. */
export const COMPUTED_COLUMNS_SQL = `SELECT c.name AS column_name FROM sys.columns AS c WHERE c.object_id = OBJECT_ID(@table) AND c.is_computed = 1`;

export interface ChangesQuery {
  instance: string;
  /** SELECT expressions of the spec's columns over the function's output, aliased [c0], [c1], ... */
  columns: string[];
  from: Lsn;
  to: Lsn;
  /** Resume inside a transaction: only rows after (lsn, seqval). */
  after: { lsn: Lsn; seqval: Lsn } | null;
  limit: number;
}

/**
 * One page of changes in log order. `all update old` gives the before-image (op 3) of every update
 * right before its after-image (op 4), with the same start_lsn and seqval, so sorting by operation
 * keeps the pair together. Commit time comes back as ms since the epoch in UTC (lsn_time_mapping
 * holds server-local time).
 */
export function changesQuery(q: ChangesQuery): SqlStatement {
  const fn = `cdc.${quoteName(`fn_cdc_get_all_changes_${q.instance}`)}`;
  const select = [
    '__$start_lsn AS [__start_lsn]',
    '__$seqval AS [__seqval]',
    '__$operation AS [__operation]',
    "DATEDIFF_BIG(millisecond, '19700101', DATEADD(minute, -DATEPART(TZOFFSET, SYSDATETIMEOFFSET()), sys.fn_cdc_map_lsn_to_time(__$start_lsn))) AS [__ts_ms]",
    ...q.columns.map((expr, i) => `${expr} AS [c${i}]`),
  ];
  const where = q.after ? '\nWHERE __$start_lsn > @after_lsn OR (__$start_lsn = @after_lsn AND __$seqval > @after_seqval)' : '';
  const text =
    `SELECT TOP (@limit) ${select.join(', ')}\nFROM ${fn}(@from_lsn, @to_lsn, N'all update old')` +
    where +
    '\nORDER BY __$start_lsn, __$seqval, __$operation';
  const params: SqlStatement['params'] = [
    { name: 'limit', type: 'int', value: q.limit },
    { name: 'from_lsn', type: 'lsn', value: q.from.toBuffer() },
    { name: 'to_lsn', type: 'lsn', value: q.to.toBuffer() },
  ];
  if (q.after) {
    params.push({ name: 'after_lsn', type: 'lsn', value: q.after.lsn.toBuffer() }, { name: 'after_seqval', type: 'lsn', value: q.after.seqval.toBuffer() });
  }
  return { text, params };
}
