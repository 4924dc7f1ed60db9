import type { RowDataPacket } from 'mysql2/promise';
import type { Config } from '../config/schema.js';
import { RefusedError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RejectedValue } from '../rows/convert.js';
import type { TableSpec } from '../rows/types.js';
import type { ShardMap } from '../shard/map.js';
import { UnrepresentableError, type SourceReader } from '../source/index.js';
import type { ControlStore } from '../store/control.js';
import { chunkCounts, chunksTakenOver, completeChunk, releaseChunk, type Chunk } from '../store/leases.js';
import { newWorkerId, startJobWorker } from '../store/workers.js';
import { ChunkClaims } from './claims.js';
import { refuseShapeProblems } from '../target/shape.js';
import { checkServerTables, emptyShardTables } from '../target/tables.js';
import type { ReplicaLagGate } from '../target/replica-lag.js';
import type { ShardWriter } from '../target/writer.js';
import { ChunkCopier, type ChunkHandoff, type CopyMethod } from './chunk.js';
import { openJob, type FullJob } from './job.js';
import { kafkaStartPositions } from './kafka.js';
import { sleep, withRetry, type RetryPolicy } from '../mysql/retry.js';
import { emptyResult, summarize } from './summary.js';
import { leaseSafetyProblem } from './fence.js';
import { createThrottle } from './throttle.js';
import { STOPPED_BEFORE_RESTART, STOPPED_ON_REQUEST, type FullCopyOptions, type FullCopyResult, type TableProgress } from './types.js';

/** The workers of one process on one full-copy job, and what they share. */

export interface JobContext {
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
  /** Writes to a server wait while its replicas lag (src/target/replica-lag.ts). */
  replicaLag: ReplicaLagGate;
}

export async function copyJob(ctx: JobContext): Promise<FullCopyResult> {
  const { config, store, logger } = ctx;
  const started = Date.now();
  const stopPlanning = new AbortController();
  const run: RunState = { rows: 0, chunks: 0, rowsByTable: new Map(), errors: [], stopping: false, planning: false, leasesRenewedAt: Date.now(), leasesLost: null };
  // A stop asked for (SIGINT/SIGTERM): the workers take no new chunk, and what they hold is finished and recorded.
  // Listened for before the job is opened: one during start-up keeps a restart from dropping progress and emptying tables.
  const onStop = () => {
    if (!run.stopping) run.errors.push(STOPPED_ON_REQUEST);
    run.stopping = true;
    stopPlanning.abort();
  };
  ctx.options.signal?.addEventListener('abort', onStop, { once: true });
  if (ctx.options.signal?.aborted) onStop();
  try {
    const job = await openJob(store, ctx.reader, ctx.specs, {
      restart: ctx.options.restart === true,
      chunkRows: config.copy.chunk_rows,
      logger,
      extraStartPositions: () => kafkaStartPositions(config, logger),
      signal: stopPlanning.signal,
      leaseSeconds: config.copy.lease_seconds,
      emptyShardTables: async () => {
        const emptied = await emptyShardTables(config, ctx.map, ctx.specs);
        logger.info({ tables: emptied }, 'shard tables emptied');
      },
    });
    if (!job) return { ...emptyResult(ctx.specs, ctx.method), state: 'incomplete', seconds: (Date.now() - started) / 1000, errors: [STOPPED_BEFORE_RESTART] };
    run.planning = job.planned;
    // Workers copy chunks while they are being planned; a planning failure stops them.
    const planned = job.planning.then(
      () => void (run.planning = false),
      (e: unknown) => {
        run.planning = false;
        run.stopping = true;
        throw e;
      },
    );
    planned.catch(() => {}); // awaited below; this only keeps an early failure from counting as unhandled
    if (job.state !== 'done') {
      try {
        // Chunks given up by an earlier run (server down, bad value) get another try now.
        await store.pool.query("UPDATE chunks SET state = 'pending', lease_owner = NULL, lease_until = NULL WHERE job_id = ? AND state = 'failed'", [job.id]);
        await runWorkers(ctx, job, run);
      } finally {
        // Workers end normally only once planning is done; after a failure, planning stops too.
        stopPlanning.abort();
        await planned;
      }
    } else {
      logger.info({ job: job.id }, 'this full copy is already done (use --restart to copy again)');
    }
    return await summarize(ctx, job, run, (Date.now() - started) / 1000);
  } finally {
    ctx.options.signal?.removeEventListener('abort', onStop);
  }
}

export interface RunState {
  rows: number;
  chunks: number;
  rowsByTable: Map<string, number>;
  errors: string[];
  /** Set on a fatal error or an abandoned job: workers take no new chunks. */
  stopping: boolean;
  /** This process is still planning chunks: a worker finding none waits for more. */
  planning: boolean;
  /** When this process last renewed its leases (Date.now()): writes wait when that is too long ago (src/copy/fence.ts). */
  leasesRenewedAt: number;
  /** Set when another process took over chunks this one holds: no more writes. */
  leasesLost: string | null;
}

async function runWorkers(ctx: JobContext, job: FullJob, run: RunState): Promise<void> {
  const { config, store, logger } = ctx;
  const leaseSeconds = config.copy.lease_seconds;
  const specs = new Map(ctx.specs.map((s) => [s.name, s]));
  // The control store may blip (a restart, a failover): claims ride it out like shard writes do.
  const retry: RetryPolicy = { retries: config.copy.retries, baseMs: config.copy.retry_base_ms };
  const workerId = newWorkerId();
  const claims = new ChunkClaims({ pool: store.pool, jobId: job.id, workerId, leaseSeconds, retry, logger, planning: () => run.planning, stopping: () => run.stopping });
  const progress = new Progress(ctx, job.id);
  const member = await startJobWorker(store.pool, {
    id: workerId,
    jobId: job.id,
    command: 'full',
    leaseSeconds,
    logger,
    held: () => [...claims.held.values()],
    afterRenewal: (renewed) => afterLeaseRenewal(ctx, job.id, run, renewed, progress),
  });
  const copier = new ChunkCopier({
    config,
    reader: ctx.reader,
    writer: ctx.writer,
    throttle: createThrottle(ctx.options.maxRowsPerSec ?? config.copy.max_rows_per_sec),
    logger,
    method: ctx.method,
    beforeWrite: beforeEachWrite(ctx, job.id, run, leaseSeconds),
  });
  await progress.refresh();
  // The totals grow while chunks are planned: show the final ones as soon as they are known.
  job.planning.then(() => progress.refresh()).catch(() => {});

  const worker = async (): Promise<void> => {
    while (!run.stopping) {
      const next = await claims.next();
      if (next === null) return;
      if ('waitMs' in next) {
        await sleep(next.waitMs);
        continue;
      }
      const { chunk } = next;
      const spec = specs.get(chunk.tableName)!;
      let handoff: ChunkHandoff;
      try {
        handoff = await copier.copy(spec, chunk);
      } catch (e) {
        // Known at once (a read failed, a value the target cannot hold): recorded before the next claim.
        await finishChunk(ctx, spec, chunk, { written: Promise.reject(e), drained: Promise.resolve() }, workerId, run, progress, retry);
        claims.release(chunk);
        continue;
      }
      // The worker goes on to its next chunk while this one's batched rows wait for their writes.
      const completion = finishChunk(ctx, spec, chunk, handoff, workerId, run, progress, retry);
      completions.add(completion);
      void completion.finally(() => {
        completions.delete(completion);
        claims.release(chunk);
      });
    }
  };
  const completions = new Set<Promise<void>>();
  try {
    // One worker failing stops the others, and all have ended before the pools close: a worker left
    // running on closed pools kept the process alive after the command had failed.
    const outcomes = await Promise.allSettled(
      Array.from({ length: ctx.workers }, () =>
        worker().catch((e: unknown) => {
          run.stopping = true;
          throw e;
        }),
      ),
    );
    // Whatever is still batched is written, also after a failure: those rows are good, and their chunks get recorded.
    await copier.flush();
    await Promise.all(completions);
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
    await progress.refresh();
  } finally {
    await member.stop();
  }
}

/**
 * After each lease renewal (every third of a lease): stops the run when another process took over
 * chunks this one holds (or restarted the job), lets writes waiting on the lease fence go, and
 * refreshes the progress.
 */
async function afterLeaseRenewal(ctx: JobContext, jobId: number, run: RunState, renewed: Chunk[], progress: Progress): Promise<void> {
  const { store } = ctx;
  const lost = await chunksTakenOver(store.pool, renewed);
  if (lost.length > 0 && !run.leasesLost) {
    const names = lost.map((c) => `${c.tableName} chunk ${c.chunkNo}`).join(', ');
    run.leasesLost = `${names}: taken over by another process while this one could not renew its leases; this process writes no more`;
    run.errors.push(run.leasesLost);
    run.stopping = true;
  }
  run.leasesRenewedAt = Date.now();
  const [rows] = await store.pool.query<RowDataPacket[]>('SELECT state FROM jobs WHERE id = ?', [jobId]);
  if (rows[0]?.state === 'abandoned' && !run.stopping) {
    run.stopping = true;
    run.errors.push(`job ${jobId} was restarted by another process (--restart); this run stopped`);
  }
  await progress.refresh();
}

/**
 * Runs before each write to a shard server: the fences, then the late shape check.
 * - Leases not renewed for half their length may soon pass to another process, which would re-read
 *   the rows and write them: a write of ours after that could put older rows over newer ones. So
 *   writes wait for the next renewal, which also checks that no chunk this process holds was
 *   taken over meanwhile (src/copy/fence.ts, chunksTakenOver); if one was, they stop.
 * - A job another process restarted (--restart) gets no more writes from this one: its rows were
 *   read before the new job's CDC start position, so sync from there would never put back what
 *   they overwrite. The heartbeat notices that too, but only every lease_seconds / 3.
 */
function beforeEachWrite(ctx: JobContext, jobId: number, run: RunState, leaseSeconds: number): (server: string) => Promise<void> {
  const shapeCheck = lateShapeCheck(ctx);
  const jobAbandoned = jobAbandonedCheck(ctx, jobId);
  return async (server) => {
    // First, as it may wait long: the lease fence and the job's state are checked right before the write.
    await ctx.replicaLag.waitFor(server, () => run.stopping);
    let problem = leaseSafetyProblem(run.leasesRenewedAt, Date.now(), leaseSeconds);
    if (problem && !run.leasesLost && !run.stopping) ctx.logger.warn({ server, reason: problem }, 'writes wait for a lease renewal');
    while (problem && !run.leasesLost && !run.stopping) {
      await sleep(250);
      problem = leaseSafetyProblem(run.leasesRenewedAt, Date.now(), leaseSeconds);
    }
    if (run.leasesLost) throw new Error(run.leasesLost);
    if (problem) throw new Error(problem);
    if (await jobAbandoned()) {
      const message = `job ${jobId} was restarted by another process (--restart): this process writes no more of it`;
      if (!run.errors.includes(message)) run.errors.push(message);
      run.stopping = true;
      throw new Error(message);
    }
    await shapeCheck(server);
  };
}

/** How long one look at the job's state serves the writes after it (a restart then stops them within this). */
const JOB_STATE_FRESH_MS = 500;

/**
 * Whether the job is known to be abandoned, looked up at most every JOB_STATE_FRESH_MS for all the
 * writes of the process (one control-store query per write cost ~4% of a whole copy). A control
 * store that cannot answer does not stop writes.
 */
function jobAbandonedCheck(ctx: JobContext, jobId: number): () => Promise<boolean> {
  let last: { at: number; answer: Promise<boolean> } | null = null;
  return () => {
    if (last && Date.now() - last.at < JOB_STATE_FRESH_MS) return last.answer;
    const answer = (async () => {
      try {
        // Bounded: a hung control store must not hold every write up.
        const [rows] = await ctx.store.pool.query<RowDataPacket[]>({ sql: 'SELECT state FROM jobs WHERE id = ?', values: [jobId], timeout: 2000 });
        return rows[0]?.state === 'abandoned';
      } catch {
        return false;
      }
    })();
    last = { at: Date.now(), answer };
    return answer;
  };
}

/** How long a failed late shape check answers for its server's writes. */
const LATE_CHECK_RETRY_MS = 10_000;

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
      // A failed attempt (still down) is tried again by the next write; one that timed out (a hung server) only after
      // LATE_CHECK_RETRY_MS: each write asking anew waited out a connect timeout of its own (10 s, every retry).
      check.catch((e: { code?: string }) => {
        if (e.code !== 'ETIMEDOUT') pending.delete(server);
        else setTimeout(() => pending.delete(server), LATE_CHECK_RETRY_MS).unref();
      });
      pending.set(server, check);
    }
    return check;
  };
}

/** Records a chunk once its rows are written: done (with its rejected values), or failed with the reason. */
async function finishChunk(
  ctx: JobContext,
  spec: TableSpec,
  chunk: Chunk,
  { written, drained }: ChunkHandoff,
  workerId: string,
  run: RunState,
  progress: Progress,
  retry: RetryPolicy,
): Promise<void> {
  const { store, logger } = ctx;
  try {
    const outcome = await written;
    const what = `record ${spec.name} chunk ${chunk.chunkNo} in the control store`;
    await withRetry(what, retry, logger, () => recordRejected(store, chunk, outcome.rejected));
    const result = { servers: outcome.servers, rejected: outcome.rejected.length, method: outcome.method };
    if (await withRetry(what, retry, logger, () => completeChunk(store.pool, chunk, workerId, outcome.rows, result))) {
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
    // Held (its lease renewed) until its lines for other servers are written too: see LoadBatcher's partEnded.
    await drained;
    await releaseChunk(store.pool, chunk, workerId, message, 'failed').catch(() => {});
    // Both stop the run: every other chunk would meet them too.
    if (e instanceof UnrepresentableError) {
      run.stopping = true;
      run.errors.push(`${message}; rows.on_unrepresentable is fail (set it to record to skip and record such values)`);
    } else if (e instanceof RefusedError && !run.errors.includes(message)) {
      run.stopping = true;
      run.errors.push(message);
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
