import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { runCli } from './support/cli.js';
import { compareWithLegacy } from './support/compare.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { captureLegacy, kafkaServices, rewriteConfig, topicMessages, type LegacyCapture } from './services/kafka-env.js';

/**
 * BIGINT UNSIGNED through real Debezium at its default bigint.unsigned.handling.mode, long: values
 * from 2^63 up arrive as negative int64s (18446744073709551615 as -1). As the shard key they chose
 * the shard of '-1', and a delete of such a row removed nothing; as a value the target refused them.
 */
describe('membermig sync: BIGINT UNSIGNED keys and values from 2^63 up, connector in long mode', () => {
  let env: TestEnv;
  let capture: LegacyCapture;
  let topic: string;

  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 4 });
    topic = `${env.prefix}.${env.legacyDb}.big_ids`;
    rewriteConfig(env, {
      ...env.raw,
      tables: { big_ids: { source: `${env.legacyDb}.big_ids`, target: 'big_ids', shard_key: 'id' } },
      cdc: { kafka: { brokers: kafkaServices().brokers, topic, group: `${env.prefix}-sync` } },
    });
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query('CREATE TABLE big_ids (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, v BIGINT UNSIGNED NULL, note VARCHAR(10) NULL) ENGINE=InnoDB');
    await legacy.end();
    const init = await runCli(['init', '--config', env.configPath, '--json']);
    expect(init.code, init.stderr + init.stdout).toBe(0);
    capture = await captureLegacy(env, ['big_ids'], 4, { 'bigint.unsigned.handling.mode': 'long' });
  });

  afterAll(async () => {
    await capture?.stop();
    await env?.cleanup();
  });

  it('keys and values keep their 64 bits: routed as the copy routes them, deletes find their rows, verify is clean', async () => {
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query(
      `INSERT INTO big_ids VALUES (18446744073709551615, 9223372036854775808, 'max'), (9223372036854775808, 18446744073709551615, 'half'),
        (9223372036854775807, 1, 'signed max'), (1, NULL, 'one'), (18446744073709551000, 18446744073709551614, 'gone')`,
    );
    await legacy.query("UPDATE big_ids SET v = 18446744073709551613, note = 'moved' WHERE id = 9223372036854775808");
    await legacy.query('DELETE FROM big_ids WHERE id = 18446744073709551000');
    await legacy.end();

    // The connector did send the long form (else this test proves nothing).
    const messages = await topicMessages(topic);
    const keys = messages.map((m) => String((m.key as { payload: { id: number | string } }).payload.id));
    expect(keys).toContain('-1');

    const synced = await runCli(['sync', '--config', env.configPath, '--json', '--until-caught-up']);
    expect(synced.code, synced.stderr).toBe(0);
    const cmp = await compareWithLegacy(env, 'big_ids', { key: 'id', shardKey: 'id' });
    expect(cmp.differences).toEqual([]);
    expect([cmp.legacyRows, cmp.shardRows]).toEqual([4, 4]);
    const verify = await runCli(['verify', '--config', env.configPath, '--json']);
    expect(verify.code, verify.stdout).toBe(0);
  }, 120_000);
});
