import type { Admin } from 'kafkajs';
import type { Config } from '../config/schema.js';
import type { ChangeSourceProbe } from './in-flight.js';

/** Per topic partition (`topic/partition`), an offset. */
export type TopicOffsets = Map<string, bigint>;

interface KafkaSource {
  brokers: string[];
  group: string;
  topics: string[];
  clientId: string;
}

/** The change topics' ends against the sync consumer group's committed offsets. */
export class KafkaTopicsProbe implements ChangeSourceProbe<TopicOffsets> {
  readonly name = 'Kafka';
  private admin: Promise<Admin> | undefined;

  constructor(private readonly kafka: KafkaSource) {}

  static fromConfig(k: NonNullable<NonNullable<Config['cdc']>['kafka']>): KafkaTopicsProbe {
    const topics = Array.isArray(k.topic) ? k.topic : [k.topic];
    return new KafkaTopicsProbe({ brokers: k.brokers, group: k.group, topics, clientId: `${k.client_id}-verify` });
  }

  end(): Promise<TopicOffsets> {
    return this.asking(async (admin) => {
      const ends: TopicOffsets = new Map();
      for (const topic of this.kafka.topics) {
        for (const p of await admin.fetchTopicOffsets(topic)) ends.set(`${topic}/${p.partition}`, BigInt(p.high));
      }
      return ends;
    });
  }

  behind(ends: TopicOffsets): Promise<string[]> {
    return this.asking(async (admin) => behindOf(ends, await committedOffsets(admin, this.kafka.group, this.kafka.topics)));
  }

  neverApplied(): Promise<string | null> {
    return this.asking(async (admin) => {
      const offsets = await admin.fetchOffsets({ groupId: this.kafka.group, topics: this.kafka.topics });
      const committed = offsets.some((t) => t.partitions.some((p) => BigInt(p.offset) >= 0n));
      return committed ? null : `the sync consumer group ${this.kafka.group} has committed no offset on ${this.kafka.topics.join(', ')} (no sync has run)`;
    });
  }

  async close(): Promise<void> {
    const admin = this.admin;
    this.admin = undefined;
    if (admin) await (await admin.catch(() => null))?.disconnect().catch(() => {});
  }

  /** Runs `work` with the admin client (connected on first use); after a failure the next call connects anew. */
  private async asking<T>(work: (admin: Admin) => Promise<T>): Promise<T> {
    try {
      this.admin ??= connectAdmin(this.kafka.clientId, this.kafka.brokers);
      return await work(await this.admin);
    } catch (e) {
      const broken = this.admin;
      this.admin = undefined;
      void broken?.then((admin) => admin.disconnect()).catch(() => {});
      throw e;
    }
  }
}

async function connectAdmin(clientId: string, brokers: string[]): Promise<Admin> {
  const { Kafka, logLevel } = await import('kafkajs');
  // Few retries: a Kafka that does not answer must not hold verify up for long.
  const admin = new Kafka({ clientId, brokers, logLevel: logLevel.NOTHING, connectionTimeout: 3000, retry: { retries: 2 } }).admin();
  await admin.connect();
  return admin;
}

async function committedOffsets(admin: Admin, group: string, topics: string[]): Promise<TopicOffsets> {
  const committed: TopicOffsets = new Map();
  for (const t of await admin.fetchOffsets({ groupId: group, topics })) {
    // -1: nothing committed yet, so nothing applied.
    for (const p of t.partitions) committed.set(`${t.topic}/${p.partition}`, BigInt(p.offset) < 0n ? 0n : BigInt(p.offset));
  }
  return committed;
}

/** The partitions whose committed offset is below the end wanted, as `topic/partition`. */
export function behindOf(ends: TopicOffsets, committed: TopicOffsets): string[] {
  return [...ends].filter(([key, end]) => (committed.get(key) ?? 0n) < end).map(([key]) => key);
}
