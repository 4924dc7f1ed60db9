import mysql, { type Pool, type RowDataPacket } from 'mysql2/promise';
import type { MssqlCdcInstanceStatus } from '../cdc/mssql/position.js';
import type { Status } from './status.js';
import { formatRanges } from '../ranges.js';

/**
 * One line per configured table, put together from the sections each phase collects: what an
 * operator (or a CI gate reading `status --json`) looks at first.
 */
export interface TableStatus {
  table: string;
  /** The newest full-copy job of this table (started with it, or holding chunks of it). */
  fullCopy: { jobId: number; state: string; stopped: boolean; chunksDone: number; chunksTotal: number; chunksFailed: number; rows: number } | null;
  /** Over the partitions of this table's change topics (topic name ending in the table's source name), or its capture instances. */
  /** From Kafka partitions, or (direct CDC) capture instances: then lagEvents is unknown and lastLsn is set. */
  sync: { partitions: number; nextOffsets: number[]; lagEvents: number | null; lagSeconds: number | null; appliedEvents: number; lastLsn?: string } | null;
  lastVerify: { runId: number; state: string; finishedAt: string; ageSeconds: number; scope: string; differences: number; repaired: number; copiedSince: number | null } | null;
  shimMode: string | null;
  grayRead: string | null;
  grayWrite: string | null;
  /** Members on the gray allowlist (MySQL whatever the percentages) and denylist (always legacy). */
  grayAllowed: number;
  grayDenied: number;
  deadLettersOpen: number;
  repairQueueOpen: number;
  /** Chunks of this table leased right now (full copy or verify workers). */
  leasedChunks: number;
}

/**
 * How many processes work on job `alias`.id right now: a worker counts while its heartbeat is
 * younger than a lease (its leases would have run out otherwise), unless it is in `deadHere`
 * (registered from this host, its process gone: known dead at once, see deadLocalWorkers). A job
 * left 'planning' or 'running' with none was stopped (SIGINT, kill -9, a crash): a rerun goes on.
 */
export function liveWorkersSql(alias: string, deadHere: string[]): string {
  const notDead = deadHere.length > 0 ? ` AND w.id NOT IN (${mysql.escape(deadHere)})` : '';
  return `(SELECT COUNT(*) FROM workers w WHERE w.job_id = ${alias}.id AND w.heartbeat_at >= NOW(6) - INTERVAL ? SECOND${notDead})`;
}

/** True for a job not finished and with no live worker. */
export function isStopped(state: string, liveWorkers: number): boolean {
  return (state === 'planning' || state === 'running') && liveWorkers === 0;
}

/** A chunk lease held right now: which worker, which job and table, how many chunks, when it runs out. */
export interface LeaseStatus {
  worker: string;
  jobId: number;
  table: string;
  chunks: number;
  /** Seconds until the earliest of these leases expires (negative: expired, about to be taken over). */
  expiresInSeconds: number;
}

export async function collectLeases(pool: Pool): Promise<LeaseStatus[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT lease_owner, job_id, table_name, COUNT(*) AS n, MIN(TIMESTAMPDIFF(SECOND, NOW(6), lease_until)) AS expires
       FROM chunks WHERE state = 'leased' GROUP BY lease_owner, job_id, table_name ORDER BY lease_owner, job_id, table_name`,
  );
  return rows.map((r) => ({ worker: r.lease_owner ?? '-', jobId: Number(r.job_id), table: r.table_name, chunks: Number(r.n), expiresInSeconds: Number(r.expires) }));
}

/** Verify's scope as one short text: "all" for a full pass, else what narrowed it. */
export function describeScope(scope: Record<string, unknown> | null): string {
  if (!scope) return '-';
  const parts: string[] = [];
  if (scope.shards !== undefined && scope.shards !== 'all') parts.push(`shards ${Array.isArray(scope.shards) ? formatRanges(scope.shards as number[]) : String(scope.shards)}`);
  if (scope.sample !== undefined && scope.sample !== null) parts.push(`sample ${String(scope.sample)}%`);
  if (scope.since !== undefined && scope.since !== null) parts.push(`since ${String(scope.since)}`);
  if (scope.repair === 'yes') parts.push('repair');
  return parts.length === 0 ? 'all rows' : parts.join(', ');
}

/** True when a change topic belongs to a table: Debezium names topics prefix.database.table (SQL Server: prefix.database.schema.table). */
function topicOfTable(topic: string, source: string, tableCount: number): boolean {
  return tableCount === 1 || topic.toLowerCase().endsWith(`.${source.toLowerCase()}`);
}

function directCdcSync(instances: MssqlCdcInstanceStatus[]): TableStatus['sync'] {
  if (instances.length === 0) return null;
  const seconds = instances.map((i) => i.lagSeconds).filter((n): n is number => n !== null);
  const newest = instances.reduce((a, b) => (b.updatedAt > a.updatedAt ? b : a));
  return {
    partitions: 0,
    nextOffsets: [],
    lagEvents: null,
    lagSeconds: seconds.length > 0 ? Math.max(...seconds) : null,
    appliedEvents: instances.reduce((a, i) => a + i.eventsApplied, 0),
    lastLsn: newest.lastLsn,
  };
}

export function tableStatuses(s: Pick<Status, 'tables' | 'jobs' | 'gray' | 'verify' | 'sync'> & { leases?: LeaseStatus[] }): TableStatus[] {
  return s.tables.map((t) => {
    // By the tables a job was started with too: a restart stopped before its first chunk has dropped the old
    // job's progress, and showing that job's rows would claim a copy the next run empties (JobStatus.tables).
    const fullJob = s.jobs.find((j) => j.kind === 'full' && (j.tables.includes(t.name) || j.chunks.some((c) => c.tableName === t.name)));
    const chunks = fullJob?.chunks.find((c) => c.tableName === t.name);
    const partitions = (s.sync?.partitions ?? []).filter((p) => topicOfTable(p.topic, t.source, s.tables.length));
    const lags = partitions.map((p) => p.lagMessages).filter((n): n is number => n !== null);
    const seconds = partitions.map((p) => p.lagSeconds).filter((n): n is number => n !== null);
    const verify = s.verify?.latest.find((v) => v.table === t.name);
    const gray = s.gray?.tables.find((g) => g.table === t.name);
    return {
      table: t.name,
      fullCopy:
        fullJob
          ? {
              jobId: fullJob.id,
              state: fullJob.state,
              stopped: fullJob.stopped,
              chunksDone: chunks?.done ?? 0,
              chunksTotal: chunks ? chunks.pending + chunks.leased + chunks.done + chunks.failed : 0,
              chunksFailed: chunks?.failed ?? 0,
              rows: chunks?.rowsDone ?? 0,
            }
          : null,
      sync:
        partitions.length === 0
          ? directCdcSync(s.sync?.captureInstances.filter((i) => i.table === t.name) ?? [])
          : {
              partitions: partitions.length,
              nextOffsets: partitions.map((p) => p.nextOffset),
              lagEvents: lags.length > 0 ? lags.reduce((a, b) => a + b, 0) : null,
              lagSeconds: seconds.length > 0 ? Math.max(...seconds) : null,
              appliedEvents: partitions.reduce((a, p) => a + p.appliedEvents, 0),
            },
      lastVerify: verify
        ? {
            runId: verify.runId,
            state: verify.state,
            finishedAt: verify.finishedAt,
            ageSeconds: verify.ageSeconds,
            scope: describeScope(verify.scope),
            differences: verify.differences,
            repaired: verify.repaired,
            copiedSince: verify.copiedSince,
          }
        : null,
      shimMode: gray?.mode ?? null,
      grayRead: gray?.read ?? null,
      grayWrite: gray?.write ?? null,
      grayAllowed: gray?.allow ?? 0,
      grayDenied: gray?.deny ?? 0,
      deadLettersOpen: s.sync?.deadLetters.openByTable.filter((d) => d.table === t.name).reduce((a, d) => a + d.count, 0) ?? 0,
      repairQueueOpen: s.verify?.repairQueue.find((q) => q.table === t.name)?.open ?? 0,
      leasedChunks: (s.leases ?? []).filter((l) => l.table === t.name).reduce((a, l) => a + l.chunks, 0),
    };
  });
}
