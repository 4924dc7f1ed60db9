import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { fullJobAfterVerify } from '../copy/job.js';
import { insertChunks, type NewChunk } from '../store/leases.js';
import { databaseOf, storeLockName } from '../store/lock-name.js';
import type { Difference } from './drill.js';
import { isoTime } from '../mysql/iso-time.js';

/**
 * What verify keeps in the control store. A pass over some tables is a job (kind 'verify') whose
 * chunks are leased, so several verifiers started with the same scope share one job; each table
 * of the job has a verify_runs row (the gray gates read the latest finished one), and each
 * persistent difference a verify_diffs row.
 */

export interface VerifyJob {
  jobId: number;
  /** table name → verify_runs.id */
  runIds: Record<string, number>;
  /** True when this process planned the job; false when it joined one already running. */
  created: boolean;
}

export interface PlannedTable {
  table: string;
  scope: Record<string, unknown>;
  chunks: Omit<NewChunk, 'tableName'>[];
}

const LOCK_WAIT_SECONDS = 600;

/** Runs `fn` holding a named lock of the control store, so two verifiers never plan the same job twice. */
async function withLock<T>(pool: Pool, name: string, fn: (conn: PoolConnection) => Promise<T>): Promise<T> {
  const conn = await pool.getConnection();
  try {
    const [rows] = await conn.query<RowDataPacket[]>('SELECT GET_LOCK(?, ?) AS ok', [name, LOCK_WAIT_SECONDS]);
    if (Number(rows[0]?.ok) !== 1) throw new Error(`could not take the control-store lock ${name} within ${LOCK_WAIT_SECONDS} s`);
    try {
      return await fn(conn);
    } finally {
      await conn.query('SELECT RELEASE_LOCK(?)', [name]);
    }
  } finally {
    conn.release();
  }
}


/**
 * Joins the running verify job of this name (one still running, or killed), or plans a new one: a
 * verify_runs row per table and the chunks to check. `plan` runs only when no job is running.
 * `restart` abandons a running job first (its runs end as 'abandoned'): the chunks it finished
 * were checked back then, and changes made since are only seen by a new job.
 */
export async function openVerifyJob(pool: Pool, name: string, options: Record<string, unknown>, plan: () => Promise<PlannedTable[]>, restart = false): Promise<VerifyJob> {
  return withLock(pool, storeLockName(await databaseOf(pool), 'verify', name), async (conn) => {
    if (restart) {
      const [stale] = await conn.query<RowDataPacket[]>("SELECT id, options FROM jobs WHERE kind = 'verify' AND name = ? AND state = 'running'", [name]);
      for (const job of stale) {
        const opts = typeof job.options === 'string' ? JSON.parse(job.options) : job.options;
        const runIds = Object.values((opts?.runIds ?? {}) as Record<string, number>);
        if (runIds.length > 0) await conn.query("UPDATE verify_runs SET state = 'abandoned', finished_at = NOW(6) WHERE id IN (?)", [runIds]);
        await conn.query("UPDATE jobs SET state = 'abandoned', finished_at = NOW(6) WHERE id = ?", [job.id]);
      }
    }
    const [jobs] = await conn.query<RowDataPacket[]>("SELECT id, options FROM jobs WHERE kind = 'verify' AND name = ? AND state = 'running' ORDER BY id DESC LIMIT 1", [name]);
    const running = jobs[0];
    if (running) {
      const opts = typeof running.options === 'string' ? JSON.parse(running.options) : running.options;
      return { jobId: Number(running.id), runIds: opts.runIds as Record<string, number>, created: false };
    }
    const tables = await plan();
    const [job] = await conn.query<ResultSetHeader>("INSERT INTO jobs (kind, name, state, options) VALUES ('verify', ?, 'planning', ?)", [name, JSON.stringify(options)]);
    const jobId = job.insertId;
    const runIds: Record<string, number> = {};
    for (const t of tables) {
      const [run] = await conn.query<ResultSetHeader>("INSERT INTO verify_runs (table_name, scope, state, chunks_total) VALUES (?, ?, 'running', ?)", [
        t.table,
        JSON.stringify(t.scope),
        t.chunks.length,
      ]);
      runIds[t.table] = run.insertId;
      await insertChunks(pool, jobId, t.chunks.map((c) => ({ ...c, tableName: t.table })));
    }
    await conn.query("UPDATE jobs SET state = 'running', options = ? WHERE id = ?", [JSON.stringify({ ...options, runIds }), jobId]);
    return { jobId, runIds, created: true };
  });
}

export interface ChunkResult {
  legacyRows: number;
  targetRows: number;
  differences: number;
  repaired: number;
}

/** Pending or leased chunks left in the job. */
export async function openChunks(pool: Pool, jobId: number): Promise<number> {
  const [rows] = await pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM chunks WHERE job_id = ? AND state IN ('pending', 'leased')", [jobId]);
  return Number(rows[0]!.n);
}

/** Records persistent differences of a run; returns their ids in order. */
export async function recordDifferences(pool: Pool, runId: number, table: string, chunkNo: number, diffs: Difference[]): Promise<number[]> {
  const ids: number[] = [];
  for (const d of diffs) {
    const [res] = await pool.query<ResultSetHeader>('INSERT INTO verify_diffs (run_id, table_name, chunk_no, pk, shard, kind, columns, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
      runId,
      table,
      chunkNo,
      JSON.stringify(d.key),
      d.shard,
      d.kind,
      d.columns ? JSON.stringify(d.columns) : null,
      d.reason?.slice(0, 2048) ?? null,
    ]);
    ids.push(res.insertId);
  }
  return ids;
}

/** A difference left as it is on purpose (action hold: legacy is behind MySQL for its key). */
/** A difference repair leaves alone on purpose: hold (legacy behind MySQL) or keep (legacy row unrepresentable). */
export async function markNotRepaired(pool: Pool, diffId: number, action: 'hold' | 'keep'): Promise<void> {
  await pool.query('UPDATE verify_diffs SET repair_action = ? WHERE id = ?', [action, diffId]);
}

export async function markRepaired(pool: Pool, diffId: number, action: string): Promise<void> {
  await pool.query('UPDATE verify_diffs SET repaired_at = NOW(6), repair_action = ? WHERE id = ?', [action, diffId]);
}

export type RunState = 'running' | 'clean' | 'differences' | 'failed';

export interface TableRun {
  table: string;
  runId: number;
  state: RunState;
  chunksTotal: number;
  chunksChecked: number;
  rowsSource: number;
  rowsTarget: number;
  differences: number;
  repaired: number;
  seconds: number | null;
  scope: Record<string, unknown>;
}

/**
 * Ends the job once no chunk is pending or leased: sums the chunk results into each table's
 * verify_runs row and sets its state, in one transaction holding the job's row, so only one
 * process does it and a kill half-way leaves the job running for the next to end. (A 'finishing'
 * state between two statements, left by a verifier killed there, held every other verifier of the
 * job waiting for ever; one left by an earlier version is ended here too.)
 */
export async function finishJobIfDone(pool: Pool, job: VerifyJob): Promise<boolean> {
  if ((await openChunks(pool, job.jobId)) > 0) return false;
  const conn = await pool.getConnection();
  try {
    await conn.beginTransaction();
    const [rows] = await conn.query<RowDataPacket[]>('SELECT state FROM jobs WHERE id = ? FOR UPDATE', [job.jobId]);
    if (!['running', 'finishing'].includes(String(rows[0]?.state))) {
      await conn.rollback();
      return true;
    }
    let anyFailed = false;
    for (const [table, runId] of Object.entries(job.runIds)) {
      const t = await tallyChunks(conn, job.jobId, table);
      const state: RunState = t.failed > 0 ? 'failed' : t.differences > t.repaired ? 'differences' : 'clean';
      anyFailed ||= t.failed > 0;
      await conn.query(
        `UPDATE verify_runs SET state = ?, chunks_checked = ?, rows_source = ?, rows_target = ?, differences = ?, repaired = ?, finished_at = NOW(6) WHERE id = ?`,
        [state, t.checked, t.rowsSource, t.rowsTarget, t.differences, t.repaired, runId],
      );
    }
    await conn.query('UPDATE jobs SET state = ?, finished_at = NOW(6) WHERE id = ?', [anyFailed ? 'failed' : 'done', job.jobId]);
    await conn.commit();
    await pruneOldChunks(pool, job.jobId).catch(() => {});
    return true;
  } catch (e) {
    await conn.rollback().catch(() => {});
    throw e;
  } finally {
    conn.release();
  }
}

/** Finished verify jobs of one name whose chunk rows are kept (status lists the 20 newest jobs with their chunks). */
export const KEPT_VERIFY_JOBS = 20;

/**
 * Deletes the chunk rows of the finished verify jobs of this job's name older than the newest
 * KEPT_VERIFY_JOBS: their results are in verify_runs once the job is finished, and `verify --watch`
 * plans a new job of every chunk each pass, so the chunks table grew by a table's chunk count every
 * pass, for ever (10,000 rows a pass for a billion rows). Best effort: a failure leaves them for the next.
 */
async function pruneOldChunks(pool: Pool, jobId: number): Promise<void> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT id FROM jobs WHERE kind = 'verify' AND name = (SELECT name FROM jobs WHERE id = ?) AND state IN ('done', 'failed', 'abandoned')
      ORDER BY id DESC LIMIT 1 OFFSET ${KEPT_VERIFY_JOBS}`,
    [jobId],
  );
  const oldest = rows[0]?.id;
  if (oldest === undefined) return;
  const [old] = await pool.query<RowDataPacket[]>(
    `SELECT j.id FROM jobs j WHERE j.kind = 'verify' AND j.name = (SELECT name FROM jobs WHERE id = ?) AND j.state IN ('done', 'failed', 'abandoned') AND j.id <= ?
      AND EXISTS (SELECT 1 FROM chunks c WHERE c.job_id = j.id)`,
    [jobId, oldest],
  );
  for (const r of old) await pool.query('DELETE FROM chunks WHERE job_id = ?', [r.id]);
}

interface ChunkTally {
  checked: number;
  failed: number;
  rowsSource: number;
  rowsTarget: number;
  differences: number;
  repaired: number;
}

/**
 * A table's chunk results summed. Counted from each chunk's final result, not from verify_diffs:
 * a verifier killed mid-chunk leaves the differences it recorded behind, and the attempt that
 * redoes the chunk decides.
 */
async function tallyChunks(pool: Pool | PoolConnection, jobId: number, table: string): Promise<ChunkTally> {
  const [chunks] = await pool.query<RowDataPacket[]>('SELECT state, result FROM chunks WHERE job_id = ? AND table_name = ?', [jobId, table]);
  const t: ChunkTally = { checked: 0, failed: 0, rowsSource: 0, rowsTarget: 0, differences: 0, repaired: 0 };
  for (const c of chunks) {
    if (c.state === 'failed') t.failed++;
    if (c.state !== 'done') continue;
    t.checked++;
    const r = (typeof c.result === 'string' ? JSON.parse(c.result) : c.result) as ChunkResult;
    t.rowsSource += r.legacyRows;
    t.rowsTarget += r.targetRows;
    t.differences += r.differences;
    t.repaired += r.repaired;
  }
  return t;
}

/** The job's runs; one not finished (stopped, or its pass ended early) counts its chunks done so far. */
export async function readRuns(pool: Pool, jobId: number, runIds: Record<string, number>): Promise<TableRun[]> {
  const ids = Object.values(runIds);
  if (ids.length === 0) return [];
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT r.id, r.table_name, r.scope, r.state, r.chunks_total, r.chunks_checked, r.rows_source, r.rows_target, r.differences, r.repaired,
            TIMESTAMPDIFF(MICROSECOND, r.started_at, r.finished_at) / 1e6 AS seconds
       FROM verify_runs r WHERE r.id IN (?) ORDER BY r.table_name`,
    [ids],
  );
  return Promise.all(
    rows.map(async (r) => {
      const t = r.state === 'running' ? await tallyChunks(pool, jobId, r.table_name) : undefined;
      return {
        table: r.table_name,
        runId: Number(r.id),
        state: r.state,
        chunksTotal: Number(r.chunks_total),
        chunksChecked: t ? t.checked : Number(r.chunks_checked),
        rowsSource: t ? t.rowsSource : Number(r.rows_source),
        rowsTarget: t ? t.rowsTarget : Number(r.rows_target),
        differences: t ? t.differences : Number(r.differences),
        repaired: t ? t.repaired : Number(r.repaired),
        seconds: r.seconds === null ? null : Number(r.seconds),
        scope: typeof r.scope === 'string' ? JSON.parse(r.scope) : r.scope,
      };
    }),
  );
}

export interface StoredDifference extends Difference {
  id: number;
  table: string;
  runId: number;
  repairAction: string | null;
  repairedAt: string | null;
}

/**
 * A chunk taken up again (its verifier was killed or gave it back): the differences an earlier
 * attempt recorded go, and this attempt's findings stand alone.
 */
export async function forgetEarlierAttempt(pool: Pool, runId: number, chunkNo: number): Promise<void> {
  await pool.query('DELETE FROM verify_diffs WHERE run_id = ? AND chunk_no = ?', [runId, chunkNo]);
}

export async function readDifferences(pool: Pool, runIds: number[], limit: number): Promise<StoredDifference[]> {
  if (runIds.length === 0) return [];
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT id, run_id, table_name, pk, shard, kind, columns, reason, repair_action, ${isoTime('repaired_at')}
       FROM verify_diffs WHERE run_id IN (?) ORDER BY id LIMIT ?`,
    [runIds, limit],
  );
  const json = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v);
  return rows.map((r) => ({
    id: Number(r.id),
    runId: Number(r.run_id),
    table: r.table_name,
    key: json(r.pk),
    shard: r.shard === null ? null : Number(r.shard),
    kind: r.kind,
    ...(r.columns ? { columns: json(r.columns) } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
    repairAction: r.repair_action,
    repairedAt: r.repaired_at,
  }));
}


export interface LatestRun {
  table: string;
  runId: number;
  state: RunState;
  finishedAt: string;
  /** Seconds since it finished, by the control store's clock. */
  ageSeconds: number;
  differences: number;
  repaired: number;
  rowsSource: number;
  rowsTarget: number;
  scope: Record<string, unknown> | null;
  /** A full-copy job of the table that began after this run did (full --restart): the rows it checked are gone. */
  copiedSince: number | null;
}

/** The latest finished verify run of each table: what `status` shows and the gray gates read. */
export async function latestFinishedRuns(pool: Pool): Promise<LatestRun[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT r.id, r.table_name, r.state, r.differences, r.repaired, r.rows_source, r.rows_target, r.scope,
            DATE_FORMAT(r.finished_at, '%Y-%m-%dT%H:%i:%sZ') AS finished_at, TIMESTAMPDIFF(SECOND, r.finished_at, NOW(6)) AS age
       FROM verify_runs r
       JOIN (SELECT table_name, MAX(id) AS id FROM verify_runs WHERE finished_at IS NOT NULL GROUP BY table_name) l ON l.id = r.id
      ORDER BY r.table_name`,
  );
  return Promise.all(
    rows.map(async (r) => ({
      table: r.table_name,
      runId: Number(r.id),
      state: r.state,
      finishedAt: r.finished_at,
      ageSeconds: Number(r.age),
      differences: Number(r.differences),
      repaired: Number(r.repaired),
      rowsSource: Number(r.rows_source),
      rowsTarget: Number(r.rows_target),
      scope: r.scope === null ? null : typeof r.scope === 'string' ? JSON.parse(r.scope) : r.scope,
      copiedSince: (await fullJobAfterVerify(pool, r.table_name, Number(r.id)))?.id ?? null,
    })),
  );
}

/** Open repair_queue entries per table. */
export async function openRepairQueue(pool: Pool): Promise<{ table: string; open: number }[]> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT table_name, COUNT(*) AS n FROM repair_queue WHERE resolved_at IS NULL GROUP BY table_name ORDER BY table_name');
  return rows.map((r) => ({ table: r.table_name, open: Number(r.n) }));
}
