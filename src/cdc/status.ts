import type { Pool } from 'mysql2/promise';
import { deadLetterCounts, type DeadLetterCounts } from './deadletters.js';
import { mssqlCdcStatus, type MssqlCdcInstanceStatus } from './mssql/position.js';
import { readOffsetMirror, type PartitionLag } from './offsets.js';
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
