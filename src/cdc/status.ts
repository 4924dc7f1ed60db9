import type { Pool } from 'mysql2/promise';
import type { Config } from '../config/schema.js';
import { withKafkaAdmin } from './kafka-admin.js';
import { partitionProgress, type PartitionProgress } from './kafka-progress.js';
import { readConnectors, type ConnectorHealth } from './connect.js';
import { latestConnectorOutage, type ConnectorOutage } from './connector-outages.js';
import { deadLetterCounts, type DeadLetterCounts } from './deadletters.js';
import { mssqlCdcStatus, type MssqlCdcInstanceStatus } from './mssql/position.js';
import { partitionLagSeconds, readOffsetMirror, type PartitionLag } from './offsets.js';
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
  /** What the broker said of the group's partitions (absent without cdc.kafka). */
  kafka?: KafkaView;
}

/**
 * The change topics as the broker has them now. When it answered, the partitions' lag events are
 * its (the mirror's are as of sync's last report, which says nothing of events since, nor of
 * events retention deleted while no sync ran).
 */
export type KafkaView =
  | { reachable: true; group: string; retentionGaps: RetentionGap[]; missingTopics: string[] }
  | { reachable: false; group: string; error: string };

/** A partition where the group's position is below the oldest event the broker keeps: the changes between are gone. */
export interface RetentionGap {
  topic: string;
  partition: number;
  nextOffset: number;
  oldestKept: number;
}

/** How long status waits for the broker (or Kafka Connect) before it shows what the control store holds alone. */
const KAFKA_STATUS_TIMEOUT_MS = 3000;

/**
 * The sync section of `membermig status`, read from the control store, with the change topics' ends
 * from the broker (when cdc.kafka is set and it answers within 3 s) and the connectors' states from
 * Kafka Connect when the config names them.
 */
export async function collectSyncStatus(pool: Pool, kafka?: NonNullable<Config['cdc']>['kafka']): Promise<SyncStatus> {
  // The broker and Connect are asked while the control store is read: each waits up to 3 s.
  const asking = Promise.all([kafka ? readBroker(kafka) : undefined, kafka?.connect ? readConnectors(kafka.connect, KAFKA_STATUS_TIMEOUT_MS) : undefined]);
  asking.catch(() => undefined);
  const mirror = await readOffsetMirror(pool);
  const captureInstances = await mssqlCdcStatus(pool);
  const deadLetters = await deadLetterCounts(pool);
  const parked = [...(await parkedCounts(pool))].map(([server, count]) => ({ server, count }));
  const lastConnectorOutage = await latestConnectorOutage(pool, kafka?.connect?.connectors);
  const [live, connectors] = await asking;
  const progress = live?.progress;
  const partitions = progress ? mirror.partitions.map((p) => withBroker(p, progress, mirror.nowMs)) : mirror.partitions;
  const lags = partitions.map((p) => p.lagMessages).filter((n): n is number => n !== null);
  const seconds = [...partitions, ...captureInstances].map((p) => p.lagSeconds).filter((n): n is number => n !== null);
  return {
    partitions,
    captureInstances,
    maxLagMessages: lags.length > 0 ? Math.max(...lags) : null,
    maxLagSeconds: seconds.length > 0 ? Math.max(...seconds) : null,
    deadLetters,
    parked,
    ...(connectors ? { connectors } : {}),
    lastConnectorOutage,
    ...(live ? { kafka: live.view } : {}),
  };
}

async function readBroker(kafka: NonNullable<NonNullable<Config['cdc']>['kafka']>): Promise<{ view: KafkaView; progress?: PartitionProgress[] }> {
  const topics = Array.isArray(kafka.topic) ? kafka.topic : [kafka.topic];
  // Bounded so that a client the race below leaves behind gives up soon too (status --watch makes one per refresh).
  const client = { clientId: kafka.client_id, brokers: kafka.brokers, connectionTimeout: KAFKA_STATUS_TIMEOUT_MS, requestTimeout: KAFKA_STATUS_TIMEOUT_MS, retry: { retries: 1 } };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${KAFKA_STATUS_TIMEOUT_MS / 1000} s`)), KAFKA_STATUS_TIMEOUT_MS);
  });
  try {
    // A topic the broker lacks is named, not taken for a broker that cannot be asked.
    const { missingTopics, progress } = await Promise.race([
      withKafkaAdmin(client, async (admin) => {
        const existing = new Set(await admin.listTopics());
        const present = topics.filter((t) => existing.has(t));
        return { missingTopics: topics.filter((t) => !existing.has(t)), progress: present.length > 0 ? await partitionProgress(admin, kafka.group, present) : [] };
      }),
      timeout,
    ]);
    const retentionGaps = progress
      .filter((p) => p.committed && BigInt(p.nextOffset) < BigInt(p.lowWatermark))
      .map((p) => ({ topic: p.topic, partition: p.partition, nextOffset: Number(p.nextOffset), oldestKept: Number(p.lowWatermark) }));
    return { view: { reachable: true, group: kafka.group, retentionGaps, missingTopics }, progress };
  } catch (e) {
    return { view: { reachable: false, group: kafka.group, error: `Kafka at ${kafka.brokers.join(', ')} (cdc.kafka.brokers): ${(e as Error).message}` } };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A mirrored partition of the configured group with the broker's end: its lag events and seconds as
 * of now, the control server's (`nowMs`, when the mirror was read): this host's clock, minutes off,
 * made a partition 2 s behind 600 s behind, or one 5 minutes behind caught up.
 */
function withBroker(p: PartitionLag, progress: PartitionProgress[], nowMs: number): PartitionLag {
  const now = progress.find((n) => n.group === p.group && n.topic === p.topic && n.partition === p.partition);
  if (!now) return p;
  const nextOffset = Math.max(p.nextOffset, Number(now.nextOffset));
  const highWatermark = Number(now.highWatermark);
  const lagMessages = Math.max(0, highWatermark - nextOffset);
  let lagSeconds = partitionLagSeconds({ behind: lagMessages, lastSourceTsMs: p.lastSourceTsMs, updatedMs: nowMs - p.reportedSecondsAgo * 1000, nowMs });
  // Caught up at the report: what is behind now came since, whenever the last applied event was.
  if (p.lagMessages === 0 && lagSeconds !== null) lagSeconds = Math.min(lagSeconds, p.reportedSecondsAgo);
  return { ...p, nextOffset, highWatermark, lagMessages, lagSeconds };
}
