/**
 * Where a consumer group that has committed nothing starts on a change topic: per partition, the
 * lowest offset any `full` job recorded (cdc_start_positions), so that replay covers every copy.
 * Replaying more than a copy needs is harmless (every write is idempotent); starting past one
 * copy's position loses that copy's changes. The direct CDC path takes the lowest LSN likewise
 * (src/cdc/mssql/position.ts).
 *
 * A job that recorded no offset for a partition (Kafka was unreachable when it started, the topic
 * was not configured then, or the partition was added since) may need all of that partition, so
 * the partition starts at its beginning: it is left out of the result, and a group without a
 * committed offset reads from the beginning.
 */

/** One row of cdc_start_positions. */
export interface RecordedStart {
  jobId: number | string;
  /** mssql, mysql or kafka: every full job records its source's position, and Kafka offsets when it could. */
  kind: string;
  /** kafka: {topic, offsets: {partition: offset}}, or {topics: [{topic, offsets}, ...]} for several topics. */
  position: unknown;
}

export interface PartitionOffset {
  partition: number;
  offset: string;
}

type TopicOffsets = { topic?: unknown; offsets?: Record<string, unknown> };

/** The partitions of `topic` to set before the group's first fetch; the ones left out start at the beginning. */
export function kafkaStartOffsets(rows: RecordedStart[], topic: string): PartitionOffset[] {
  // Per job: its recorded offsets of this topic, by partition (empty when it recorded none).
  const perJob = new Map<string, Map<string, bigint>>();
  for (const row of rows) {
    const job = String(row.jobId);
    if (!perJob.has(job)) perJob.set(job, new Map());
    if (row.kind !== 'kafka') continue;
    for (const t of topicsOf(row.position)) {
      if (t.topic !== topic) continue;
      for (const [partition, offset] of Object.entries(t.offsets ?? {})) perJob.get(job)!.set(partition, offsetOf(offset, topic, partition, job));
    }
  }
  const jobs = [...perJob.values()];
  const partitions = new Set(jobs.flatMap((offsets) => [...offsets.keys()]));
  const out: PartitionOffset[] = [];
  for (const partition of partitions) {
    if (jobs.some((offsets) => !offsets.has(partition))) continue; // some job needs it from the beginning
    const lowest = jobs.map((offsets) => offsets.get(partition)!).reduce((a, b) => (b < a ? b : a));
    out.push({ partition: Number(partition), offset: lowest.toString() });
  }
  return out.sort((a, b) => a.partition - b.partition);
}

function topicsOf(position: unknown): TopicOffsets[] {
  const p = (typeof position === 'string' ? JSON.parse(position) : position) as TopicOffsets & { topics?: TopicOffsets[] };
  if (p === null || typeof p !== 'object') return [];
  return Array.isArray(p.topics) ? p.topics : [p];
}

function offsetOf(value: unknown, topic: string, partition: string, job: string): bigint {
  if ((typeof value === 'string' && /^\d+$/.test(value)) || (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0)) return BigInt(value);
  throw new Error(`cdc_start_positions of job ${job}: offset ${JSON.stringify(value)} of ${topic} partition ${partition} is not an offset`);
}
