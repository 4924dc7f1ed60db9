import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';

type KafkaCdcConfig = NonNullable<NonNullable<Config['cdc']>['kafka']>;

export interface RestartingConsumerOptions {
  kafkaConfig: KafkaCdcConfig;
  topics: string[];
  logger: Logger;
  stopping: () => boolean;
  /** Applies and commits a batch (with the consumer that fetched it, whose offsets it commits). */
  eachBatch: (payload: EachBatchPayload, consumer: Consumer) => Promise<void>;
  /**
   * A fetched batch that held only records a consumer never sees (a transaction's commit marker,
   * aborted messages): kafkajs skips eachBatch for it, so nothing would commit past it, and the
   * partition would stay one short of its end for ever. `nextOffset` is where its next record is.
   */
  onSkippedBatch: (skipped: { topic: string; partition: number; nextOffset: string; highWatermark: string }, consumer: Consumer) => Promise<void>;
}

/**
 * The sync group's consumer, kept running: kafkajs gives up on a broker that stays away past its
 * retries, so a crashed consumer is replaced by a new one, with backoff, for as long as it takes
 * (the group resumes from the committed offsets). Offsets are committed by eachBatch only.
 */
export class RestartingConsumer {
  private consumer: Consumer | undefined;
  private restartWait = MIN_RESTART_WAIT_MS;

  constructor(
    private readonly kafka: Kafka,
    private readonly o: RestartingConsumerOptions,
  ) {}

  async start(): Promise<void> {
    const k = this.o.kafkaConfig;
    const c = this.kafka.consumer({
      groupId: k.group,
      sessionTimeout: k.session_timeout_ms,
      rebalanceTimeout: Math.max(k.rebalance_timeout_ms, k.session_timeout_ms),
      heartbeatInterval: Math.min(3000, Math.floor(k.session_timeout_ms / 3)),
      allowAutoTopicCreation: false,
      // kafkajs fetches again only once every batch of a fetch is applied: a fetch large enough for
      // every partition's next batch (not kafkajs's default 10 MB, a few partitions of schema-laden
      // events) lets them all join one group commit instead of waiting for the next round trip.
      maxBytesPerPartition: 4 * 1024 * 1024,
      maxBytes: 64 * 1024 * 1024,
      maxWaitTimeInMs: 200,
      retry: { retries: 5, restartOnFailure: async () => false },
    });
    this.consumer = c;
    c.on(c.events.CRASH, (e) => {
      if (this.o.stopping()) return;
      this.o.logger.warn({ err: e.payload.error.message }, `kafka consumer stopped; starting a new one in ${this.restartWait} ms`);
      this.restartLater(c);
    });
    c.on(c.events.FETCH, () => (this.restartWait = MIN_RESTART_WAIT_MS));
    c.on(c.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.batchSize !== 0) return;
      const skipped = { topic: payload.topic, partition: payload.partition, nextOffset: (BigInt(payload.lastOffset) + 1n).toString(), highWatermark: payload.highWatermark };
      // The next fetch waits for nothing here: a failed commit is made again by the next batch's.
      this.o.onSkippedBatch(skipped, c).catch((e: Error) => this.o.logger.warn({ ...skipped, err: e.message }, 'could not commit past records sync does not see'));
    });
    await c.connect();
    // A stop requested while kafkajs was connecting: nothing is started (sync disconnects it).
    if (this.o.stopping()) return;
    await c.subscribe({ topics: this.o.topics, fromBeginning: true });
    if (this.o.stopping()) return;
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: k.partitions_concurrently,
      eachBatch: (payload) => this.o.eachBatch(payload, c),
    });
  }

  /** Stops after the batch in flight, which commits before this returns. */
  async stop(): Promise<void> {
    await this.consumer?.stop();
  }

  async disconnect(): Promise<void> {
    await this.consumer?.disconnect().catch(() => {});
  }

  private restartLater(old: Consumer): void {
    setTimeout(() => void this.restart(old), this.restartWait);
    this.restartWait = Math.min(MAX_RESTART_WAIT_MS, this.restartWait * 2);
  }

  private async restart(old: Consumer): Promise<void> {
    await old.disconnect().catch(() => {});
    if (this.o.stopping()) return;
    try {
      await this.start();
    } catch (e) {
      this.o.logger.warn({ err: (e as Error).message }, `kafka not reachable; trying again in ${this.restartWait} ms`);
      this.restartLater(this.consumer!);
    }
  }
}

const MIN_RESTART_WAIT_MS = 500;
const MAX_RESTART_WAIT_MS = 10_000;
