import type { Admin } from 'kafkajs';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';

/** Per topic partition (`topic/partition`), an offset. */
export type TopicOffsets = Map<string, bigint>;

/**
 * Changes already in the change topics that sync has not applied yet. The mirror's lag (lag.ts)
 * knows only what a running sync has fetched: a sync that is restarting or still joining its
 * group reports nothing, and a mismatch its next batch would mend looked persistent. A re-check
 * first waits until the consumer group has committed past the topics' ends as they were when the
 * mismatch was seen. A wait that runs out (sync stopped, or far behind) ends the waiting for the
 * rest of the pass, and a Kafka that cannot be asked leaves the re-checks as they were: verify
 * must not hang on sync, nor fail for Kafka.
 */
export class ChangesInFlight {
  private admin: Promise<Admin> | undefined;
  private givenUp = false;

  constructor(
    private readonly kafka: { brokers: string[]; group: string; topics: string[]; clientId: string },
    private readonly logger: Logger,
    private readonly waitLimitMs = IN_FLIGHT_WAIT_MS,
  ) {}

  /** Null without a Kafka change source (direct CDC keeps its lag in the mirror as it polls). */
  static fromConfig(config: Config, logger: Logger, waitLimitMs?: number): ChangesInFlight | null {
    const k = config.cdc?.kafka;
    if (!k) return null;
    const topics = Array.isArray(k.topic) ? k.topic : [k.topic];
    return new ChangesInFlight({ brokers: k.brokers, group: k.group, topics, clientId: `${k.client_id}-verify` }, logger, waitLimitMs);
  }

  /** A new pass (--watch) waits again: sync may be back. */
  beginPass(): void {
    this.givenUp = false;
  }

  /** The topics' ends now; null once waiting has been given up. */
  async ends(): Promise<TopicOffsets | null> {
    if (this.givenUp) return null;
    return this.asking(async (admin) => {
      const ends: TopicOffsets = new Map();
      for (const topic of this.kafka.topics) {
        for (const p of await admin.fetchTopicOffsets(topic)) ends.set(`${topic}/${p.partition}`, BigInt(p.high));
      }
      return ends;
    });
  }

  /** Waits until the group has committed up to `ends` on every partition, or the wait limit. */
  async waitApplied(ends: TopicOffsets | null): Promise<void> {
    if (!ends || this.givenUp) return;
    const deadline = Date.now() + this.waitLimitMs;
    for (;;) {
      const behind = await this.asking(async (admin) => behindOf(ends, await committedOffsets(admin, this.kafka.group, this.kafka.topics)));
      if (behind === null || behind.length === 0) return;
      if (Date.now() > deadline) {
        this.giveUp(`sync has not applied the changes in ${behind.slice(0, 5).join(', ')} within ${this.waitLimitMs / 1000} s: re-checks no longer wait for it (is sync running?)`);
        return;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  async close(): Promise<void> {
    const admin = this.admin;
    this.admin = undefined;
    if (admin) await (await admin.catch(() => null))?.disconnect().catch(() => {});
  }

  /** Runs `work` with the admin client (connected on first use); a failure gives up waiting. */
  private async asking<T>(work: (admin: Admin) => Promise<T>): Promise<T | null> {
    try {
      this.admin ??= connectAdmin(this.kafka.clientId, this.kafka.brokers);
      return await work(await this.admin);
    } catch (e) {
      // The next pass connects anew.
      const broken = this.admin;
      this.admin = undefined;
      void broken?.then((admin) => admin.disconnect()).catch(() => {});
      this.giveUp(`cannot ask Kafka how far sync is (${(e as Error).message}): re-checks wait for the mirror's lag only`);
      return null;
    }
  }

  private giveUp(why: string): void {
    if (this.givenUp) return;
    this.givenUp = true;
    this.logger.warn(why);
  }
}

/** How long one re-check waits for sync at most; after that, none waits again in the pass. */
export const IN_FLIGHT_WAIT_MS = 60_000;
const POLL_MS = 250;

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
