import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSync } from '../src/cdc/sync.js';
import { silentLogger } from '../src/log.js';
import { connectMysql, quoteId } from '../src/mysql/connect.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { sleep } from '../src/sandbox/kafka.js';
import { runCli } from './support/cli.js';
import { compareWithLegacy } from './support/compare.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { captureLegacy, kafkaClient, kafkaServices, rewriteConfig, waitForMessages, type LegacyCapture } from './services/kafka-env.js';

/**
 * Legacy's schema changes while sync runs (a migration lasts weeks): a column added on legacy
 * after sync described the tables arrives in every later event. sync read the events by the
 * columns it knew and wrote the rows without the new one: its values never reached the shards,
 * and nothing said so. Such events are dead-lettered, naming the table and the column, and
 * applied with --retry-dead-letters once the shards have the column.
 */
describe('sync while a legacy column is added', () => {
  let env: TestEnv;
  let capture: LegacyCapture;
  let topic: string;
  const group = () => `${env.prefix}-sync`;

  /** Until the group has committed every message of the topic. */
  async function consumed(): Promise<void> {
    const admin = kafkaClient().admin();
    await admin.connect();
    try {
      for (let i = 0; i < 300; i++) {
        const ends = await admin.fetchTopicOffsets(topic);
        // The group's coordinator is not known until the group has joined: asked again.
        const [committed] = await admin.fetchOffsets({ groupId: group(), topics: [topic] }).catch(() => [undefined]);
        const at = new Map(committed?.partitions.map((p) => [p.partition, p.offset]));
        if (committed && ends.every((e) => e.high === '0' || at.get(e.partition) === e.high)) return;
        await sleep(200);
      }
      throw new Error('sync did not consume the topic');
    } finally {
      await admin.disconnect();
    }
  }

  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 2, legacySql: ['CREATE TABLE member (member_id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(32) NOT NULL) ENGINE=InnoDB'] });
    topic = `${env.prefix}.${env.legacyDb}.member`;
    rewriteConfig(env, {
      ...env.raw,
      tables: { member: { source: `${env.legacyDb}.member`, target: 'member', shard_key: 'member_id' } },
      cdc: { kafka: { brokers: kafkaServices().brokers, topic, group: group(), replace_null_with_default: false } },
    });
    const init = await runCli(['init', '--config', env.configPath, '--json']);
    expect(init.code, init.stderr + init.stdout).toBe(0);
    capture = await captureLegacy(env, ['member'], 1);
  }, 120_000);

  afterAll(async () => {
    await capture?.stop();
    await env?.cleanup();
  });

  it('dead-letters the rows that carry the new column, and applies them once the shards have it', async () => {
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query("INSERT INTO member VALUES (1, 'before')");
    await waitForMessages([topic], 1);
    const stop = new AbortController();
    const running = runSync(env.config, { logger: silentLogger, signal: stop.signal });
    try {
      await consumed();
      await legacy.query('ALTER TABLE member ADD COLUMN vip TINYINT NULL');
      await legacy.query("INSERT INTO member VALUES (2, 'after', 1)");
      await waitForMessages([topic], 2);
      await consumed();
    } finally {
      stop.abort();
    }
    const result = await running;
    expect({ applied: result.eventsApplied, deadLettered: result.deadLettered }).toEqual({ applied: 1, deadLettered: 1 });

    const control = await connectMysql(env.config.control.url);
    const [letters] = await control.query('SELECT table_name, reason FROM dead_letters WHERE resolved_at IS NULL');
    await control.end();
    expect(letters).toEqual([{ table_name: 'member', reason: expect.stringMatching(/\bvip\b/) }]);

    // A sync started now describes legacy again: the shards lack the column, which it names.
    const refused = await runCli(['sync', '--config', env.configPath, '--json', '--until-caught-up']);
    expect(refused.code).toBe(2);
    expect(refused.stderr + refused.stdout).toMatch(/has no column vip/);

    const map = shardMapFromConfig(env.config);
    for (const server of map.servers()) {
      const conn = await connectMysql(server.primary);
      for (const shard of map.shardsOn(server.name)) await conn.query(`ALTER TABLE ${quoteId(map.databaseOf(shard))}.member ADD COLUMN vip TINYINT NULL`);
      await conn.end();
    }
    const retried = await runCli(['sync', '--config', env.configPath, '--json', '--until-caught-up', '--retry-dead-letters']);
    expect(retried.code, retried.stderr).toBe(0);
    expect((await compareWithLegacy(env, 'member', { key: 'member_id', shardKey: 'member_id' })).differences).toEqual([]);
    await legacy.end();
  }, 180_000);
});
