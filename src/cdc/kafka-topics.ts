import type { Admin } from 'kafkajs';
import type { RowDataPacket } from 'mysql2/promise';
import { RefusedError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ControlStore } from '../store/control.js';
import { kafkaStartOffsets } from './kafka-start.js';

/**
 * What sync checks and sets on the change topics and its consumer group before it consumes: the
 * topics exist and keep every event, a fresh group starts where `full` recorded, and a group that
 * retention has passed is refused.
 */
export async function prepareTopics(admin: Admin, o: { store: ControlStore; group: string; topics: string[]; brokers: string[]; logger: Logger }): Promise<void> {
  await requireTopics(admin, o.topics, o.brokers);
  await startAtRecordedPosition(admin, o.store, o.group, o.topics, o.logger);
  await refuseRetentionGaps(admin, o.group, o.topics);
}

/** Retries what Kafka calls retriable (a coordinator still loading, a leader moving) for up to a minute. */
async function retrying<T>(work: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await work();
    } catch (e) {
      if ((e as { retriable?: boolean }).retriable !== true || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function requireTopics(admin: Admin, topics: string[], brokers: string[]): Promise<void> {
  const existing = new Set(await retrying(() => admin.listTopics()));
  const missing = topics.filter((t) => !existing.has(t));
  if (missing.length > 0) throw new RefusedError(`topic ${missing.join(', ')} does not exist on ${brokers.join(', ')} (cdc.kafka.topic)`);
  await refuseCompactedTopics(admin, topics);
}

/**
 * Compaction keeps only each key's last event: a delete's event goes and its tombstone stays, and
 * an update that moved a member to another shard can go behind a later one, so the copy left on
 * the old shard would never be deleted. Change topics must keep every event (cleanup.policy=delete).
 */
/** kafkajs' ConfigResourceTypes.TOPIC: the CommonJS module's enum is not a named ESM export at run time. */
const TOPIC_RESOURCE = 2;

async function refuseCompactedTopics(admin: Admin, topics: string[]): Promise<void> {
  const described = await retrying(() =>
    admin.describeConfigs({ resources: topics.map((name) => ({ type: TOPIC_RESOURCE, name, configNames: ['cleanup.policy'] })), includeSynonyms: false }),
  );
  const compacted = described.resources.filter((r) => r.configEntries.some((e) => e.configName === 'cleanup.policy' && (e.configValue ?? '').includes('compact')));
  if (compacted.length > 0) {
    throw new RefusedError(
      `topic ${compacted.map((r) => r.resourceName).join(', ')} is compacted (cleanup.policy=compact): compaction drops delete events and shard moves, so sync cannot apply it exactly; use cleanup.policy=delete for change topics`,
    );
  }
}

/**
 * A group that has committed nothing yet starts where full recorded the Kafka start positions
 * (cdc_start_positions): per partition, the lowest any job recorded (src/cdc/kafka-start.ts);
 * a partition some job did not record starts at its beginning.
 */
async function startAtRecordedPosition(admin: Admin, store: ControlStore, group: string, topics: string[], logger: Logger): Promise<void> {
  const committed = await retrying(() => admin.fetchOffsets({ groupId: group, topics }));
  const fresh = committed.every((t) => t.partitions.every((p) => p.offset === '-1'));
  if (!fresh) return;
  const [rows] = await store.pool.query<RowDataPacket[]>('SELECT job_id, source_kind, position FROM cdc_start_positions');
  const recorded = rows.map((r) => ({ jobId: r.job_id as number, kind: r.source_kind as string, position: r.position as unknown }));
  for (const topic of topics) {
    const partitions = kafkaStartOffsets(recorded, topic);
    if (partitions.length === 0) continue;
    await retrying(() => admin.setOffsets({ groupId: group, topic, partitions }));
    logger.info({ topic, partitions }, 'starting at the position full recorded (partitions not listed: from the beginning)');
  }
}

/**
 * A group position below a partition's oldest kept offset means retention (or a records delete)
 * removed changes sync has not applied. The consumer would skip them silently (kafkajs resets an
 * out-of-range offset to the earliest one), so sync stops here instead: only a new copy can bring
 * the shards back in step, as with SQL Server's cleanup window (src/cdc/mssql/position.ts).
 */
async function refuseRetentionGaps(admin: Admin, group: string, topics: string[]): Promise<void> {
  const committed = await retrying(() => admin.fetchOffsets({ groupId: group, topics }));
  const gaps: string[] = [];
  for (const topic of topics) {
    const kept = await retrying(() => admin.fetchTopicOffsets(topic));
    for (const p of committed.find((t) => t.topic === topic)?.partitions ?? []) {
      const low = kept.find((k) => k.partition === p.partition)?.low;
      if (p.offset === '-1' || low === undefined || BigInt(p.offset) >= BigInt(low)) continue;
      gaps.push(`${topic}[${p.partition}] at offset ${p.offset}, oldest kept ${low}`);
    }
  }
  if (gaps.length > 0) {
    throw new Error(
      `consumer group ${group} is behind what the broker keeps: ${gaps.join('; ')}. The changes in between were deleted (retention) and cannot be applied: copy the tables again (membermig full --restart), then sync from its start`,
    );
  }
}

