import type { Pool } from 'mysql2/promise';
import type sql from 'mssql';
import { setTimeout as sleep } from 'node:timers/promises';
import { RefusedError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { mssqlTypeMap, type MssqlTypeMap } from '../../rows/mssql/typemap.js';
import type { TableSpec } from '../../rows/types.js';
import { bindRequest } from '../../source/mssql/connect.js';
import { CAPTURE_INSTANCES_SQL, quoteName, quoteTable, type CaptureInstanceRow, type SqlStatement } from '../../source/mssql/tsql.js';
import { recordDeadLetters } from '../deadletters.js';
import type { ChangeEvent, PoisonEvent } from '../types.js';
import { ddlDecisions, firstStop, readLimit, schemaChangeError, type DdlDecision, type DdlHistoryRow } from './ddl-history.js';
import { mapChanges, type CdcTable, type ChangeRow } from './events.js';
import { Lsn } from './lsn.js';
import {
  firstPosition,
  loadPosition,
  positionAfterRecopy,
  markCaughtUp,
  moveInstancePosition,
  positionAfterPage,
  previousInstancePosition,
  readWindow,
  checkPageStillInWindow,
  savePosition,
  type CdcPosition,
} from './position.js';
import {
  CAPTURED_COLUMNS_SQL,
  changesQuery,
  changeTable,
  COMMAND_ID_SQL,
  COMPUTED_COLUMNS_SQL,
  DDL_HISTORY_SQL,
  MAX_LSN_SQL,
  MIN_LSN_SQL,
  TIME_ZONE_SQL,
  type ChangesMode,
} from './tsql.js';

/**
 * The direct CDC source: polls cdc.fn_cdc_get_all_changes_<instance> between LSNs, hands each page
 * of ChangeEvents to `apply`, and saves the position in the control store only after apply
 * resolved. Before every page it checks the instance's window (sys.fn_cdc_get_min_lsn), and stops
 * with CdcWindowError when cleanup has passed the saved position, and the table's DDL history
 * (sys.sp_cdc_get_ddl_history), and stops with CdcSchemaChangeError at a DDL it cannot follow.
 */

export type ApplyChanges = (events: ChangeEvent[]) => Promise<void>;

export interface CdcSourceTable {
  /** Logical table name (config `tables.<name>`). */
  name: string;
  /** cdc.mssql.capture_instances.<name> */
  instance: string;
  spec: TableSpec;
  /** tables.<name>.exclude_columns: a column added on legacy that it names is no schema change for sync. */
  excludedColumns?: readonly string[];
}

/** A table as the source reads it. */
interface SourceTable extends CdcTable {
  excludedColumns: readonly string[];
}

export interface MssqlCdcSourceOptions {
  source: sql.ConnectionPool;
  control: Pool;
  tables: CdcSourceTable[];
  apply: ApplyChanges;
  /** Where to start a table's instance that has no saved position yet: its `full` start LSN (replay is after it). */
  startLsnOf: (table: string) => Lsn | null;
  /** The start of a copy of the table into emptied shard tables (full --restart), for a saved position cleanup passed. */
  recopiedStartOf?: (table: string) => Lsn | null;
  logger: Logger;
  /** Changes per page (and per apply call). */
  batchRows?: number;
  pollIntervalMs?: number;
  typeMap?: MssqlTypeMap;
  /** Changes that cannot be decoded: default, the control store's dead_letters. */
  onPoison?: (p: PoisonEvent) => Promise<void>;
  /** A new capture instance appeared for a table (someone prepares a schema change). */
  onNewInstance?: (notice: NewInstanceNotice) => void;
  /** Default: `table` where the change table has __$command_id and is readable, else `function`. */
  changesMode?: ChangesMode;
}

export interface NewInstanceNotice {
  table: string;
  configured: string;
  found: string;
  message: string;
}

export interface PollResult {
  /** Per capture instance: events applied and where it stands now. */
  instances: { instance: string; table: string; events: number; poison: number; position: string | null }[];
}

export class MssqlCdcSource {
  private readonly tables: SourceTable[];
  private readonly batchRows: number;
  private readonly noticed = new Set<string>();
  /** `<instance> <ddl_lsn>` of the DDLs already logged as not touching the copied columns. */
  private readonly noticedDdl = new Set<string>();
  private readonly modes = new Map<string, ChangesMode>();
  private timeZone: Promise<string | null> | undefined;

  constructor(private readonly o: MssqlCdcSourceOptions) {
    const typeMap = o.typeMap ?? mssqlTypeMap;
    this.batchRows = Math.max(2, o.batchRows ?? 5000);
    this.tables = o.tables.map((t) => ({
      name: t.name,
      instance: t.instance,
      spec: t.spec,
      conversions: t.spec.columns.map((c) => typeMap.conversion(c.sourceType, `table ${t.name}, column ${c.source}`)),
      excludedColumns: t.excludedColumns ?? [],
    }));
  }

  /**
   * Refuses before any apply when an instance does not capture a column the spec copies, or the
   * table has computed columns (CDC records them as NULL) that are not excluded.
   */
  async checkInstances(): Promise<void> {
    const instances = await this.captureInstances();
    for (const t of this.tables) {
      const instance = instances.find((r) => sameName(r.capture_instance, t.instance));
      if (!instance) {
        throw new RefusedError(
          `table ${t.name}: capture instance ${t.instance} does not exist, or this login may not read it ` +
            `(SELECT on every column it captures, and its gating role) (cdc.mssql.capture_instances.${t.name})`,
        );
      }
      const captured = new Set(await this.capturedColumns(instance.capture_instance));
      if (captured.size === 0) throw new RefusedError(`table ${t.name}: capture instance ${t.instance} captures no columns (cdc.mssql.capture_instances.${t.name})`);
      const missing = t.spec.columns.map((c) => c.source).filter((c) => !captured.has(c));
      if (missing.length > 0) {
        throw new RefusedError(
          `table ${t.name}: capture instance ${t.instance} does not capture ${missing.join(', ')}; create a new capture instance that does, or exclude the columns`,
        );
      }
      const computed = (await this.query<{ column_name: string }>(COMPUTED_COLUMNS_SQL, [{ name: 'table', type: 'nvarchar', value: this.tableName(t) }])).map((r) => r.column_name);
      const copied = computed.filter((c) => t.spec.columns.some((s) => s.source === c));
      if (copied.length > 0) {
        throw new RefusedError(`table ${t.name}: computed columns ${copied.join(', ')} are always NULL in CDC; add them to exclude_columns`);
      }
      await this.changesMode(t);
    }
  }

  /**
   * Applies everything available up to the current max LSN, page by page; returns what it did.
   * An aborted signal ends it after the page in flight (its position is saved).
   */
  async pollOnce(signal?: AbortSignal): Promise<PollResult> {
    const result: PollResult = { instances: [] };
    // One listing per poll for all tables: the procedure checks the login's rights on every instance.
    const instances = await this.captureInstances();
    for (const t of this.tables) {
      if (signal?.aborted) break;
      this.noticeNewInstances(t, instances);
      result.instances.push(await this.drainInstance(t, signal));
    }
    return result;
  }

  /** Polls until the signal aborts; errors (a window passed, a failed apply) end the loop. */
  async run(signal: AbortSignal, onPoll?: (result: PollResult) => void): Promise<void> {
    const interval = this.o.pollIntervalMs ?? 1000;
    while (!signal.aborted) {
      onPoll?.(await this.pollOnce(signal));
      try {
        await sleep(interval, undefined, { signal });
      } catch {
        return;
      }
    }
  }

  /**
   * The change at (lsn, seqval) of an instance, read again from CDC (an update's before- and
   * after-image share both), for replaying a dead letter after a fix. Null when cleanup removed it.
   */
  async changeAt(instance: string, lsn: Lsn, seqval: Lsn): Promise<{ events: ChangeEvent[]; poison: PoisonEvent[] } | null> {
    const t = this.tables.find((x) => sameName(x.instance, instance));
    if (!t) throw new RefusedError(`capture instance ${instance} is not in cdc.mssql.capture_instances`);
    const minLsn = await this.lsnQuery(MIN_LSN_SQL, [{ name: 'instance', type: 'nvarchar', value: t.instance }], 'min_lsn');
    if (!minLsn || lsn.compare(minLsn) < 0) return null;
    const cols = t.spec.columns.map((c, i) => t.conversions[i]!.selectExpression(quoteName(c.source)));
    const stmt = changesQuery({ instance: t.instance, mode: await this.changesMode(t), columns: cols, from: lsn, to: lsn, after: null, onlySeqval: seqval, limit: 2, timeZone: await this.serverTimeZone() });
    const rows = await this.query<ChangeRow>(stmt.text, stmt.params);
    if (rows.length === 0) return null;
    const page = mapChanges(t, rows, false);
    return { events: page.events, poison: page.poison };
  }

  /** How this instance's changes are read (see ChangesMode); decided once per instance. */
  async changesMode(t: { instance: string }): Promise<ChangesMode> {
    const known = this.o.changesMode ?? this.modes.get(t.instance);
    if (known) return known;
    let mode: ChangesMode = 'function';
    const [col] = await this.query<{ len: number | null }>(COMMAND_ID_SQL, [{ name: 'change_table', type: 'nvarchar', value: changeTable(t.instance) }]);
    if (col?.len !== null && col?.len !== undefined) {
      try {
        await this.query(`SELECT TOP (0) __$command_id FROM ${changeTable(t.instance)}`, []);
        mode = 'table';
      } catch (e) {
        this.o.logger.warn(
          { instance: t.instance },
          `cannot read ${changeTable(t.instance)} (${(e as Error).message}); reading changes through the CDC function, ordered by seqval without __$command_id`,
        );
      }
    }
    this.modes.set(t.instance, mode);
    return mode;
  }

  private async drainInstance(t: SourceTable, signal?: AbortSignal): Promise<PollResult['instances'][number]> {
    const mode = await this.changesMode(t);
    let position = await this.startingPosition(t, mode);
    let events = 0;
    let poison = 0;
    let caughtUp = false;
    while (!caughtUp) {
      // The window is checked before every page: cleanup runs while we read.
      const minLsn = await this.lsnQuery(MIN_LSN_SQL, [{ name: 'instance', type: 'nvarchar', value: t.instance }], 'min_lsn');
      const maxLsn = await this.lsnQuery(MAX_LSN_SQL, [], 'max_lsn');
      // Read after the max LSN: the capture job records a DDL in the scan of the log that reaches it,
      // so every DDL up to that max is listed by now. Reading ends right before the first DDL sync
      // cannot follow (readLimit), and sync stops once everything before it is applied.
      const stop = await this.schemaChangeAhead(t, position);
      const window = readWindow(t.instance, position, minLsn ?? Lsn.ZERO, readLimit(maxLsn, stop), mode);
      if (!window) {
        if (stop) throw schemaChangeError(t, stop, position);
        caughtUp = true;
        break;
      }
      const cols = t.spec.columns.map((c, i) => t.conversions[i]!.selectExpression(quoteName(c.source)));
      const stmt = changesQuery({ instance: t.instance, mode, columns: cols, from: window.from, to: window.to, after: window.after, limit: this.batchRows, timeZone: await this.serverTimeZone() });
      const rows = await this.query<ChangeRow>(stmt.text, stmt.params);
      const minAfterRead = await this.lsnQuery(MIN_LSN_SQL, [{ name: 'instance', type: 'nvarchar', value: t.instance }], 'min_lsn');
      checkPageStillInWindow(t.instance, window, minAfterRead ?? Lsn.ZERO);
      const full = rows.length === this.batchRows;
      const page = mapChanges(t, rows, full);
      if (page.events.length > 0) await this.o.apply(page.events);
      for (const p of page.poison) await this.recordPoison(p);
      const next = positionAfterPage(window, page.last, full);
      if (next) {
        await savePosition(this.o.control, {
          instance: t.instance,
          table: t.name,
          position: next,
          eventsApplied: page.events.length,
          lastSourceTsMs: page.lastSourceTsMs,
        });
        position = next;
      }
      events += page.events.length;
      poison += page.poison.length;
      caughtUp = !full;
      // Read up to the DDL: everything before it is applied now, and nothing after it may be.
      if (caughtUp && stop) throw schemaChangeError(t, stop, position);
      if (signal?.aborted) break;
    }
    // The gray gate's lag of an idle source: caught up now, however old the last change is.
    if (caughtUp) await markCaughtUp(this.o.control, t.instance, t.name, position);
    return { instance: t.instance, table: t.name, events, poison, position: position.lsn.toString() + (position.seqval ? ':' + position.seqval.toString() : '') };
  }

  /**
   * The instance's saved position, else its first one (firstPosition). A saved position that
   * cleanup has passed gives way to a later full --restart of the table whose start the instance
   * still holds: that copy holds every change before its start (the way back for a sync that fell
   * behind); without one, the window check refuses it. So does the position of the instance the
   * table was switched from, when it lies before the new instance's window.
   */
  private async startingPosition(t: CdcTable, mode: ChangesMode): Promise<CdcPosition> {
    const saved = await loadPosition(this.o.control, t.instance);
    const minLsn = await this.lsnQuery(MIN_LSN_SQL, [{ name: 'instance', type: 'nvarchar', value: t.instance }], 'min_lsn');
    if (saved) {
      const recopied = positionAfterRecopy(saved, this.o.recopiedStartOf?.(t.name) ?? null, minLsn ?? Lsn.ZERO, mode);
      if (!recopied) return saved;
      this.o.logger.warn(
        { table: t.name, instance: t.instance, saved: saved.lsn.toString(), from: recopied.lsn.toString() },
        `table ${t.name}: cleanup passed sync's position; a later full copy of the table started at ${recopied.lsn.toString()} and holds the changes before it: going on from there`,
      );
      return recopied;
    }
    const previous = await previousInstancePosition(this.o.control, t.name, t.instance);
    // Switched after a schema change the old instance could not pass: it stopped before the new
    // one's window, and a later full --restart of the table holds the changes in between.
    const recopied = previous ? positionAfterRecopy(previous.position, this.o.recopiedStartOf?.(t.name) ?? null, minLsn ?? Lsn.ZERO, mode) : null;
    const position = recopied ?? firstPosition(t.name, t.instance, { previous, startLsn: this.o.startLsnOf(t.name), minLsn: minLsn ?? Lsn.ZERO }, mode);
    if (previous) {
      await moveInstancePosition(this.o.control, previous.instance, t.instance);
      // Saved at once: the moved row still holds the old instance's position, which would be taken for one cleanup passed.
      if (recopied) await savePosition(this.o.control, { instance: t.instance, table: t.name, position, eventsApplied: 0, lastSourceTsMs: null });
      this.o.logger.info(
        { table: t.name, from: previous.instance, to: t.instance, lsn: position.lsn.toString() },
        recopied
          ? `table ${t.name}: reading capture instance ${t.instance} from the start of the table's later full copy (${position.lsn.toString()}): ${previous.instance} stopped before ${t.instance}'s first change`
          : `table ${t.name}: reading capture instance ${t.instance} from where ${previous.instance} stopped`,
      );
    }
    return position;
  }

  /**
   * The first DDL of the table after `position` that sync cannot follow (ddl-history.ts), or null.
   * One that leaves the copied columns as they were is logged once.
   */
  private async schemaChangeAhead(t: SourceTable, position: CdcPosition): Promise<DdlDecision | null> {
    const rows = await this.query<DdlHistoryRow>(DDL_HISTORY_SQL, [{ name: 'instance', type: 'nvarchar', value: t.instance }]);
    const decisions = ddlDecisions(t, position, rows);
    for (const d of decisions) {
      const key = `${t.instance} ${d.lsn.toString()}`;
      if (d.verdict !== 'not-copied' || this.noticedDdl.has(key)) continue;
      this.noticedDdl.add(key);
      this.o.logger.warn(
        { table: t.name, instance: t.instance, lsn: d.lsn.toString(), time: d.time, ddl: d.shown },
        `table ${t.name}: legacy's table changed at LSN ${d.lsn.toString()}: "${d.shown}" ${d.why}; going on`,
      );
    }
    return firstStop(decisions);
  }

  private noticeNewInstances(t: CdcTable, instances: CaptureInstanceRow[]): void {
    const rows = instances.filter((r) => sameName(r.source_schema, t.spec.sourceSchema) && sameName(r.source_table, t.spec.sourceTable));
    for (const r of rows) {
      if (sameName(r.capture_instance, t.instance) || this.noticed.has(r.capture_instance)) continue;
      this.noticed.add(r.capture_instance);
      const notice: NewInstanceNotice = {
        table: t.name,
        configured: t.instance,
        found: r.capture_instance,
        message:
          `table ${t.name} has a new capture instance ${r.capture_instance} besides ${t.instance}: a schema change is being prepared; ` +
          `switch cdc.mssql.capture_instances.${t.name} to it once it covers the saved position`,
      };
      this.o.logger.warn(notice, notice.message);
      this.o.onNewInstance?.(notice);
    }
  }

  /** The server's time zone for commit times, asked once (null: the server cannot tell). */
  private serverTimeZone(): Promise<string | null> {
    this.timeZone ??= this.query<{ time_zone: string | null }>(TIME_ZONE_SQL, []).then(
      (rows) => rows[0]?.time_zone ?? null,
      (e: unknown) => {
        this.timeZone = undefined; // asked again next time
        throw e;
      },
    );
    return this.timeZone;
  }

  /** The capture instances this login may read (sys.sp_cdc_help_change_data_capture). */
  private captureInstances(): Promise<CaptureInstanceRow[]> {
    return this.query<CaptureInstanceRow>(CAPTURE_INSTANCES_SQL, []);
  }

  /** The source columns the instance captures (sys.sp_cdc_get_captured_columns), by their exact names. */
  private async capturedColumns(instance: string): Promise<string[]> {
    const rows = await this.query<{ column_name: string }>(CAPTURED_COLUMNS_SQL, [{ name: 'instance', type: 'nvarchar', value: instance }]);
    return rows.map((r) => r.column_name);
  }

  private tableName(t: CdcTable): string {
    return quoteTable(t.spec.sourceSchema, t.spec.sourceTable);
  }

  private async recordPoison(p: PoisonEvent): Promise<void> {
    if (this.o.onPoison) return this.o.onPoison(p);
    await recordDeadLetters(this.o.control, [p]);
    this.o.logger.error({ source: p.origin.source, offset: p.origin.offset, table: p.table }, `change not applied: ${p.reason}`);
  }

  private async lsnQuery(text: string, params: SqlStatement['params'], column: string): Promise<Lsn | null> {
    const rows = await this.query<Record<string, Buffer | null>>(text, params);
    const v = rows[0]?.[column];
    return v ? Lsn.parse(v) : null;
  }

  private async query<T>(text: string, params: SqlStatement['params']): Promise<T[]> {
    const request = bindRequest(this.o.source.request(), params);
    return (await request.query<T>(text)).recordset ?? [];
  }
}

/** SQL Server names compare case-insensitively under the usual database collations. */
const sameName = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();
