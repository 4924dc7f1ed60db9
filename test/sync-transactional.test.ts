import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSync } from '../src/cdc/sync.js';
import { silentLogger } from '../src/log.js';
import { kafkaClient, kafkaServices, rewriteConfig } from './services/kafka-env.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * A change topic written in transactions (Kafka Connect with exactly.once.source.support=enabled)
 * ends each transaction with a commit marker, a record no consumer sees. sync committed "last
 * message + 1", the marker's offset, one short of the partition's end: --until-caught-up never
 * ended, and the lag read 1 for ever. A fetch holding only markers was not committed at all.
 */
describe('sync on a topic written in transactions', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 2, legacySql: ['CREATE TABLE member (member_id BIGINT NOT NULL PRIMARY KEY, note VARCHAR(20) NOT NULL) ENGINE=InnoDB'] });
  }, 120_000);
  afterAll(async () => env?.cleanup());

  it('--until-caught-up ends, committed at the partition end, past the markers (one transaction, then one of its own fetch)', async () => {
    const topic = `${env.prefix}.txn`;
    const group = `${env.prefix}-txn`;
    rewriteConfig(env, { ...env.raw, cdc: { kafka: { brokers: kafkaServices().brokers, topic, group } } });
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
    const kafka = kafkaClient();
    const admin = kafka.admin();
    await admin.connect();
    const producer = kafka.producer({ transactionalId: `${group}-tx`, idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
      // Tombstones (null values): sync skips them, no table involved.
      const send = async () => {
        const tx = await producer.transaction();
        await tx.send({ topic, messages: [{ key: Buffer.from('{"member_id":1}'), value: null }] });
        await tx.commit();
      };
      const caughtUp = async () => {
        const stop = new AbortController();
        const timer = setTimeout(() => stop.abort(), 30_000);
        try {
          return await runSync(env.config, { logger: silentLogger, untilCaughtUp: true, signal: stop.signal });
        } finally {
          clearTimeout(timer);
        }
      };
      await send();
      expect((await caughtUp()).stoppedBy).toBe('caught-up');
      const ends = async () => [(await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0]!.partitions[0]!.offset, (await admin.fetchTopicOffsets(topic))[0]!.high];
      expect(await ends()).toEqual(['2', '2']);
      // A transaction aborted: its message and its marker, nothing sync sees.
      const tx = await producer.transaction();
      await tx.send({ topic, messages: [{ key: Buffer.from('{"member_id":2}'), value: null }] });
      await tx.abort();
      expect((await caughtUp()).stoppedBy).toBe('caught-up');
      expect(await ends()).toEqual(['4', '4']);
    } finally {
      await producer.disconnect();
      await admin.disconnect();
    }
  }, 120_000);
});
