import type { Pool } from 'mysql2/promise';
import { readConnectors, type ConnectorHealth, type ConnectTarget } from './connect.js';
import { latestConnectorOutage, type ConnectorOutage } from './connector-outages.js';
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
  /** The connectors of cdc.kafka.connect as Kafka Connect reports them (absent when not configured). */
  connectors?: ConnectorHealth[];
  /** The latest time a connector was seen not running (cdc_connector_outages), if any. */
  lastConnectorOutage: ConnectorOutage | null;
}

/**
 * The sync section of `membermig status`, read from the control store (no Kafka round trip), and the
 * connectors' states from Kafka Connect when the config names them.
 */
export async function collectSyncStatus(pool: Pool, connect?: ConnectTarget): Promise<SyncStatus> {
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
    ...(connect ? { connectors: await readConnectors(connect, 3000) } : {}),
    lastConnectorOutage: await latestConnectorOutage(pool, connect?.connectors),
  };
}
