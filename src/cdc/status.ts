import type { Pool } from 'mysql2/promise';
import { renderTable } from '../cli/render.js';
import { deadLetterCounts, type DeadLetterCounts } from './deadletters.js';
import { mssqlCdcStatus, type MssqlCdcInstanceStatus } from './mssql/position.js';
import { readOffsetMirror, SYNC_SILENT_MS, type PartitionLag } from './offsets.js';
import { parkedCounts } from './parking.js';

export interface SyncStatus {
  partitions: PartitionLag[];
  /** Direct SQL Server CDC (cdc.mssql): where each capture instance stands. */
  captureInstances: MssqlCdcInstanceStatus[];
  /** Largest lag over all partitions, in events and in seconds (null when nothing was synced yet). */
  maxLagMessages: number | null;
  maxLagSeconds: number | null;
  deadLetters: DeadLetterCounts;
  /** Writes waiting for a shard server that could not take them (cdc_parked), per server. */
  parked: { server: string; count: number }[];
}

/** The sync section of `membermig status`, read from the control store only (no Kafka round trip). */
export async function collectSyncStatus(pool: Pool): Promise<SyncStatus> {
  const partitions = await readOffsetMirror(pool);
  const captureInstances = await mssqlCdcStatus(pool);
  const lags = partitions.map((p) => p.lagMessages).filter((n): n is number => n !== null);
  const seconds = [...partitions, ...captureInstances].map((p) => p.lagSeconds).filter((n): n is number => n !== null);
  return {
    partitions,
    captureInstances,
    maxLagMessages: lags.length > 0 ? Math.max(...lags) : null,
    maxLagSeconds: seconds.length > 0 ? Math.max(...seconds) : null,
    deadLetters: await deadLetterCounts(pool),
    parked: [...(await parkedCounts(pool))].map(([server, count]) => ({ server, count })),
  };
}

/** Lines for people: lag per partition or capture instance, and open dead letters. */
export function renderSyncStatus(s: SyncStatus): string[] {
  const out: string[] = [];
  if (s.partitions.length > 0) {
    out.push(
      '',
      renderTable(
        ['sync group', 'topic', 'partition', 'next offset', 'lag events', 'lag s', 'applied', 'updated'],
        s.partitions.map((p) => [p.group, p.topic, p.partition, p.nextOffset, p.lagMessages, p.lagSeconds === null ? null : p.lagSeconds.toFixed(1), p.appliedEvents, p.updatedAt]),
      ),
    );
  }
  if (s.captureInstances.length > 0) {
    out.push(
      '',
      renderTable(
        ['capture instance', 'table', 'last lsn', 'inside transaction at seqval', 'lag s', 'applied', 'updated'],
        s.captureInstances.map((i) => [i.instance, i.table, i.lastLsn, i.lastSeqval ?? '-', i.lagSeconds, i.eventsApplied, i.updatedAt]),
      ),
    );
  }
  const lastReport = s.partitions.length > 0 ? Math.min(...s.partitions.map((p) => p.reportedSecondsAgo)) : null;
  if (lastReport !== null && lastReport * 1000 > SYNC_SILENT_MS) {
    out.push('', `no sync has reported for ${lastReport.toFixed(0)} s (is one running?): lag events are as of its last report, lag seconds count from it`);
  }
  for (const p of s.parked) out.push('', `shard server ${p.server}: ${p.count} writes parked until it is reachable again`);
  if (s.deadLetters.open > 0 || s.deadLetters.resolved > 0) {
    out.push('', `dead letters: ${s.deadLetters.open} open, ${s.deadLetters.resolved} resolved` + (s.deadLetters.open > 0 ? ' (membermig sync dead-letters lists them; fix, then sync --retry-dead-letters)' : ''));
  }
  return out;
}
