import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { Logger } from '../log.js';
import type { RetryPolicy } from '../mysql/retry.js';
import { renewLeases, type Chunk } from './leases.js';

/**
 * A process working on a job (full or verify): a row in the workers table (status shows it) and a
 * heartbeat that keeps the leases of the chunks it holds alive. Both commands join their jobs
 * this one way, so a rerun after a kill -9 of either takes the dead process's chunks at once.
 */

export interface JobWorker {
  /** The lease owner's name in the chunks table. */
  readonly id: string;
  /** Stops the heartbeat and removes the worker's row (its leases run out, or were recorded). */
  stop(): Promise<void>;
}

export interface JobWorkerOptions {
  /** From newWorkerId. */
  id: string;
  jobId: number;
  command: 'full' | 'verify';
  leaseSeconds: number;
  /** The chunks this process holds now: the only leases it renews (a claim whose reply was lost is taken up again at expiry). */
  held: () => Chunk[];
  /** Runs after each renewal, with the chunks it renewed (full: the take-over check, its fences, progress). */
  afterRenewal?: (renewed: Chunk[]) => Promise<void>;
  logger: Logger;
  /** Between heartbeats; a third of a lease by default, so two can fail before a lease runs out. */
  heartbeatMs?: number;
}

/** A worker's name: unique, and telling where it runs. */
/** What a process's chunk claims of one job need: full's ChunkClaims and verify's ChunkLedger. */
export interface ChunkClaimsOf {
  pool: Pool;
  jobId: number;
  workerId: string;
  leaseSeconds: number;
  /** A deadlock or a control-store blip while claiming is retried. */
  retry: RetryPolicy;
  logger: Logger;
}

export function newWorkerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/** Registers this process on a job after releasing the leases of dead workers of this host, and starts its heartbeat. */
export async function startJobWorker(pool: Pool, options: JobWorkerOptions): Promise<JobWorker> {
  const { id, jobId, command, leaseSeconds, logger } = options;
  await releaseDeadLocalWorkers(pool, logger);
  await pool.query(
    'INSERT INTO workers (id, job_id, command, host, pid) VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE job_id = VALUES(job_id), heartbeat_at = NOW(6)',
    [id, jobId, command, hostname(), process.pid],
  );
  const beat = async () => {
    const held = options.held();
    await renewLeases(pool, jobId, id, leaseSeconds, held);
    await options.afterRenewal?.(held);
    await pool.query('UPDATE workers SET heartbeat_at = NOW(6) WHERE id = ?', [id]);
  };
  const timer = setInterval(() => void beat().catch((e: Error) => logger.warn({ err: e.message }, 'heartbeat failed')), options.heartbeatMs ?? Math.max(500, (leaseSeconds * 1000) / 3));
  return {
    id,
    async stop() {
      clearInterval(timer);
      await pool.query('DELETE FROM workers WHERE id = ?', [id]).catch(() => {});
    },
  };
}

/** A process that holds no job but must be seen while it runs: a workers row without a job, kept fresh. */
export interface ProcessPresence {
  id: string;
  stop(): Promise<void>;
}

/**
 * Announces this process as `command` (sync: full refuses to start while one runs) until stop().
 * The heartbeat writes the row again if it went (a control store restored), and does not keep the
 * process alive; a killed process's row is taken for dead by its age, or at once on its own host.
 */
export async function announceProcess(pool: Pool, command: string, logger: Logger, heartbeatMs: number): Promise<ProcessPresence> {
  const id = newWorkerId();
  await releaseDeadLocalWorkers(pool, logger);
  const beat = () =>
    pool.query('INSERT INTO workers (id, job_id, command, host, pid) VALUES (?, NULL, ?, ?, ?) ON DUPLICATE KEY UPDATE heartbeat_at = NOW(6)', [id, command, hostname(), process.pid]);
  await beat();
  const timer = setInterval(() => void beat().catch((e: Error) => logger.warn({ err: e.message }, 'heartbeat failed')), heartbeatMs);
  timer.unref();
  return {
    id,
    async stop() {
      clearInterval(timer);
      await pool.query('DELETE FROM workers WHERE id = ?', [id]).catch(() => {});
    },
  };
}

/**
 * Workers registered from this host whose process is gone (kill -9, a crash) give their leases up
 * now instead of at expiry (lease_seconds, 2 minutes by default). Only a process that is certainly
 * dead here is released; a mistake (another machine with the same host name) costs only a chunk
 * done twice, and both commands' chunk work is idempotent.
 */
async function releaseDeadLocalWorkers(pool: Pool, logger: Logger): Promise<void> {
  for (const w of await deadLocalWorkers(pool)) {
    const [res] = await pool.query<ResultSetHeader>("UPDATE chunks SET lease_until = NOW(6) - INTERVAL 1 SECOND WHERE lease_owner = ? AND state = 'leased'", [w.id]);
    await pool.query('DELETE FROM workers WHERE id = ?', [w.id]);
    if (res.affectedRows > 0) logger.info({ worker: w.id, command: w.command, chunks: res.affectedRows }, 'took over the chunks of a dead worker on this host');
  }
}

/** Workers registered from this host whose process is gone: certainly dead, whatever their heartbeat says. */
export async function deadLocalWorkers(pool: Pool): Promise<{ id: string; command: string }[]> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT id, pid, command FROM workers WHERE host = ?', [hostname()]);
  return rows.filter((w) => Number(w.pid) !== process.pid && !isAlive(Number(w.pid))).map((w) => ({ id: String(w.id), command: String(w.command) }));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: alive, another user's.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
