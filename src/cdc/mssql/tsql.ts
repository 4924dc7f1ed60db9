import { quoteName, type SqlStatement } from '../../source/mssql/tsql.js';
import type { Lsn } from './lsn.js';

/**
 * The T-SQL of the direct CDC source, as pure functions (tested exactly). LSNs and seqvals are
 * bound as binary(10) parameters.
 */

/** Low end of the instance's window; 0x00…00 when the instance is missing or the caller lacks rights. */
export const MIN_LSN_SQL = 'SELECT sys.fn_cdc_get_min_lsn(@instance) AS min_lsn';

export { MAX_LSN_SQL } from '../../source/mssql/tsql.js';

/**
 * The source columns a capture instance captures, one row each. Microsoft's interface for readers
 * that are not db_owner (SELECT on every captured column, and the gating role), where the
 * cdc.captured_columns table needs rights on the cdc schema. Only column_name is read: the
 * position column is ordinal_position in the older docs and column_ordinal in the newer ones.
 */
export const CAPTURED_COLUMNS_SQL = 'EXEC sys.sp_cdc_get_captured_columns @capture_instance = @instance';

/**
 * The DDL recorded for a capture instance's source table since the instance was created
 * (cdc.ddl_history), one row per statement: source_schema, source_table, capture_instance,
 * required_column_update, ddl_command, ddl_lsn (binary(10)) and ddl_time (datetime, server-local).
 * Microsoft's interface for readers that are not db_owner, with the same rights as
 * CAPTURED_COLUMNS_SQL; the cdc.ddl_history table needs rights on the cdc schema. The capture job
 * writes a row when its scan of the log reaches the DDL (src/cdc/mssql/ddl-history.ts reads them).
 */
export const DDL_HISTORY_SQL = 'EXEC sys.sp_cdc_get_ddl_history @capture_instance = @instance';

/** Computed columns of the source table: CDC always records NULL for them. */
export const COMPUTED_COLUMNS_SQL = `SELECT c.name AS column_name FROM sys.columns AS c WHERE c.object_id = OBJECT_ID(@table) AND c.is_computed = 1`;

/** Does the instance's change table have __$command_id (SQL Server 2016 SP2+ / the 2012–2014 CUs)? */
export const COMMAND_ID_SQL = "SELECT COL_LENGTH(@change_table, '__$command_id') AS len";

/** The change table's name as COL_LENGTH and FROM take it. */
export function changeTable(instance: string): string {
  return `cdc.${quoteName(`${instance}_CT`)}`;
}

/**
 * How changes are read. `function`: cdc.fn_cdc_get_all_changes_<instance>(…, N'all update old'),
 * ordered by (start_lsn, seqval, operation). `table`: the change table cdc.<instance>_CT itself,
 * ordered by (start_lsn, command_id, seqval, operation) as Debezium's default direct mode does:
 * __$command_id is the order of the statements inside a transaction, which seqval alone does not
 * always follow. Both give the same rows (the table holds op 3 before-images too).
 */
export type ChangesMode = 'function' | 'table';

export interface ResumePoint {
  lsn: Lsn;
  seqval: Lsn;
  /** Set in table mode. */
  commandId: number | null;
}

export interface ChangesQuery {
  instance: string;
  mode: ChangesMode;
  /** SELECT expressions of the spec's columns over the change rows, aliased [c0], [c1], ... */
  columns: string[];
  from: Lsn;
  to: Lsn;
  /** Resume inside a transaction: only rows after this point (in the mode's order). */
  after: ResumePoint | null;
  /** Only the rows of this seqval (one change: an update's two images share it), to replay a dead letter. */
  onlySeqval?: Lsn;
  limit: number;
  /** The server's time zone (TIME_ZONE_SQL), when it can tell: commit times then convert with their own offset. */
  timeZone?: string | null;
}

/**
 * The server's Windows time zone name, or no name (NULL or no row) where the server cannot tell.
 * CURRENT_TIMEZONE_ID() exists from SQL Server 2022 on (and in Azure SQL); it runs as dynamic SQL
 * so an older server's "not a recognized function" is an error the CATCH can take, not a compile
 * error of the batch. The name is taken only when sys.time_zone_info, the list AT TIME ZONE
 * accepts, has it: an unknown name would make every changes query fail, where today's offset is
 * only an hour off across a DST switch.
 */
export const TIME_ZONE_SQL = `BEGIN TRY EXEC (N'SELECT z.name AS time_zone FROM sys.time_zone_info AS z WHERE z.name = CURRENT_TIMEZONE_ID()') END TRY
BEGIN CATCH SELECT CAST(NULL AS nvarchar(128)) AS time_zone END CATCH`;

/**
 * Milliseconds since the epoch (UTC) of a change's commit. lsn_time_mapping holds server-local
 * time: with the zone known, AT TIME ZONE applies the offset in force at that time; without it,
 * today's offset is all there is (an hour off for changes from the other side of a DST switch).
 */
export function commitTimeMs(timeZone: boolean): string {
  const local = 'sys.fn_cdc_map_lsn_to_time(__$start_lsn)';
  return timeZone
    ? `DATEDIFF_BIG(millisecond, '19700101', CONVERT(datetime2(3), (${local} AT TIME ZONE @time_zone) AT TIME ZONE 'UTC'))`
    : `DATEDIFF_BIG(millisecond, '19700101', DATEADD(minute, -DATEPART(TZOFFSET, SYSDATETIMEOFFSET()), ${local}))`;
}

/**
 * One page of changes in log order. `all update old` gives the before-image (op 3) of every update
 * right before its after-image (op 4), with the same start_lsn and seqval, so sorting by operation
 * keeps the pair together. Commit time comes back as ms since the epoch in UTC (commitTimeMs).
 */
export function changesQuery(q: ChangesQuery): SqlStatement {
  const table = q.mode === 'table';
  const select = [
    '__$start_lsn AS [__start_lsn]',
    '__$seqval AS [__seqval]',
    '__$operation AS [__operation]',
    ...(table ? ['__$command_id AS [__command_id]'] : []),
    `${commitTimeMs(Boolean(q.timeZone))} AS [__ts_ms]`,
    ...q.columns.map((expr, i) => `${expr} AS [c${i}]`),
  ];
  const conditions: string[] = table ? ['__$start_lsn >= @from_lsn AND __$start_lsn <= @to_lsn'] : [];
  if (q.after) {
    if (table && q.after.commandId === null) throw new Error('resuming a change table read needs the command id of the last row');
    conditions.push(
      table
        ? '(__$start_lsn > @after_lsn OR (__$start_lsn = @after_lsn AND (__$command_id > @after_command_id OR (__$command_id = @after_command_id AND __$seqval > @after_seqval))))'
        : '(__$start_lsn > @after_lsn OR (__$start_lsn = @after_lsn AND __$seqval > @after_seqval))',
    );
  }
  if (q.onlySeqval) conditions.push('__$seqval = @only_seqval');
  const from = table ? changeTable(q.instance) : `cdc.${quoteName(`fn_cdc_get_all_changes_${q.instance}`)}(@from_lsn, @to_lsn, N'all update old')`;
  const order = table ? '__$start_lsn, __$command_id, __$seqval, __$operation' : '__$start_lsn, __$seqval, __$operation';
  const text =
    `SELECT TOP (@limit) ${select.join(', ')}\nFROM ${from}` +
    (conditions.length > 0 ? `\nWHERE ${conditions.join('\n  AND ')}` : '') +
    `\nORDER BY ${order}`;
  const params: SqlStatement['params'] = [
    { name: 'limit', type: 'int', value: q.limit },
    { name: 'from_lsn', type: 'lsn', value: q.from.toBuffer() },
    { name: 'to_lsn', type: 'lsn', value: q.to.toBuffer() },
  ];
  if (q.after) {
    params.push({ name: 'after_lsn', type: 'lsn', value: q.after.lsn.toBuffer() }, { name: 'after_seqval', type: 'lsn', value: q.after.seqval.toBuffer() });
    if (table) params.push({ name: 'after_command_id', type: 'int', value: q.after.commandId! });
  }
  if (q.onlySeqval) params.push({ name: 'only_seqval', type: 'lsn', value: q.onlySeqval.toBuffer() });
  if (q.timeZone) params.push({ name: 'time_zone', type: 'nvarchar', value: q.timeZone });
  return { text, params };
}
