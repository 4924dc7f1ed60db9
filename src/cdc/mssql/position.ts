import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { RefusedError } from '../../errors.js';
import { Lsn } from './lsn.js';
import { sourceTimeAheadSeconds } from '../source-clock.js';
import { startJobs, supersededJobs, type StartJob } from '../../copy/job.js';
import type { ChangesMode, ResumePoint } from './tsql.js';

/**
 * Where the direct CDC source stands for one capture instance. seqval null: every change with
 * start_lsn <= lsn is applied (the next read starts at lsn + 1). seqval set: the source stopped
 * inside the transaction at lsn; every change up to (lsn, seqval) is applied.
 */
export interface CdcPosition {
  lsn: Lsn;
  seqval: Lsn | null;
  /** __$command_id of that row, when read from the change table (table mode). */
  commandId?: number | null;
}

export interface ReadWindow {
  from: Lsn;
  to: Lsn;
  after: ResumePoint | null;
}

/**
 * Where the next read starts. A position inside a transaction saved in the other mode's order
 * cannot be resumed row-exactly, so the whole transaction is read again: replay is idempotent.
 */
export function nextFrom(p: CdcPosition, mode: ChangesMode = 'function'): { from: Lsn; after: ResumePoint | null } {
  if (p.seqval === null) return { from: p.lsn.increment(), after: null };
  const commandId = p.commandId ?? null;
  const sameOrder = mode === 'table' ? commandId !== null : commandId === null;
  return sameOrder ? { from: p.lsn, after: { lsn: p.lsn, seqval: p.seqval, commandId } } : { from: p.lsn, after: null };
}

/** Whether every change up to and including LSN `end` is applied at `p`. */
export function coversLsn(p: CdcPosition, end: Lsn): boolean {
  const order = p.lsn.compare(end);
  return order > 0 || (order === 0 && p.seqval === null);
}

export class CdcWindowError extends Error {
  override name = 'CdcWindowError';
}

/**
 * The window check made before every batch. A next read below min means cleanup already deleted
 * changes we have not applied: they are lost to us, and the table must be copied again.
 * Returns the window to read, or null when there is nothing new yet.
 */
export function readWindow(instance: string, position: CdcPosition, minLsn: Lsn, maxLsn: Lsn | null, mode: ChangesMode = 'function'): ReadWindow | null {
  const { from, after } = nextFrom(position, mode);
  checkHolds(instance, from, minLsn, () =>
    `capture instance ${instance}: the saved position ${position.lsn.toString()} fell behind CDC cleanup (lowest available LSN ${minLsn.toString()}): ` +
      'changes since then are lost to this sync; copy the table again (membermig full --restart): sync then goes on from the start position of that copy. ' +
      'If the instance was just created to replace another one, it starts after your position: switch only once it covers it.',
  );
  if (maxLsn === null || maxLsn.isZero() || from.compare(maxLsn) > 0) return null;
  return { from, to: maxLsn, after };
}

/** A capture instance and the position saved for it. */
export interface InstancePosition {
  instance: string;
  position: CdcPosition;
}

/**
 * Where a capture instance with no saved position of its own starts.
 *
 * When its table was read through another capture instance (`previous`): from where that one
 * stopped. A schema change gives a table a second capture instance, which holds changes only from
 * its own start LSN on (the ones before are in the old instance), and the switch is made once the
 * old one was read past that start. So the start position of `full`, which lies before the new
 * instance's start, is no place to begin; the old one's position is, provided the new instance holds
 * the next change to read. Otherwise the changes in between are only in the old instance, or gone.
 *
 * Else after the start position `full` recorded (readWindow checks it against the window).
 */
export function firstPosition(
  table: string,
  instance: string,
  known: { previous: InstancePosition | null; startLsn: Lsn | null; minLsn: Lsn },
  mode: ChangesMode = 'function',
): CdcPosition {
  const { previous, startLsn, minLsn } = known;
  if (previous) {
    checkHolds(instance, nextFrom(previous.position, mode).from, minLsn, () =>
      `table ${table}: capture instance ${instance} holds changes from ${minLsn.toString()} on, but ${previous.instance} was applied only up to ` +
        `${previous.position.lsn.toString()}: the changes between are not in ${instance} (it started later, or cleanup removed them). ` +
        `Set cdc.mssql.capture_instances.${table} back to ${previous.instance} until its position passes ${minLsn.toString()}, then switch; ` +
        'if cleanup removed them there too, copy the table again (membermig full --restart): sync then goes on from the start position of that copy.',
    );
    return previous.position;
  }
  if (!startLsn) throw new RefusedError(`table ${table}: no saved CDC position for ${instance} and no start position recorded by membermig full`);
  return { lsn: startLsn, seqval: null };
}

/**
 * A saved position that cleanup has passed (the window starts after it) gives way to `restartLsn`,
 * the start of a later copy of the table into emptied shard tables (recopiedStartOf), when the
 * instance still holds that: the copy holds every change before it. Null when the saved position
 * stands (it is in the window, or nothing later can replace it).
 */
export function positionAfterRecopy(saved: CdcPosition, restartLsn: Lsn | null, minLsn: Lsn, mode: ChangesMode = 'function'): CdcPosition | null {
  if (!restartLsn || minLsn.compare(Lsn.ZERO) === 0 || restartLsn.compare(saved.lsn) <= 0) return null;
  const holds = (p: CdcPosition) => nextFrom(p, mode).from.compare(minLsn) >= 0;
  const recopied = { lsn: restartLsn, seqval: null };
  return !holds(saved) && holds(recopied) ? recopied : null;
}

/**
 * Throws CdcWindowError unless the instance holds the change at `from` (its window starts at or
 * before it). Min 0x00…00 means the instance is missing or we lack rights.
 */
/**
 * The window check made again after a page was read. Cleanup raises the lowest LSN first and then
 * deletes the rows below it in batches, and a read of the change table has no window check of its
 * own: when the lowest LSN passed the page's first one meanwhile, rows of the page may have been
 * deleted before they were read, and nothing tells which.
 */
export function checkPageStillInWindow(instance: string, window: ReadWindow, minLsnAfterRead: Lsn): void {
  checkHolds(instance, window.from, minLsnAfterRead, () =>
    `capture instance ${instance}: CDC cleanup raised the lowest available LSN to ${minLsnAfterRead.toString()} while changes from ${window.from.toString()} were being read: ` +
      'some of them may have been deleted before they were read, so they are lost to this sync; copy the table again (membermig full --restart): sync then goes on from the start position of that copy.',
  );
}

function checkHolds(instance: string, from: Lsn, minLsn: Lsn, behind: () => string): void {
  if (minLsn.isZero()) {
    throw new CdcWindowError(
      `capture instance ${instance}: sys.fn_cdc_get_min_lsn returned 0x00000000000000000000: the instance does not exist, or this account lacks SELECT on its captured columns or its gating role`,
    );
  }
  if (from.compare(minLsn) < 0) throw new CdcWindowError(behind());
}

/** The position after a page: inside the window's last transaction, or caught up to `to`. */
export function positionAfterPage(window: ReadWindow, last: ResumePoint | null, pageWasFull: boolean): CdcPosition | null {
  if (!pageWasFull) return { lsn: window.to, seqval: null, commandId: null };
  return last ? { lsn: last.lsn, seqval: last.seqval, commandId: last.commandId } : null;
}

// ---- control store (migration 050) ---------------------------------------------------------------

interface PositionRow extends RowDataPacket {
  last_lsn: string;
  last_seqval: string | null;
  last_command_id: number | null;
}

export async function loadPosition(pool: Pool, instance: string): Promise<CdcPosition | null> {
  const [rows] = await pool.query<PositionRow[]>('SELECT last_lsn, last_seqval, last_command_id FROM cdc_lsn_positions WHERE capture_instance = ?', [instance]);
  const row = rows[0];
  return row ? positionOf(row) : null;
}

function positionOf(row: PositionRow): CdcPosition {
  return {
    lsn: Lsn.parse(row.last_lsn),
    seqval: row.last_seqval === null ? null : Lsn.parse(row.last_seqval),
    commandId: row.last_command_id === null ? null : Number(row.last_command_id),
  };
}

/**
 * The furthest position saved for the table under another capture instance than `instance`
 * (the one it was read through before a switch), or null.
 */
export async function previousInstancePosition(pool: Pool, table: string, instance: string): Promise<InstancePosition | null> {
  // seqval NULL (the whole transaction applied) is further than any seqval inside it.
  const [rows] = await pool.query<(PositionRow & { capture_instance: string })[]>(
    `SELECT capture_instance, last_lsn, last_seqval, last_command_id FROM cdc_lsn_positions
      WHERE table_name = ? AND capture_instance <> ?
      ORDER BY last_lsn DESC, last_seqval IS NULL DESC, last_seqval DESC, last_command_id DESC LIMIT 1`,
    [table, instance],
  );
  const row = rows[0];
  return row ? { instance: row.capture_instance, position: positionOf(row) } : null;
}

/**
 * After a switch, the table's position (with its counters and lag) belongs to the new instance:
 * left under the old one, it would stand still and show as an ever-growing lag (status, gray gate).
 */
export async function moveInstancePosition(pool: Pool, from: string, to: string): Promise<void> {
  await pool.query('UPDATE cdc_lsn_positions SET capture_instance = ? WHERE capture_instance = ?', [to, from]);
}

export interface PositionUpdate {
  instance: string;
  table: string;
  position: CdcPosition;
  eventsApplied: number;
  lastSourceTsMs: number | null;
}

/** Saved only after apply resolved, so a crash replays (idempotently) rather than skips. */
export async function savePosition(pool: Pool, u: PositionUpdate): Promise<void> {
  await pool.query(
    `INSERT INTO cdc_lsn_positions (capture_instance, table_name, last_lsn, last_seqval, last_command_id, events_applied, last_source_ts_ms)
     VALUES (?, ?, ?, ?, ?, ?, ?)
     ON DUPLICATE KEY UPDATE table_name = VALUES(table_name), last_lsn = VALUES(last_lsn), last_seqval = VALUES(last_seqval),
       last_command_id = VALUES(last_command_id),
       events_applied = events_applied + VALUES(events_applied),
       last_source_ts_ms = COALESCE(VALUES(last_source_ts_ms), last_source_ts_ms)`,
    [u.instance, u.table, u.position.lsn.toString(), u.position.seqval?.toString() ?? null, u.position.seqval ? (u.position.commandId ?? null) : null, u.eventsApplied, u.lastSourceTsMs],
  );
}

/** Notes that a poll found nothing newer than `position` (creating the row on a first, idle poll). */
export async function markCaughtUp(pool: Pool, instance: string, table: string, position: CdcPosition): Promise<void> {
  await pool.query(
    `INSERT INTO cdc_lsn_positions (capture_instance, table_name, last_lsn, last_seqval, caught_up_at) VALUES (?, ?, ?, ?, NOW(6))
     ON DUPLICATE KEY UPDATE caught_up_at = NOW(6)`,
    [instance, table, position.lsn.toString(), position.seqval?.toString() ?? null],
  );
}

interface StartRow extends RowDataPacket {
  job_id: number;
  lsn: string | null;
}

/** One `full` job's recorded SQL Server start LSN, and the job (its tables: null when not known). */
export interface RecordedStart extends StartJob {
  lsn: Lsn;
}

/** The start positions `full` recorded (cdc_start_positions, {"lsn": "<20 hex>"}), with each job's tables. */
export async function recordedStarts(pool: Pool): Promise<RecordedStart[]> {
  const [rows] = await pool.query<StartRow[]>(
    `SELECT job_id, JSON_UNQUOTE(JSON_EXTRACT(position, '$.lsn')) AS lsn FROM cdc_start_positions WHERE source_kind = 'mssql'`,
  );
  const jobs = await startJobs(pool);
  return rows
    .filter((r) => r.lsn)
    .map((r) => ({ ...(jobs.find((j) => j.id === Number(r.job_id)) ?? { id: Number(r.job_id), tables: null, emptied: false }), lsn: Lsn.parse(r.lsn!) }));
}

/**
 * Where sync starts a table that has no saved position: the lowest start of the `full` jobs that
 * copied it (replay covers every copy of it; replaying more is harmless), a job whose tables are
 * not known counting for every table, and leaving out jobs whose copy of it a later --restart
 * replaced (supersededJobs). Not the lowest over all jobs: a table whose capture instance was
 * enabled after an earlier job of other tables would start before its window, and fail as behind
 * cleanup. Without a job of the table, the lowest of all. Null if none was recorded.
 */
export function startLsnOf(starts: RecordedStart[], table: string): Lsn | null {
  const own = ownStarts(starts, table);
  return lowest((own.length > 0 ? own : starts).map((s) => s.lsn));
}

/**
 * The start of the table's copy into emptied shard tables (a full --restart) that sync may go on
 * from when cleanup passed its saved position: startLsnOf's job, if that job emptied the tables
 * first (its copy then holds every change before its start); null otherwise.
 */
export function recopiedStartOf(starts: RecordedStart[], table: string): Lsn | null {
  const first = ownStarts(starts, table).reduce<RecordedStart | null>((low, s) => (low === null || s.lsn.compare(low.lsn) < 0 ? s : low), null);
  return first?.emptied && first.tables !== null ? first.lsn : null;
}

/** The starts of the jobs that copied the table (or whose tables are not known), but those a later --restart replaced. */
function ownStarts(starts: RecordedStart[], table: string): RecordedStart[] {
  const replaced = supersededJobs(starts, table);
  return starts.filter((s) => (s.tables === null || s.tables.includes(table)) && !replaced.has(s.id));
}

function lowest(lsns: Lsn[]): Lsn | null {
  return lsns.reduce<Lsn | null>((low, lsn) => (low === null || lsn.compare(low) < 0 ? lsn : low), null);
}

export interface MssqlCdcInstanceStatus {
  instance: string;
  table: string;
  lastLsn: string;
  /** Set while the source stands inside a transaction larger than a page. */
  lastSeqval: string | null;
  eventsApplied: number;
  /**
   * Now minus the later of: the source commit time of the last applied change, and the last poll
   * that found nothing newer (an idle source is not behind). Null before either, and while
   * sourceAheadSeconds is set.
   */
  lagSeconds: number | null;
  /** How far the last applied change's commit time is ahead of the control server's clock, when it is (src/cdc/source-clock.ts). */
  sourceAheadSeconds: number | null;
  updatedAt: string;
}

interface StatusRow extends RowDataPacket {
  capture_instance: string;
  table_name: string;
  last_lsn: string;
  last_seqval: string | null;
  events_applied: string | number;
  last_source_ts_ms: string | number | null;
  caught_up_ms: string | number | null;
  now_ms: string | number;
  updated_at: string;
}

/**
 * For `membermig status` and the sync_lag gate: where each capture instance stands (cdc_lsn_positions).
 * Now is the control server's clock, which wrote caught_up_at: the asking host's own clock, minutes
 * off, showed a sync caught up this second as minutes behind, or one silent for minutes as caught up.
 */
export async function mssqlCdcStatus(pool: Pool | PoolConnection): Promise<MssqlCdcInstanceStatus[]> {
  const [rows] = await pool.query<StatusRow[]>(
    `SELECT capture_instance, table_name, last_lsn, last_seqval, events_applied, last_source_ts_ms,
            CAST(UNIX_TIMESTAMP(caught_up_at) * 1000 AS SIGNED) AS caught_up_ms, CAST(UNIX_TIMESTAMP(NOW(6)) * 1000 AS SIGNED) AS now_ms,
            DATE_FORMAT(updated_at, '%Y-%m-%dT%H:%i:%sZ') AS updated_at
       FROM cdc_lsn_positions ORDER BY capture_instance`,
  );
  return rows.map((r) => {
    const nowMs = Number(r.now_ms);
    const sourceAheadSeconds = r.last_source_ts_ms === null ? null : sourceTimeAheadSeconds(Number(r.last_source_ts_ms), nowMs);
    return {
      instance: r.capture_instance,
      table: r.table_name,
      lastLsn: r.last_lsn,
      lastSeqval: r.last_seqval,
      eventsApplied: Number(r.events_applied),
      lagSeconds: sourceAheadSeconds === null ? lagSeconds(nowMs, r.last_source_ts_ms, r.caught_up_ms) : null,
      sourceAheadSeconds,
      updatedAt: r.updated_at,
    };
  });
}

function lagSeconds(nowMs: number, ...instants: (string | number | null)[]): number | null {
  const known = instants.filter((t) => t !== null).map(Number);
  return known.length === 0 ? null : Math.max(0, Math.round((nowMs - Math.max(...known)) / 1000));
}
