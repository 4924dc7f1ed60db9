import type { Pool, RowDataPacket } from 'mysql2/promise';
import { isoTime } from '../mysql/iso-time.js';
import { sourceTimeAheadSeconds } from './source-clock.js';

/**
 * cdc_offsets: the control store's mirror of the consumer group's committed offsets, written after
 * each commit, with the partition end seen then and the source commit time of the last applied
 * event: what status, the metrics and gray's lag gate read without asking Kafka.
 */
export interface OffsetMirror {
  group: string;
  topic: string;
  partition: number;
  nextOffset: string;
  highWatermark: string | null;
  lastSourceTsMs: number | null;
  appliedEvents: number;
}

export async function mirrorOffsets(pool: Pool, mirrors: OffsetMirror[]): Promise<void> {
  if (mirrors.length === 0) return;
  // GREATEST: a member that lost the partition in a rebalance never moves the mirror back.
  await pool.query(
    `INSERT INTO cdc_offsets (consumer_group, topic, partition_no, next_offset, high_watermark, last_source_ts_ms, applied_events)
     VALUES ${mirrors.map(() => '(?, ?, ?, ?, ?, ?, ?)').join(', ')}
     ON DUPLICATE KEY UPDATE
       last_source_ts_ms = IF(VALUES(next_offset) >= next_offset, COALESCE(VALUES(last_source_ts_ms), last_source_ts_ms), last_source_ts_ms),
       high_watermark = GREATEST(COALESCE(high_watermark, 0), COALESCE(VALUES(high_watermark), 0)),
       next_offset = GREATEST(next_offset, VALUES(next_offset)),
       applied_events = applied_events + VALUES(applied_events)`,
    mirrors.flatMap((m) => [m.group, m.topic, m.partition, m.nextOffset, m.highWatermark, m.lastSourceTsMs, m.appliedEvents]),
  );
}

/** A partition whose committed offset has reached its end (everything in it is applied). */
export interface CaughtUpPartition {
  group: string;
  topic: string;
  partition: number;
  /** The committed offset (0 when nothing was ever committed and the partition is empty). */
  nextOffset: string;
  highWatermark: string;
}

/**
 * Marks partitions that have applied everything their topic holds as caught up now. The mirror is
 * written when batches come, so a partition with nothing new would age in it, and the gray gate
 * would take a quiet partition for a lagging one. A partition that never had a message gets its
 * row, so the gate sees every partition of the topic.
 */
export async function markPartitionsCaughtUp(pool: Pool, partitions: CaughtUpPartition[]): Promise<void> {
  if (partitions.length === 0) return;
  await pool.query(
    `INSERT INTO cdc_offsets (consumer_group, topic, partition_no, next_offset, high_watermark, last_source_ts_ms, applied_events)
     VALUES ${partitions.map(() => '(?, ?, ?, ?, ?, NULL, 0)').join(', ')}
     ON DUPLICATE KEY UPDATE
       updated_at = NOW(6),
       high_watermark = GREATEST(COALESCE(high_watermark, 0), VALUES(high_watermark)),
       next_offset = GREATEST(next_offset, VALUES(next_offset))`,
    partitions.flatMap((p) => [p.group, p.topic, p.partition, p.nextOffset, p.highWatermark]),
  );
}

/**
 * Gives a partition that is behind its row when it has none yet (no batch of it applied so far):
 * without one the gray gate saw only the other, caught-up partitions of the topic and passed.
 * The row has no event time, so the gate reads its lag as unknown until events are applied; a
 * row that exists keeps its applied position and event time, and learns the new end.
 */
export async function markPartitionsBehind(pool: Pool, partitions: CaughtUpPartition[]): Promise<void> {
  if (partitions.length === 0) return;
  await pool.query(
    `INSERT INTO cdc_offsets (consumer_group, topic, partition_no, next_offset, high_watermark, last_source_ts_ms, applied_events)
     VALUES ${partitions.map(() => '(?, ?, ?, ?, ?, NULL, 0)').join(', ')}
     ON DUPLICATE KEY UPDATE high_watermark = GREATEST(COALESCE(high_watermark, 0), VALUES(high_watermark))`,
    partitions.flatMap((p) => [p.group, p.topic, p.partition, p.nextOffset, p.highWatermark]),
  );
}

export interface PartitionLag {
  group: string;
  topic: string;
  partition: number;
  nextOffset: number;
  highWatermark: number | null;
  lagMessages: number | null;
  /** See partitionLagSeconds: what status shows and what the gray/shim gate holds against its limit. */
  lagSeconds: number | null;
  lastSourceTsMs: number | null;
  appliedEvents: number;
  updatedAt: string;
  /** How long ago a sync last wrote this row: lagMessages is as of then. */
  reportedSecondsAgo: number;
}

/** A running sync reports every few seconds (kafka-progress.ts); silent longer than this, none is likely running. */
export const SYNC_SILENT_MS = 30_000;

/**
 * How far behind one partition's shards are, in seconds: behind the broker, now − the source time
 * of the last applied event (null when none had a time, or it is ahead of now: see source-clock.ts);
 * caught up, now − when sync last said so (a sync that stopped an hour ago was caught up an hour
 * ago, not now). One rule for status and the sync_lag gate.
 */
export function partitionLagSeconds(p: { behind: number; lastSourceTsMs: number | null; updatedMs: number; nowMs: number }): number | null {
  if (p.behind > 0) {
    if (p.lastSourceTsMs === null || sourceTimeAheadSeconds(p.lastSourceTsMs, p.nowMs) !== null) return null;
    return Math.max(0, (p.nowMs - p.lastSourceTsMs) / 1000);
  }
  return Math.max(0, (p.nowMs - p.updatedMs) / 1000);
}

/**
 * The mirror's partitions, and the control server's clock as they were read (nowMs): what a lag
 * worked out later (status, with the broker's end) is taken against, never the reading host's clock.
 */
export async function readOffsetMirror(pool: Pool): Promise<{ nowMs: number; partitions: PartitionLag[] }> {
  const [now] = await pool.query<RowDataPacket[]>('SELECT CAST(UNIX_TIMESTAMP(NOW(6)) * 1000 AS SIGNED) AS now_ms');
  const nowMs = Number(now[0]!.now_ms);
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT consumer_group, topic, partition_no, next_offset, high_watermark, last_source_ts_ms, applied_events,
            ${isoTime('updated_at')}, CAST(UNIX_TIMESTAMP(updated_at) * 1000 AS SIGNED) AS updated_ms
       FROM cdc_offsets ORDER BY consumer_group, topic, partition_no`,
  );
  const partitions = rows.map((r) => {
    const next = Number(r.next_offset);
    const high = r.high_watermark === null ? null : Number(r.high_watermark);
    const lagMessages = high === null ? null : Math.max(0, high - next);
    const ts = r.last_source_ts_ms === null ? null : Number(r.last_source_ts_ms);
    return {
      group: r.consumer_group,
      topic: r.topic,
      partition: Number(r.partition_no),
      nextOffset: next,
      highWatermark: high,
      lagMessages,
      lagSeconds: partitionLagSeconds({ behind: lagMessages ?? 0, lastSourceTsMs: ts, updatedMs: Number(r.updated_ms), nowMs }),
      lastSourceTsMs: ts,
      appliedEvents: Number(r.applied_events),
      updatedAt: r.updated_at,
      reportedSecondsAgo: Math.max(0, (nowMs - Number(r.updated_ms)) / 1000),
    };
  });
  return { nowMs, partitions };
}
