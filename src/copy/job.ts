import { createHash } from 'node:crypto';
import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { Logger } from '../log.js';
import type { TableSpec } from '../rows/types.js';
import type { SourceReader, StartPosition } from '../source/reader.js';
import type { ControlStore } from '../store/control.js';
import { insertChunks, parseChunkKey, type NewChunk } from '../store/leases.js';
import { storeLockName } from '../store/lock-name.js';
import { deadLocalWorkers } from '../store/workers.js';
import { readSettings, settingsOf } from '../gray/settings.js';
import { RefusedError } from '../errors.js';
import { SYNC_SILENT_MS } from '../cdc/offsets.js';
import { WRITE_LIMIT_SECONDS } from '../target/writer.js';

/**
 * A full-copy job in the control store: found or created under a named lock, so two processes
 * started at once join one job. The process that creates it records the CDC start position and
 * plans the chunks (state 'planning') while its workers already copy the chunks planned so far;
 * the job is 'running' once every chunk is planned, and other processes join then. A planner
 * killed mid-way leaves 'planning' with the chunks it inserted (some maybe copied), and the next
 * process goes on planning after the last of them.
 */

export interface FullJob {
  id: number;
  name: string;
  state: string;
  /** This process created the job or went on planning it. */
  planned: boolean;
  /** Settles when this process has planned every chunk (at once when it plans nothing). */
  planning: Promise<void>;
}

export function jobName(tables: string[]): string {
  const name = [...new Set(tables)].sort().join(',');
  return name.length <= 150 ? name : `${name.slice(0, 100)}…${createHash('sha1').update(name).digest('hex').slice(0, 16)}`;
}

interface JobRow extends RowDataPacket {
  id: number | string;
  state: string;
}

export interface OpenJobOptions {
  restart: boolean;
  chunkRows: number;
  logger: Logger;
  /** Extra start positions (e.g. Kafka end offsets), recorded with the source's. */
  extraStartPositions?: () => Promise<StartPosition[]>;
  /**
   * A stop (SIGINT/SIGTERM) or a failed run. Aborted before a restart drops the job's progress: it
   * does not (openJob returns null). Before a restarted job's shard tables are emptied: they are
   * not, and nothing is planned (the next run empties them). Otherwise planning stops early, the
   * job stays 'planning' and the next run goes on.
   */
  signal?: AbortSignal;
  /** How long a silent worker may still write (copy.lease_seconds); 120 s when not given. */
  leaseSeconds?: number;
  /** Empties the job's shard tables: a --restart copies into empty tables (emptyFirstIfAsked). */
  emptyShardTables?: () => Promise<void>;
}

/** The job to copy; null for a restart stopped before it changed anything (options.signal). */
export async function openJob(store: ControlStore, reader: SourceReader, specs: TableSpec[], options: OpenJobOptions): Promise<FullJob | null> {
  const name = jobName(specs.map((s) => s.name));
  const conn = await store.pool.getConnection();
  const lock = storeLockName(store.database, 'full.plan', name);
  // While this process plans, the lock and its connection stay taken, beyond this call.
  let handedOver = false;
  try {
    const [got] = await conn.query<RowDataPacket[]>('SELECT GET_LOCK(?, 600) AS got', [lock]);
    if (Number(got[0]?.got) !== 1) throw new Error(`timed out waiting for another membermig full to plan job ${name}`);
    try {
      const job = await whileNoOtherJobStarts(conn, startLockOf(store), () => findOrCreateJob(conn, name, reader, specs, options));
      if (!job) return null;
      if (job.state !== 'planning') return { id: job.id, name, state: job.state, planned: false, planning: Promise.resolve() };
      const planning = planThenRelease(conn, lock, job.id, reader, specs, options);
      handedOver = true;
      return { id: job.id, name, state: 'planning', planned: true, planning };
    } finally {
      if (!handedOver) await conn.query('SELECT RELEASE_LOCK(?)', [lock]);
    }
  } finally {
    if (!handedOver) conn.release();
  }
}

const startLockOf = (store: ControlStore) => storeLockName(store.database, 'full.start');

/**
 * Runs `fn` under full's start lock, on a connection of its own: sync checks that no copy has work
 * left and announces itself there, so a full starting at the same moment either created its job
 * before that check, or sees the sync after it (their checks alone each ran before the other was visible).
 */
export async function underFullStartLock<T>(store: ControlStore, fn: () => Promise<T>): Promise<T> {
  const conn = await store.pool.getConnection();
  try {
    return await whileNoOtherJobStarts(conn, startLockOf(store), fn);
  } finally {
    conn.release();
  }
}

/**
 * Runs `fn` holding the control store's one lock for the start of every full job, whatever its
 * tables. The refusals compare a job's tables with the other jobs' (a table in two jobs; a
 * --restart under another job's copy), but each job name has its own planning lock: two runs of
 * different table sets started at once (CI jobs) each checked before the other's job existed, and
 * both copied a table, or a restart emptied it under the other's copy. Held from the check until
 * the job is created (or left as it was), never while planning.
 */
async function whileNoOtherJobStarts<T>(conn: PoolConnection, lock: string, fn: () => Promise<T>): Promise<T> {
  const [got] = await conn.query<RowDataPacket[]>('SELECT GET_LOCK(?, 600) AS got', [lock]);
  if (Number(got[0]?.got) !== 1) throw new Error('timed out waiting for another membermig full to start its job');
  try {
    return await fn();
  } finally {
    await conn.query('SELECT RELEASE_LOCK(?)', [lock]);
  }
}

/**
 * The refusals, then the job of this name to go on with, or a new one (after abandoning the old one
 * on --restart) with its start positions; null for a restart stopped before it changed anything.
 */
async function findOrCreateJob(conn: PoolConnection, name: string, reader: SourceReader, specs: TableSpec[], options: OpenJobOptions): Promise<{ id: number; state: string } | null> {
  // Before the old job is abandoned: a refused restart leaves it as it was.
  await refuseToStart(conn, specs, options.restart);
  if (options.restart) {
    // Checked last before the first change: a signal while the process started means it starts stopped,
    // and a restart must not drop the progress (and have the shard tables emptied) of a copy nobody then makes.
    if (options.signal?.aborted) return null;
    const [res] = await conn.query<ResultSetHeader>(
      "UPDATE jobs SET state = 'abandoned', finished_at = NOW(6) WHERE kind = 'full' AND name = ? AND state IN ('planning', 'running', 'done')",
      [name],
    );
    if (res.affectedRows > 0) options.logger.warn({ job: name }, '--restart: the previous progress of this job was dropped');
  }
  const job = await currentJob(conn, name);
  if (job) return job;
  // Read before the job is created: a source that cannot tell its position (a missing privilege) leaves nothing behind.
  const positions = await startPositions(reader, options);
  // The job and its start positions together: a job resumed later keeps the positions it began with. One
  // recorded on a resume (say Kafka's, which did not answer at first) would be later than chunks already
  // copied, and sync would skip their changes; a kind missing means sync reads that source from its start.
  await conn.beginTransaction();
  try {
    const [res] = await conn.query<ResultSetHeader>("INSERT INTO jobs (kind, name, state, options) VALUES ('full', ?, 'planning', ?)", [
      name,
      JSON.stringify({ tables: specs.map((s) => s.name), chunkRows: options.chunkRows, ...(options.restart ? { emptyFirst: true } : {}) }),
    ]);
    await recordStartPositions(conn, res.insertId, positions);
    await conn.commit();
    for (const p of positions) options.logger.info({ job: res.insertId, kind: p.kind, position: p.position }, 'recorded the CDC start position');
    return { id: res.insertId, state: 'planning' };
  } catch (e) {
    await conn.rollback().catch(() => {});
    throw e;
  }
}

/** The job of this name a run goes on with (planning, running or done); null when there is none. */
export async function currentJob(conn: Pool | PoolConnection, name: string): Promise<{ id: number; state: string } | null> {
  const [rows] = await conn.query<JobRow[]>(
    "SELECT id, state FROM jobs WHERE kind = 'full' AND name = ? AND state IN ('planning', 'running', 'done') ORDER BY id DESC LIMIT 1",
    [name],
  );
  return rows[0] ? { id: Number(rows[0].id), state: rows[0].state } : null;
}

/**
 * Refuses (RefusedError) a run that must not start, before it changes anything: a restart while
 * MySQL serves a table or a sync runs; a new job (none of these tables to go on with) holding a
 * table of another job, or while a sync runs; a job with chunks left to copy while a sync runs.
 * The one rule for both the run and its dry run, so a rehearsal fails where the run will.
 */
export async function refuseToStart(conn: Pool | PoolConnection, specs: TableSpec[], restart: boolean): Promise<void> {
  const name = jobName(specs.map((s) => s.name));
  if (restart) {
    await refuseUnsafeRestart(conn, specs);
    await refuseWhileSyncRuns(conn, specs, 'full --restart');
    await refuseRestartUnderOtherCopy(conn, name, specs);
    return;
  }
  const current = await currentJob(conn, name);
  if (current) {
    // Copying the chunks left writes rows read now over what sync applies meanwhile, as a new job would.
    if (await hasChunksLeft(conn, current)) await refuseWhileSyncRuns(conn, specs, 'copying the chunks this job has left');
    return;
  }
  await refuseTablesOfOtherJobs(conn, name, specs);
  await refuseWhileSyncRuns(conn, specs, 'a new full copy');
}

/** Whether a job still has rows to copy: planning not finished, or a chunk not done. */
async function hasChunksLeft(conn: Pool | PoolConnection, job: { id: number; state: string }): Promise<boolean> {
  if (job.state === 'planning') return true;
  if (job.state === 'done') return false;
  const [rows] = await conn.query<RowDataPacket[]>("SELECT 1 FROM chunks WHERE job_id = ? AND state <> 'done' LIMIT 1", [job.id]);
  return rows.length > 0;
}

/** Plans every chunk on the locked connection, marks the job running, then lets the lock and the connection go. */
async function planThenRelease(conn: PoolConnection, lock: string, jobId: number, reader: SourceReader, specs: TableSpec[], options: OpenJobOptions): Promise<void> {
  try {
    if (!(await emptyFirstIfAsked(conn, jobId, options))) return;
    if (await planChunks(conn, jobId, reader, specs, options)) await conn.query("UPDATE jobs SET state = 'running' WHERE id = ?", [jobId]);
  } finally {
    await conn.query('SELECT RELEASE_LOCK(?)', [lock]).catch(() => {});
    conn.release();
  }
}

async function startPositions(reader: SourceReader, options: OpenJobOptions): Promise<StartPosition[]> {
  return [await reader.startPosition(), ...((await options.extraStartPositions?.()) ?? [])];
}

/** Start position first: before any chunk is read, in the transaction that creates the job. */
async function recordStartPositions(conn: PoolConnection, jobId: number, positions: StartPosition[]): Promise<void> {
  for (const p of positions) await conn.query('INSERT INTO cdc_start_positions (job_id, source_kind, position) VALUES (?, ?, ?)', [jobId, p.kind, JSON.stringify(p.position)]);
}

/**
 * A job created by --restart empties its shard tables before its first chunk is planned (so before
 * any is copied): the earlier copy's rows of keys deleted on the legacy side since would stay, and
 * sync, starting from the new job's position, would never delete them. The flag goes once they
 * are empty; a planner killed or stopped before that empties them on the next run (no chunk exists
 * yet). False when stopped before emptying: then nothing may be planned either, or the next run
 * would empty chunks already copied.
 */
async function emptyFirstIfAsked(conn: PoolConnection, jobId: number, options: OpenJobOptions): Promise<boolean> {
  const [rows] = await conn.query<RowDataPacket[]>('SELECT options FROM jobs WHERE id = ?', [jobId]);
  const stored = jobOptions(rows[0]?.options);
  if (!stored.emptyFirst) return true;
  if (!options.emptyShardTables) throw new Error(`job ${jobId} was restarted and must empty its shard tables first: run membermig full`);
  if (!(await untilOldWorkersLeft(conn, jobId, options)) || options.signal?.aborted) {
    options.logger.warn({ job: jobId }, '--restart: stopped before emptying the shard tables; the next membermig full empties them and copies again');
    return false;
  }
  options.logger.warn({ job: jobId }, '--restart: emptying the shard tables before copying again');
  await options.emptyShardTables();
  delete stored.emptyFirst;
  // Kept: the job's copy then holds every change before its start, so sync needs nothing older (supersededJobs).
  stored.emptied = true;
  // When, by the control store's clock: a verify run begun before that checked rows now gone (fullJobTables).
  await conn.query(`UPDATE jobs SET options = JSON_SET(?, '$.emptiedAt', DATE_FORMAT(NOW(6), '%Y-%m-%d %H:%i:%s.%f')) WHERE id = ?`, [JSON.stringify(stored), jobId]);
  return true;
}

/**
 * Processes still copying the job this one replaced stop writing once they see it abandoned (within
 * 0.5 s, or at their next heartbeat), but a write in flight lands after that: emptying waits until
 * they have left the workers table, or have been silent long enough that their writes ended. One cut
 * off from the control store starts no write once half a lease has passed without a renewal, and a
 * write started just before runs for at most twice the writer's lock wait: a lease alone was too
 * short by then (a row read before the restart could land in the emptied table). False when stopped
 * while waiting.
 */
async function untilOldWorkersLeft(conn: PoolConnection, jobId: number, options: OpenJobOptions): Promise<boolean> {
  const leaseSeconds = options.leaseSeconds ?? 120;
  const silentSeconds = Math.max(leaseSeconds, Math.ceil(leaseSeconds / 2) + WRITE_LIMIT_SECONDS + 5);
  for (let waited = 0; ; waited++) {
    const [rows] = await conn.query<RowDataPacket[]>(
      `SELECT COUNT(*) AS n FROM workers w JOIN jobs old ON old.id = w.job_id JOIN jobs j ON j.id = ? AND j.name = old.name
        WHERE old.kind = 'full' AND old.state = 'abandoned' AND old.id <> j.id AND w.heartbeat_at > NOW(6) - INTERVAL ? SECOND`,
      [jobId, silentSeconds],
    );
    if (Number(rows[0]!.n) === 0) return true;
    if (options.signal?.aborted) return false;
    if (waited === 0) options.logger.warn({ job: jobId, processes: Number(rows[0]!.n) }, '--restart: waiting for the processes still copying the earlier job to stop');
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A full-copy job that holds (or is putting) rows in the shards, with the tables it was started with. */
export interface FullJobTables {
  id: number;
  name: string;
  state: string;
  tables: string[];
}

/**
 * The full-copy jobs planning, running or done, oldest first; with `after`, only those that changed
 * the shard tables after a verify run began: created after it, or a --restart that emptied them
 * after it, or has still to (it was created before, but waits for the old job's processes first,
 * and a run in that wait checked the rows it then empties).
 */
export async function fullJobTables(pool: Pool | PoolConnection, after?: { verifyRunStarted: number }): Promise<FullJobTables[]> {
  const started = '(SELECT started_at FROM verify_runs WHERE id = ?)';
  const since = after
    ? `AND (created_at > ${started} OR JSON_UNQUOTE(JSON_EXTRACT(options, '$.emptyFirst')) = 'true'
        OR CAST(JSON_UNQUOTE(JSON_EXTRACT(options, '$.emptiedAt')) AS DATETIME(6)) > ${started})`
    : '';
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT id, name, state, options FROM jobs WHERE kind = 'full' AND state IN ('planning', 'running', 'done') ${since} ORDER BY id`,
    after ? [after.verifyRunStarted, after.verifyRunStarted] : [],
  );
  return rows.map((r) => ({ id: Number(r.id), name: String(r.name), state: String(r.state), tables: jobOptions(r.options).tables ?? [] }));
}

/**
 * Refuses (RefusedError) a sync while a full copy of one of `tables` has chunks left: a chunk read
 * before a change that sync applies would then write the older row over it, and sync, past that
 * change, would not bring it back. The mirror of full's refusal while a sync runs.
 */
export async function refuseSyncWhileCopying(pool: Pool | PoolConnection, tables: string[]): Promise<void> {
  const wanted = new Set(tables);
  for (const job of await fullJobTables(pool)) {
    const overlap = job.tables.filter((t) => wanted.has(t));
    if (overlap.length === 0 || !(await hasChunksLeft(pool, job))) continue;
    const [rows] = await pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n, COALESCE(SUM(state <> 'done'), 0) AS open FROM chunks WHERE job_id = ?", [job.id]);
    const left = job.state === 'planning' ? 'still planning its chunks' : `${Number(rows[0]!.open)} of ${Number(rows[0]!.n)} chunks not done`;
    throw new RefusedError(
      `sync while full copy job ${job.id} (${job.tables.join(',')}) has work left (${left}) would apply changes the copy may then overwrite with older rows: ` +
        'let the copy finish first (membermig full; status shows it), then start sync: it begins at the position the copy recorded before its first chunk',
    );
  }
}

/**
 * The newest full copy job of `table` that began (or emptied its shard tables) after verify run `runId` did: that run checked
 * rows the copy has since replaced (full --restart empties the shard tables first), so it no longer
 * vouches for the table. Undefined when there is none.
 */
export async function fullJobAfterVerify(pool: Pool | PoolConnection, table: string, runId: number): Promise<FullJobTables | undefined> {
  return (await fullJobTables(pool, { verifyRunStarted: runId })).reverse().find((j) => j.tables.includes(table));
}

/** A job's options column: JSON text on MariaDB, parsed on MySQL. */
export function jobOptions(raw: unknown): JobOptions {
  return typeof raw === 'string' ? JSON.parse(raw) : ((raw ?? {}) as JobOptions);
}

interface JobOptions {
  tables?: string[];
  /** --restart: the shard tables are to be emptied before the first chunk is planned. */
  emptyFirst?: boolean;
  /** A --restart whose shard tables were emptied: its copy holds every change before its start. */
  emptied?: boolean;
  /** When they were emptied (control-store time, 'YYYY-MM-DD hh:mm:ss.ffffff'). */
  emptiedAt?: string;
}

/** A full job as the start positions of sync need it. */
export interface StartJob {
  id: number;
  /** Null when not known (a job row that is gone). */
  tables: string[] | null;
  emptied: boolean;
}

/**
 * The jobs whose start positions no longer matter to sync: each of their tables was emptied and
 * copied again by a later job (full --restart), whose copy holds every change before its own start.
 * Sync can then start at the later job's position, even when the earlier one's changes are gone
 * from Kafka (retention) or SQL Server (cleanup): that is how a sync that fell behind recovers.
 */
export function supersededJobs(jobs: StartJob[], forTable?: string): Set<number> {
  const out = new Set<number>();
  for (const job of jobs) {
    if (job.tables === null || job.tables.length === 0) continue;
    // For one table (direct CDC reads per table) only that table needs copying again.
    const tables = forTable === undefined ? job.tables : job.tables.filter((t) => t === forTable);
    if (tables.length > 0 && tables.every((t) => jobs.some((later) => later.emptied && later.id > job.id && later.tables?.includes(t)))) out.add(job.id);
  }
  return out;
}

/** The full jobs as supersededJobs reads them. */
export async function startJobs(pool: Pool | PoolConnection): Promise<StartJob[]> {
  const [rows] = await pool.query<RowDataPacket[]>("SELECT id, options FROM jobs WHERE kind = 'full'");
  return rows.map((r) => {
    const o = jobOptions(r.options);
    return { id: Number(r.id), tables: o.tables ?? null, emptied: o.emptied === true };
  });
}

/**
 * A job is the set of tables it was started with. A new set holding a table another job has
 * copied or is copying would copy that table again (hours, at a billion rows) and record a second
 * start position for it: refused, naming the tables and the job, unless --restart (on purpose).
 */
async function refuseTablesOfOtherJobs(conn: Pool | PoolConnection, name: string, specs: TableSpec[]): Promise<void> {
  const wanted = new Set(specs.map((s) => s.name));
  for (const r of await fullJobTables(conn)) {
    if (r.name === name) continue;
    const tables = r.tables;
    const overlap = tables.filter((t) => wanted.has(t));
    if (overlap.length === 0) continue;
    const others = [...wanted].filter((t) => !overlap.includes(t));
    throw new RefusedError(
      `${overlap.join(', ')} ${overlap.length === 1 ? 'is' : 'are'} in full copy job ${r.id} (${tables.join(',')}, ${r.state}): ` +
        (others.length > 0 ? `copy the others with --tables ${others.join(',')}, or ` : '') +
        `pass --restart to copy ${wanted.size === 1 ? 'it' : 'them all'} again (their shard tables are emptied first)`,
    );
  }
}

/**
 * A --restart of some tables while another job still copies one of them (member while job
 * "member,address" runs): that job is not abandoned, and its workers would go on writing rows read
 * before the restart's start into the emptied tables (a key deleted meanwhile would come back).
 */
async function refuseRestartUnderOtherCopy(conn: Pool | PoolConnection, name: string, specs: TableSpec[]): Promise<void> {
  const wanted = new Set(specs.map((s) => s.name));
  for (const r of await fullJobTables(conn)) {
    const overlap = r.tables.filter((t) => wanted.has(t));
    if (r.name === name || r.state === 'done' || overlap.length === 0) continue;
    throw new RefusedError(
      `${overlap.join(', ')} ${overlap.length === 1 ? 'is' : 'are'} being copied by full copy job ${r.id} (${r.tables.join(',')}, ${r.state}): ` +
        `a --restart of ${[...wanted].join(',')} would empty ${overlap.length === 1 ? 'it' : 'them'} while that job still writes; ` +
        `let it finish first (full --tables ${r.tables.join(',')}), or restart that job itself (--tables ${r.tables.join(',')} --restart); ` +
        'either needs every table of that job in the config: put back one taken out since',
    );
  }
}

/**
 * --restart empties the shard tables and copies again. Refused while MySQL serves a table: some
 * member reads MySQL (a read percentage, the allowlist) or writes it first (mysql_only, or
 * dual_mysql_primary for the members inside its write percentage), where emptying would lose rows
 * users see or wrote.
 */
async function refuseUnsafeRestart(conn: Pool | PoolConnection, specs: TableSpec[]): Promise<void> {
  const snapshot = await readSettings(conn);
  for (const spec of specs) {
    const { shim, gray } = settingsOf(snapshot, spec.name);
    const someInside = gray.write_bp > 0 || gray.allow.length > 0;
    const serving = [
      ...(shim.mode === 'mysql_only' || (shim.mode === 'dual_mysql_primary' && someInside) ? [`shim mode ${shim.mode}, write ${gray.write_bp / 100}%`] : []),
      ...(gray.read_bp > 0 ? [`gray read ${gray.read_bp / 100}%`] : []),
      ...(gray.allow.length > 0 ? [`${gray.allow.length} allowlisted members`] : []),
    ];
    if (serving.length > 0) {
      throw new RefusedError(
        `table ${spec.name}: full --restart empties its shard tables, but MySQL serves it now (${serving.join(', ')}): roll back first (gray rollback ${spec.name} --to 0)`,
      );
    }
  }
}

/**
 * A new copy while a sync runs: sync applies a change, the copy then writes the older row it read
 * over it, and sync never applies that change again (its offset has passed it). Only a consumer
 * group that has committed nothing starts at a job's recorded position (kafka-start.ts), so the
 * new job's position would not help either. Sync stopped first and started afterwards replays from
 * where it stopped, which covers the copy.
 */
async function refuseWhileSyncRuns(conn: Pool | PoolConnection, specs: TableSpec[], what: string): Promise<void> {
  const live = await liveSyncs(conn, specs);
  if (live.length === 0) return;
  throw new RefusedError(
    `${what} while sync runs (${live.join('; ')}) would leave rows it applied during the copy overwritten by older ones: ` +
      `stop sync first (one that has stopped counts as running until ${SYNC_SILENT_MS / 1000} s after its last report: run again then); ` +
      'started again afterwards it replays from where it stopped (or from the copy\'s start, where retention or cleanup passed it)',
  );
}

/** Syncs that reported in the last SYNC_SILENT_MS: Kafka consumer groups, and direct CDC of these tables. */
async function liveSyncs(conn: Pool | PoolConnection, specs: TableSpec[]): Promise<string[]> {
  const seconds = SYNC_SILENT_MS / 1000;
  const [groups] = await conn.query<RowDataPacket[]>(
    'SELECT consumer_group AS g, TIMESTAMPDIFF(SECOND, MAX(updated_at), NOW(6)) AS ago FROM cdc_offsets WHERE updated_at > NOW(6) - INTERVAL ? SECOND GROUP BY consumer_group',
    [seconds],
  );
  const [instances] = await conn.query<RowDataPacket[]>(
    'SELECT capture_instance AS i, TIMESTAMPDIFF(SECOND, updated_at, NOW(6)) AS ago FROM cdc_lsn_positions WHERE table_name IN (?) AND updated_at > NOW(6) - INTERVAL ? SECOND',
    [specs.map((s) => s.name), seconds],
  );
  // Sync processes announce themselves (announceProcess) before their first report: one that just started counts too.
  const deadHere = new Set((await deadLocalWorkers(conn as Pool)).map((w) => w.id));
  const [processes] = await conn.query<RowDataPacket[]>(
    "SELECT id, TIMESTAMPDIFF(SECOND, heartbeat_at, NOW(6)) AS ago FROM workers WHERE command = 'sync' AND heartbeat_at > NOW(6) - INTERVAL ? SECOND",
    [seconds],
  );
  return [
    ...groups.map((r) => `consumer group ${r.g} reported ${Number(r.ago)} s ago`),
    ...instances.map((r) => `direct CDC of ${r.i} reported ${Number(r.ago)} s ago`),
    ...processes.filter((r) => !deadHere.has(String(r.id))).map((r) => `sync process ${r.id} seen ${Number(r.ago)} s ago`),
  ];
}

/** Chunks are inserted at least this often while planning, so workers can start on them. */
const PLAN_FLUSH_MS = 200;
/**
 * The first chunks of a table are inserted one by one, as soon as planned: held back for
 * PLAN_FLUSH_MS, they kept all but one worker waiting at the start of each copy.
 */
const PLAN_AT_ONCE_CHUNKS = 16;

/**
 * Plans each table's chunks after the last one already planned (a killed planner's work is kept:
 * its chunks may have been copied already). A table whose open-ended last chunk exists is planned.
 * False when stopped early by the signal.
 */
async function planChunks(conn: PoolConnection, jobId: number, reader: SourceReader, specs: TableSpec[], options: OpenJobOptions): Promise<boolean> {
  const pool = conn as unknown as Pool; // only runs queries: fine on the locked connection
  for (const spec of specs) {
    const [last] = await conn.query<RowDataPacket[]>('SELECT chunk_no, upper_key FROM chunks WHERE job_id = ? AND table_name = ? ORDER BY chunk_no DESC LIMIT 1', [jobId, spec.name]);
    if (last[0] && last[0].upper_key === null) continue;
    let chunkNo = last[0] ? Number(last[0].chunk_no) + 1 : 0;
    let lower = last[0] ? parseChunkKey(last[0].upper_key) : null;
    if (lower) options.logger.info({ job: jobId, table: spec.name, after: lower }, 'planning goes on after the chunks planned before');
    let pending: NewChunk[] = [];
    let flushedAt = 0;
    for await (const upper of reader.chunkBoundaries(spec, options.chunkRows, lower)) {
      if (options.signal?.aborted) {
        await insertChunks(pool, jobId, pending);
        return false;
      }
      pending.push({ tableName: spec.name, chunkNo: chunkNo++, lowerKey: lower, upperKey: upper });
      lower = upper;
      if (pending.length >= 1000 || chunkNo <= PLAN_AT_ONCE_CHUNKS || Date.now() - flushedAt >= PLAN_FLUSH_MS) {
        await insertChunks(pool, jobId, pending);
        pending = [];
        flushedAt = Date.now();
      }
    }
    pending.push({ tableName: spec.name, chunkNo: chunkNo++, lowerKey: lower, upperKey: null });
    await insertChunks(pool, jobId, pending);
    options.logger.info({ job: jobId, table: spec.name, chunks: chunkNo }, 'planned chunks');
  }
  return true;
}

export async function startPositionsOf(store: ControlStore, jobId: number): Promise<StartPosition[]> {
  const [rows] = await store.pool.query<RowDataPacket[]>('SELECT source_kind, position FROM cdc_start_positions WHERE job_id = ? ORDER BY source_kind', [jobId]);
  return rows.map((r) => ({ kind: r.source_kind, position: typeof r.position === 'string' ? JSON.parse(r.position) : r.position }));
}
