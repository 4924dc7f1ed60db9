import { hostname } from 'node:os';
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { Config } from '../config/schema.js';
import { RefusedError } from '../errors.js';
import { connectMysql } from '../mysql/connect.js';
import { silentLogger, type Logger } from '../log.js';
import type { RejectedValue } from '../rows/convert.js';
import type { TableSpec } from '../rows/types.js';
import { shardMapFromConfig, type ShardMap } from '../shard/map.js';
import { createSourceReader, describeTables, UnrepresentableError, type SourceReader, type StartPosition } from '../source/index.js';
import { controlSchemaState, openControlStore, type ControlStore } from '../store/control.js';
import { chunkCounts, claimChunk, completeChunk, newWorkerId, releaseChunk, renewLeases, type Chunk, type ChunkKey } from '../store/leases.js';
import { refuseShapeProblems } from '../target/shape.js';
import { checkServerTables, planShardTables } from '../target/tables.js';
import { createShardWriter, type ShardWriter } from '../target/writer.js';
import { ChunkCopier, type CopyMethod } from './chunk.js';
import { openJob, startPositionsOf, type FullJob } from './job.js';
import { kafkaStartPositions } from './kafka.js';
import { isTransient, sleep } from './retry.js';
import { createThrottle } from './throttle.js';

export interface FullCopyOptions {
  logger?: Logger;
  /** Logical table names (default: every table in the config). */
  tables?: string[];
  /** Show the plan (chunks, shards, servers) and change nothing. */
  dryRun?: boolean;
  /** Drop the job's progress on purpose and start it again. */
  restart?: boolean;
  maxRowsPerSec?: number;
  /** Chunk workers in this process (default copy.workers). */
  workers?: number;
  onProgress?: (progress: TableProgress[]) => void;
}

export interface TableProgress {
  table: string;
  chunksTotal: number;
  chunksDone: number;
  rowsDone: number;
}

export interface LeftChunk {
  table: string;
  chunkNo: number;
  state: string;
  lowerKey: ChunkKey | null;
  upperKey: ChunkKey | null;
  error: string | null;
}

export interface TablePlan {
  table: string;
  source: string;
  target: string;
  chunks: number;
  chunkRows: number;
}

export interface FullCopyResult {
  jobId: number | null;
  job: string;
  /** done: every chunk copied; incomplete: chunks are left (see `left`); planned: --dry-run. */
  state: 'done' | 'incomplete' | 'planned';
  method: CopyMethod;
  startPositions: StartPosition[];
  tables: { table: string; chunks: number; chunksDone: number; rows: number; rowsThisRun: number; servers: Record<string, number> }[];
  servers: { server: string; rows: number; shards: number }[];
  seconds: number;
  rowsThisRun: number;
  rowsPerSec: number;
  chunksThisRun: number;
  rejectedValues: number;
  left: LeftChunk[];
  /** Why the run stopped early (e.g. a value the target cannot hold, with on_unrepresentable: fail). */
  errors: string[];
  plan?: { tables: TablePlan[]; shards: number; servers: { server: string; shards: number }[] };
}

/**
 * Phase 1: copies every row of the configured tables into its shard, chunk by chunk, and can be
 * killed at any moment and run again. Refuses (RefusedError, nothing written) when a source
 * table, key or shard table is not what the config and the row pipeline expect.
 */
export async function runFullCopy(config: Config, options: FullCopyOptions = {}): Promise<FullCopyResult> {
  const logger = options.logger ?? silentLogger;
  const names = options.tables && options.tables.length > 0 ? options.tables : Object.keys(config.tables);
  const workers = options.workers ?? config.copy.workers;
  const map = shardMapFromConfig(config);
  const reader = createSourceReader({ ...config, copy: { ...config.copy, workers } }, logger);
  try {
    const specs = await describeTables(reader, config, names);
    const tables = await planShardTables(config, map, specs, { tolerateUnreachable: isTransient });
    for (const server of tables.unreachable) logger.warn({ server }, 'shard server unreachable: its tables are checked before its first write');
    const missing = [...tables.missing.values()].flat();
    if (missing.length > 0) {
      const first = missing[0]!;
      throw new RefusedError(`table ${first.spec.name}: shard table ${first.database}.${first.spec.target} does not exist (${missing.length} missing): run membermig init first`);
    }
    const method = await chooseMethod(config, reader, logger, tables.unreachable);
    if (options.dryRun) return await dryRun(config, map, reader, specs, method);

    const store = openControlStore(config, workers + 3);
    try {
      const schema = await controlSchemaState(store);
      if (!schema.exists || schema.appliedVersion !== schema.latestVersion) throw new RefusedError('the control store is not initialised or not up to date: run membermig init first');
      const writer = createShardWriter(config);
      try {
        return await copyJob({ config, options, logger, map, reader, writer, store, specs, method, workers, unchecked: tables.unreachable });
      } finally {
        await writer.close();
      }
    } finally {
      await store.close();
    }
  } finally {
    await reader.close();
  }
}

/**
 * The bulk path needs a source that builds LOAD DATA text and shard servers that accept LOAD DATA
 * LOCAL (local_infile, off by default on MySQL 8). With method auto the row path takes over
 * otherwise; with method load that is refused.
 */
async function chooseMethod(config: Config, reader: SourceReader, logger: Logger, unreachable: string[]): Promise<CopyMethod> {
  const wanted = config.copy.method;
  if (wanted === 'insert') return 'insert';
  if (!reader.readTsv) {
    if (wanted === 'load') logger.warn(`copy.method load needs a source that builds LOAD DATA lines; ${reader.kind} does not, using insert`);
    return 'insert';
  }
  const refusing: string[] = [];
  for (const [name, server] of Object.entries(config.servers)) {
    if (unreachable.includes(name)) continue;
    const conn = await connectMysql(server.primary, { database: undefined }, server.tls);
    try {
      const [rows] = await conn.query<RowDataPacket[]>('SELECT @@global.local_infile AS v');
      if (Number(rows[0]?.v) !== 1) refusing.push(name);
    } finally {
      await conn.end();
    }
  }
  if (refusing.length === 0) return 'load';
  const why = `shard server ${refusing.join(', ')} has local_infile off, so LOAD DATA LOCAL cannot be used`;
  if (wanted === 'load') throw new RefusedError(`copy.method load: ${why} (SET GLOBAL local_infile = 1, or use method auto/insert)`);
  logger.warn(`${why}: copying with multi-row upserts (slower)`);
  return 'insert';
}

async function dryRun(config: Config, map: ShardMap, reader: SourceReader, specs: TableSpec[], method: CopyMethod): Promise<FullCopyResult> {
  const plans: TablePlan[] = [];
  for (const spec of specs) {
    let chunks = 1;
    for await (const _bound of reader.chunkBoundaries(spec, config.copy.chunk_rows)) chunks++;
    plans.push({ table: spec.name, source: `${spec.sourceSchema}.${spec.sourceTable}`, target: spec.target, chunks, chunkRows: config.copy.chunk_rows });
  }
  const servers = map.servers().map((s) => ({ server: s.name, shards: map.shardsOn(s.name).length }));
  return {
    ...emptyResult(specs, method),
    state: 'planned',
    tables: plans.map((p) => ({ table: p.table, chunks: p.chunks, chunksDone: 0, rows: 0, rowsThisRun: 0, servers: {} })),
    servers: servers.map((s) => ({ ...s, rows: 0 })),
    plan: { tables: plans, shards: map.count, servers },
  };
}

function emptyResult(specs: TableSpec[], method: CopyMethod): FullCopyResult {
  return {
    jobId: null,
    job: specs.map((s) => s.name).join(','),
    state: 'done',
    method,
    startPositions: [],
    tables: [],
    servers: [],
    seconds: 0,
    rowsThisRun: 0,
    rowsPerSec: 0,
    chunksThisRun: 0,
    rejectedValues: 0,
    left: [],
    errors: [],
  };
}

interface JobContext {
  config: Config;
  options: FullCopyOptions;
  logger: Logger;
  map: ShardMap;
  reader: SourceReader;
  writer: ShardWriter;
  store: ControlStore;
  specs: TableSpec[];
  method: CopyMethod;
  workers: number;
  /** Shard servers that were down at the start: their tables are checked before the first write. */
  unchecked: string[];
}

async function copyJob(ctx: JobContext): Promise<FullCopyResult> {
  const { config, store, logger } = ctx;
  const started = Date.now();
  const job = await openJob(store, ctx.reader, ctx.specs, {
    restart: ctx.options.restart === true,
    chunkRows: config.copy.chunk_rows,
    logger,
    extraStartPositions: () => kafkaStartPositions(config, logger),
  });
  const run: RunState = { rows: 0, chunks: 0, rowsByTable: new Map(), errors: [], stopping: false };
  if (job.state !== 'done') {
    // Chunks given up by an earlier run (server down, bad value) get another try now.
    await store.pool.query("UPDATE chunks SET state = 'pending', lease_owner = NULL, lease_until = NULL WHERE job_id = ? AND state = 'failed'", [job.id]);
    await runWorkers(ctx, job, run);
  } else {
    logger.info({ job: job.id }, 'this full copy is already done (use --restart to copy again)');
  }
  return summarize(ctx, job, run, (Date.now() - started) / 1000);
}

interface RunState {
  rows: number;
  chunks: number;
  rowsByTable: Map<string, number>;
  errors: string[];
  /** Set on a fatal error or an abandoned job: workers take no new chunks. */
  stopping: boolean;
}

async function runWorkers(ctx: JobContext, job: FullJob, run: RunState): Promise<void> {
  const { config, store, logger } = ctx;
  const workerId = newWorkerId();
  const leaseSeconds = config.copy.lease_seconds;
  const specs = new Map(ctx.specs.map((s) => [s.name, s]));
  const copier = new ChunkCopier({
    config,
    reader: ctx.reader,
    writer: ctx.writer,
    throttle: createThrottle(ctx.options.maxRowsPerSec ?? config.copy.max_rows_per_sec),
    logger,
    method: ctx.method,
    beforeWrite: lateShapeCheck(ctx),
  });
  await releaseDeadLocalWorkers(store, logger);
  await store.pool.query('INSERT INTO workers (id, job_id, command, host, pid) VALUES (?, ?, ?, ?, ?)', [workerId, job.id, 'full', hostname(), process.pid]);
  const progress = new Progress(ctx, job.id);
  await progress.refresh();

  const heartbeat = setInterval(() => {
    void (async () => {
      await renewLeases(store.pool, job.id, workerId, leaseSeconds);
      await store.pool.query('UPDATE workers SET heartbeat_at = NOW(6) WHERE id = ?', [workerId]);
      const [rows] = await store.pool.query<RowDataPacket[]>('SELECT state FROM jobs WHERE id = ?', [job.id]);
      if (rows[0]?.state === 'abandoned' && !run.stopping) {
        run.stopping = true;
        run.errors.push(`job ${job.id} was restarted by another process (--restart); this run stopped`);
      }
      await progress.refresh();
    })().catch((e: Error) => logger.warn({ error: e.message }, 'heartbeat failed'));
  }, Math.max(500, (leaseSeconds * 1000) / 3));

  const worker = async (): Promise<void> => {
    while (!run.stopping) {
      const chunk = await claimChunk(store.pool, job.id, workerId, leaseSeconds);
      if (!chunk) {
        // Chunks leased by another process are finished by it or, if it died, taken over here at lease expiry.
        // Chunks leased by this process are finished by its other workers.
        if (!(await othersHoldChunks(store, job.id, workerId))) return;
        await sleep(Math.min(1000, (leaseSeconds * 1000) / 4));
        continue;
      }
      await copyOne(ctx, copier, specs.get(chunk.tableName)!, chunk, workerId, run, progress);
    }
  };
  try {
    await Promise.all(Array.from({ length: ctx.workers }, worker));
  } finally {
    clearInterval(heartbeat);
    await store.pool.query('DELETE FROM workers WHERE id = ?', [workerId]).catch(() => {});
  }
}

/** The refuse-before-write check for a server that was down at the start, run once before its first write. */
function lateShapeCheck(ctx: JobContext): (server: string) => Promise<void> {
  const pending = new Map<string, Promise<void>>();
  return (server) => {
    if (!ctx.unchecked.includes(server)) return Promise.resolve();
    let check = pending.get(server);
    if (!check) {
      check = checkServerTables(ctx.config, ctx.map, ctx.specs, server).then((found) => {
        const first = found.missing[0];
        if (first) throw new RefusedError(`table ${first.spec.name}: shard table ${first.database}.${first.spec.target} does not exist on server ${server}: run membermig init`);
        refuseShapeProblems(found.problems);
      });
      // A failed attempt (still down) is tried again by the next write.
      check.catch(() => pending.delete(server));
      pending.set(server, check);
    }
    return check;
  };
}

/**
 * Workers registered from this host whose process is gone (kill -9, a crash) give their leases up
 * now instead of at expiry. Only a process that is certainly dead here is released; a mistake
 * (another machine with the same host name) costs only a chunk copied twice, idempotently.
 */
async function releaseDeadLocalWorkers(store: ControlStore, logger: Logger): Promise<void> {
  const [rows] = await store.pool.query<RowDataPacket[]>("SELECT id, pid FROM workers WHERE host = ? AND command = 'full'", [hostname()]);
  for (const w of rows) {
    if (Number(w.pid) === process.pid || isAlive(Number(w.pid))) continue;
    const [res] = await store.pool.query<ResultSetHeader>(
      "UPDATE chunks SET lease_until = NOW(6) - INTERVAL 1 SECOND WHERE lease_owner = ? AND state = 'leased'",
      [w.id],
    );
    await store.pool.query('DELETE FROM workers WHERE id = ?', [w.id]);
    if (res.affectedRows > 0) logger.info({ worker: w.id, chunks: res.affectedRows }, 'took over the chunks of a dead worker on this host');
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function othersHoldChunks(store: ControlStore, jobId: number, workerId: string): Promise<boolean> {
  const [rows] = await store.pool.query<RowDataPacket[]>(
    "SELECT 1 FROM chunks WHERE job_id = ? AND (state = 'pending' OR (state = 'leased' AND lease_owner <> ?)) LIMIT 1",
    [jobId, workerId],
  );
  return rows.length > 0;
}

async function copyOne(ctx: JobContext, copier: ChunkCopier, spec: TableSpec, chunk: Chunk, workerId: string, run: RunState, progress: Progress): Promise<void> {
  const { store, logger } = ctx;
  try {
    const outcome = await copier.copy(spec, chunk);
    await recordRejected(store, chunk, outcome.rejected);
    const result = { servers: outcome.servers, rejected: outcome.rejected.length, method: outcome.method };
    if (await completeChunk(store.pool, chunk, workerId, outcome.rows, result)) {
      run.rows += outcome.rows;
      run.chunks++;
      run.rowsByTable.set(spec.name, (run.rowsByTable.get(spec.name) ?? 0) + outcome.rows);
      progress.chunkDone(spec.name, outcome.rows);
    } else {
      logger.warn({ table: spec.name, chunk: chunk.chunkNo }, 'lease lost to another worker; its copy of this chunk counts');
    }
  } catch (e) {
    const message = (e as Error).message;
    logger.error({ table: spec.name, chunk: chunk.chunkNo, error: message }, 'chunk not copied');
    await releaseChunk(store.pool, chunk, workerId, message, 'failed').catch(() => {});
    if (e instanceof UnrepresentableError || e instanceof RefusedError) {
      run.stopping = true;
      run.errors.push(`${message}; rows.on_unrepresentable is fail (set it to record to skip and record such values)`);
    }
  }
}

/** Replaces a chunk's records in rejected_values, so a redone chunk does not count them twice. */
async function recordRejected(store: ControlStore, chunk: Chunk, rejected: RejectedValue[]): Promise<void> {
  await store.pool.query('DELETE FROM rejected_values WHERE job_id = ? AND table_name = ? AND chunk_no = ?', [chunk.jobId, chunk.tableName, chunk.chunkNo]);
  if (rejected.length === 0) return;
  await store.pool.query('INSERT INTO rejected_values (job_id, table_name, pk, column_name, value, reason, chunk_no) VALUES ?', [
    rejected.map((r) => [chunk.jobId, r.table, JSON.stringify(r.key), r.column, r.value.slice(0, 60_000), r.reason, chunk.chunkNo]),
  ]);
}

/** Per-table progress for bars and log lines: the job's totals from the control store plus this process's work. */
class Progress {
  private tables = new Map<string, TableProgress>();
  constructor(
    private readonly ctx: JobContext,
    private readonly jobId: number,
  ) {}

  async refresh(): Promise<void> {
    for (const c of await chunkCounts(this.ctx.store.pool, this.jobId)) {
      this.tables.set(c.tableName, { table: c.tableName, chunksTotal: c.pending + c.leased + c.done + c.failed, chunksDone: c.done, rowsDone: c.rowsDone });
    }
    this.emit();
  }

  chunkDone(table: string, rows: number): void {
    const t = this.tables.get(table);
    if (t) {
      t.chunksDone++;
      t.rowsDone += rows;
    }
    this.emit();
  }

  private emit(): void {
    this.ctx.options.onProgress?.([...this.tables.values()]);
  }
}

interface ChunkRow extends RowDataPacket {
  table_name: string;
  chunk_no: number;
  state: string;
  lower_key: unknown;
  upper_key: unknown;
  rows_done: number | string | null;
  result: unknown;
  last_error: string | null;
}

const parseJson = <T>(v: unknown): T | null => (v === null || v === undefined ? null : typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));

async function summarize(ctx: JobContext, job: FullJob, run: RunState, seconds: number): Promise<FullCopyResult> {
  const { store, map } = ctx;
  const [chunks] = await store.pool.query<ChunkRow[]>(
    'SELECT table_name, chunk_no, state, lower_key, upper_key, rows_done, result, last_error FROM chunks WHERE job_id = ? ORDER BY table_name, chunk_no',
    [job.id],
  );
  const tables = new Map<string, FullCopyResult['tables'][number]>();
  for (const spec of ctx.specs) tables.set(spec.name, { table: spec.name, chunks: 0, chunksDone: 0, rows: 0, rowsThisRun: run.rowsByTable.get(spec.name) ?? 0, servers: {} });
  const serverRows: Record<string, number> = {};
  const left: LeftChunk[] = [];
  for (const c of chunks) {
    const t = tables.get(c.table_name)!;
    t.chunks++;
    if (c.state !== 'done') {
      left.push({ table: c.table_name, chunkNo: c.chunk_no, state: c.state, lowerKey: parseJson(c.lower_key), upperKey: parseJson(c.upper_key), error: c.last_error });
      continue;
    }
    t.chunksDone++;
    t.rows += Number(c.rows_done ?? 0);
    const result = parseJson<{ servers?: Record<string, number> }>(c.result);
    for (const [server, n] of Object.entries(result?.servers ?? {})) {
      t.servers[server] = (t.servers[server] ?? 0) + n;
      serverRows[server] = (serverRows[server] ?? 0) + n;
    }
  }
  const [rejected] = await store.pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM rejected_values WHERE job_id = ?', [job.id]);
  const complete = left.length === 0 && chunks.length > 0;
  if (complete) await store.pool.query("UPDATE jobs SET state = 'done', finished_at = COALESCE(finished_at, NOW(6)) WHERE id = ? AND state = 'running'", [job.id]);
  return {
    ...emptyResult(ctx.specs, ctx.method),
    jobId: job.id,
    job: job.name,
    state: complete ? 'done' : 'incomplete',
    startPositions: await startPositionsOf(store, job.id),
    tables: [...tables.values()],
    servers: map.servers().map((s) => ({ server: s.name, rows: serverRows[s.name] ?? 0, shards: map.shardsOn(s.name).length })),
    seconds,
    rowsThisRun: run.rows,
    rowsPerSec: seconds > 0 ? run.rows / seconds : 0,
    chunksThisRun: run.chunks,
    rejectedValues: Number(rejected[0]?.n ?? 0),
    left,
    errors: run.errors,
  };
}
