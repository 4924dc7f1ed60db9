import type { Admin } from 'kafkajs';
import type { RowDataPacket } from 'mysql2/promise';
import { RefusedError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ControlStore } from '../store/control.js';
import { startJobs, supersededJobs } from '../copy/job.js';
import { kafkaStartOffsets, type PartitionOffset, type RecordedStart } from './kafka-start.js';

/**
 * What sync checks and sets on the change topics and its consumer group before it consumes: the
 * topics exist and keep every event, a fresh group starts where `full` recorded, and a group that
 * retention has passed is refused.
 */
export async function prepareTopics(admin: Admin, o: { store: ControlStore; group: string; topics: string[]; brokers: string[]; logger: Logger }): Promise<void> {
  await requireTopics(admin, o.topics, o.brokers);
  const recorded = await recordedStarts(o.store);
  await startAtRecordedPosition(admin, recorded.starts, o.group, o.topics, o.logger);
  await refuseRetentionGaps(admin, recorded, o.group, o.topics, o.logger);
}

/**
 * The start positions full recorded (cdc_start_positions), leaving out the jobs whose every table a
 * later --restart emptied and copied again (supersededJobs): their positions no longer matter.
 * `allRecopied`: every job left copied into emptied tables, so its copy holds every change before
 * its start (a first copy may have gone over rows sync wrote before it, deleted ones included).
 */
async function recordedStarts(store: ControlStore): Promise<{ starts: RecordedStart[]; allRecopied: boolean }> {
  const [rows] = await store.pool.query<RowDataPacket[]>('SELECT job_id, source_kind, position FROM cdc_start_positions');
  const jobs = await startJobs(store.pool);
  const replaced = supersededJobs(jobs);
  const kept = rows.filter((r) => !replaced.has(Number(r.job_id)));
  return {
    starts: kept.map((r) => ({ jobId: r.job_id as number, kind: r.source_kind as string, position: r.position as unknown })),
    allRecopied: kept.length > 0 && kept.every((r) => jobs.find((j) => j.id === Number(r.job_id))?.emptied === true),
  };
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
async function startAtRecordedPosition(admin: Admin, recorded: RecordedStart[], group: string, topics: string[], logger: Logger): Promise<void> {
  const committed = await retrying(() => admin.fetchOffsets({ groupId: group, topics }));
  const fresh = committed.every((t) => t.partitions.every((p) => p.offset === '-1'));
  if (!fresh) return;
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
 * the shards back in step, as with SQL Server's cleanup window (src/cdc/mssql/position.ts). Once
 * full --restart has copied the tables again, the group moves on to the offsets that copy recorded
 * (its copy holds every change before them), where the broker still keeps them.
 */
async function refuseRetentionGaps(admin: Admin, recorded: { starts: RecordedStart[]; allRecopied: boolean }, group: string, topics: string[], logger: Logger): Promise<void> {
  const committed = await retrying(() => admin.fetchOffsets({ groupId: group, topics }));
  const gaps: string[] = [];
  const moves: { topic: string; partitions: PartitionOffset[] }[] = [];
  for (const topic of topics) {
    const kept = await retrying(() => admin.fetchTopicOffsets(topic));
    const recopied = recorded.allRecopied ? kafkaStartOffsets(recorded.starts, topic) : [];
    const moved: PartitionOffset[] = [];
    for (const p of committed.find((t) => t.topic === topic)?.partitions ?? []) {
      const low = kept.find((k) => k.partition === p.partition)?.low;
      if (p.offset === '-1') {
        // Nothing committed: the consumer starts at the oldest kept event. Safe only when that is the
        // partition's first, or not after where full recorded the start; else changes after the copy's
        // start may be gone, and the consumer would pass over them without a word.
        if (low === undefined || BigInt(low) === 0n) continue;
        const start = kafkaStartOffsets(recorded.starts, topic).find((r) => r.partition === p.partition)?.offset;
        if (start !== undefined && BigInt(start) >= BigInt(low)) continue;
        gaps.push(`${topic}[${p.partition}] with nothing committed and ${start === undefined ? 'no start position recorded by full' : `full's start at offset ${start}`}, oldest kept ${low}`);
        continue;
      }
      if (low === undefined || BigInt(p.offset) >= BigInt(low)) continue;
      const start = recopied.find((r) => r.partition === p.partition)?.offset;
      if (start !== undefined && BigInt(start) > BigInt(p.offset) && BigInt(start) >= BigInt(low)) moved.push({ partition: p.partition, offset: start });
      else gaps.push(`${topic}[${p.partition}] at offset ${p.offset}, oldest kept ${low}`);
    }
    if (moved.length > 0) moves.push({ topic, partitions: moved });
  }
  if (gaps.length > 0) {
    throw new Error(
      `consumer group ${group} is behind what the broker keeps: ${gaps.join('; ')}. The changes in between were deleted (retention) and cannot be applied: copy the tables again (membermig full --restart); sync then goes on from the offsets that copy recorded`,
    );
  }
  for (const m of moves) {
    logger.warn({ group, topic: m.topic, partitions: m.partitions }, 'retention passed the group position; a later full --restart copied the tables again: going on from the offsets it recorded');
    await retrying(() => admin.setOffsets({ groupId: group, topic: m.topic, partitions: m.partitions })).catch(async (e: unknown) => {
      // Another sync of the group starting at the same time moved it first (a running group refuses the move).
      if (await movedAlready(admin, group, m)) return;
      throw e;
    });
  }
}

async function movedAlready(admin: Admin, group: string, move: { topic: string; partitions: PartitionOffset[] }): Promise<boolean> {
  const now = (await retrying(() => admin.fetchOffsets({ groupId: group, topics: [move.topic] })))[0]?.partitions ?? [];
  return move.partitions.every((p) => {
    const offset = now.find((n) => n.partition === p.partition)?.offset;
    return offset !== undefined && offset !== '-1' && BigInt(offset) >= BigInt(p.offset);
  });
}

