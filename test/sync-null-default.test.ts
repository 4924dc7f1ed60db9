import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { runCli } from './support/cli.js';
import { compareWithLegacy } from './support/compare.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { captureLegacy, kafkaServices, rewriteConfig, topicMessages, type LegacyCapture } from './services/kafka-env.js';

/**
 * A NULL in a nullable column that has a default, through real Debezium and Kafka Connect's JSON
 * converter at its default setting (replace.null.with.default=true, as an operator's Connect
 * worker has it unless told otherwise): the event carries the default instead of the NULL. With
 * `cdc.kafka.replace_null_with_default` (default true) such rows are copied again from legacy.
 */
describe('membermig sync: NULLs the Connect converter sent as the column default', () => {
  let env: TestEnv;
  let capture: LegacyCapture;
  let topic: string;
  const cdc = (replaceNullWithDefault?: boolean, group = `${env.prefix}-sync`) => ({
    kafka: { brokers: kafkaServices().brokers, topic, group, ...(replaceNullWithDefault !== undefined ? { replace_null_with_default: replaceNullWithDefault } : {}) },
  });
  const shardValues = async (): Promise<unknown[]> => {
    const rows: unknown[] = [];
    for (const url of [env.urls.shardA, env.urls.shardB]) {
      const conn = await connectMysql(url);
      const [dbs] = await conn.query('SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?', [`${env.prefix}\\_s%`]);
      for (const { n } of dbs as { n: string }[]) rows.push(...((await conn.query(`SELECT member_id, nickname, score, note FROM \`${n}\`.member_pref`))[0] as unknown[]));
      await conn.end();
    }
    return rows.sort((a, b) => Number((a as { member_id: string }).member_id) - Number((b as { member_id: string }).member_id));
  };

  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 4 });
    topic = `${env.prefix}.${env.legacyDb}.member_pref`;
    rewriteConfig(env, {
      ...env.raw,
      tables: { member_pref: { source: `${env.legacyDb}.member_pref`, target: 'member_pref', shard_key: 'member_id' } },
      cdc: cdc(),
    });
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query(
      "CREATE TABLE member_pref (member_id BIGINT NOT NULL PRIMARY KEY, nickname VARCHAR(20) NULL DEFAULT 'anon', score INT NULL DEFAULT 7, note VARCHAR(10) NULL) ENGINE=InnoDB",
    );
    await legacy.end();
    const init = await runCli(['init', '--config', env.configPath, '--json']);
    expect(init.code, init.stderr + init.stdout).toBe(0);
    // The connector's own converter, at Kafka's defaults (the test worker keeps nulls).
    capture = await captureLegacy(env, ['member_pref'], 4, {
      'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
      'value.converter.schemas.enable': 'true',
    });
  });

  afterAll(async () => {
    await capture?.stop();
    await env?.cleanup();
  });

  it('the shards hold the NULLs, not the defaults; a config that trusts the events would not', async () => {
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query("INSERT INTO member_pref VALUES (1, NULL, NULL, 'a'), (2, 'anon', 7, 'b'), (3, 'zed', 8, NULL), (4, 'kim', NULL, NULL)");
    await legacy.query('UPDATE member_pref SET nickname = NULL WHERE member_id = 3');
    await legacy.end();
    const expected = [
      { member_id: '1', nickname: null, score: null, note: 'a' },
      { member_id: '2', nickname: 'anon', score: 7, note: 'b' },
      { member_id: '3', nickname: null, score: 8, note: null },
      { member_id: '4', nickname: 'kim', score: null, note: null },
    ];

    // What the converter sent: member 1's NULLs as the defaults (the case this test is about).
    const messages = await topicMessages(topic);
    const firstOf1 = messages.find((m) => (m.key as { payload: { member_id: number } }).payload.member_id === 1)!;
    expect((firstOf1.value as { payload: { after: object } }).payload.after).toEqual({ member_id: 1, nickname: 'anon', score: 7, note: 'a' });

    const synced = await runCli(['sync', '--config', env.configPath, '--json', '--until-caught-up']);
    expect(synced.code, synced.stderr).toBe(0);
    expect(await shardValues()).toEqual(expected);
    const cmp = await compareWithLegacy(env, 'member_pref', { key: 'member_id', shardKey: 'member_id' });
    expect(cmp.differences).toEqual([]);

    // The same events read by a config that says the converter keeps nulls: the defaults land.
    rewriteConfig(env, { ...env.raw, cdc: cdc(false, `${env.prefix}-trusting`) });
    const trusting = await runCli(['sync', '--config', env.configPath, '--json', '--until-caught-up']);
    expect(trusting.code, trusting.stderr).toBe(0);
    expect((await shardValues())[0]).toEqual({ member_id: '1', nickname: 'anon', score: 7, note: 'a' });
  }, 120_000);
});
