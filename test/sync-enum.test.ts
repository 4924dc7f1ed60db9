import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { captureLegacy, kafkaServices, rewriteConfig, waitForMessages, type LegacyCapture } from './services/kafka-env.js';

/**
 * The ENUM error value (index 0, left by a non-strict insert of a bad value) through real Debezium:
 * it sends '' for it. Where '' is no member sync dead-letters the event with the copy path's
 * reason; where '' is a member the event cannot tell them apart and the member is written.
 */
describe('membermig sync: an ENUM error value from Debezium', () => {
  let env: TestEnv;
  let capture: LegacyCapture;
  let topic: string;

  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 4 });
    topic = `${env.prefix}.${env.legacyDb}.member_tier`;
    rewriteConfig(env, {
      ...env.raw,
      tables: { member_tier: { source: `${env.legacyDb}.member_tier`, target: 'member_tier', shard_key: 'member_id' } },
      cdc: { kafka: { brokers: kafkaServices().brokers, topic, group: `${env.prefix}-sync` } },
    });
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query("CREATE TABLE member_tier (member_id BIGINT NOT NULL PRIMARY KEY, tier ENUM('gold','silver') NULL, vip ENUM('','yes') NULL) ENGINE=InnoDB");
    await legacy.end();
    const init = await runCli(['init', '--config', env.configPath, '--json']);
    expect(init.code, init.stderr + init.stdout).toBe(0);
    capture = await captureLegacy(env, ['member_tier']);
  });

  afterAll(async () => {
    await capture?.stop();
    await env?.cleanup();
  });

  it("dead-letters '' for an ENUM without a '' member, with the copy path's reason; applies the rest", async () => {
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query("SET SESSION sql_mode = ''");
    await legacy.query("INSERT INTO member_tier VALUES (1, 'gold', 'yes'), (2, 'bogus', NULL), (3, 'silver', 'bogus')");
    const [legacyRows] = await legacy.query('SELECT member_id, tier + 0 AS tier_index, vip + 0 AS vip_index FROM member_tier ORDER BY member_id');
    await legacy.end();
    // The legacy side as the test means it: member 2's tier and member 3's vip hold the error value.
    expect(legacyRows).toEqual([
      { member_id: '1', tier_index: 1, vip_index: 2 },
      { member_id: '2', tier_index: 0, vip_index: null },
      { member_id: '3', tier_index: 2, vip_index: 0 },
    ]);
    await waitForMessages([topic], 3);

    const res = await runCli(['sync', '--config', env.configPath, '--json', '--until-caught-up']);
    const result = JSON.parse(res.stdout).result;
    expect(res.code, res.stderr).toBe(1);
    expect(result.deadLettered).toBe(1);

    const control = await connectMysql(env.config.control.url);
    const [letters] = await control.query('SELECT message_key, reason FROM dead_letters');
    await control.end();
    const dl = letters as { message_key: Buffer; reason: string }[];
    expect(dl).toHaveLength(1);
    expect(dl[0]!.message_key.toString()).toContain('"member_id":2');
    expect(dl[0]!.reason).toMatch(/column tier: the ENUM error value \(index 0\)/);

    // Members 1 and 3 are in their shards; 3's vip as the '' member (Debezium sends '' for both).
    const shards = [env.urls.shardA, env.urls.shardB];
    const found: unknown[] = [];
    for (const url of shards) {
      const conn = await connectMysql(url);
      const [dbs] = await conn.query('SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?', [`${env.prefix}\\_s%`]);
      for (const { n } of dbs as { n: string }[]) {
        const [rows] = await conn.query(`SELECT member_id, tier, vip, vip + 0 AS vip_index FROM \`${n}\`.member_tier`);
        found.push(...(rows as unknown[]));
      }
      await conn.end();
    }
    expect(found.sort((a, b) => Number((a as { member_id: string }).member_id) - Number((b as { member_id: string }).member_id))).toEqual([
      { member_id: '1', tier: 'gold', vip: 'yes', vip_index: 2 },
      { member_id: '3', tier: 'silver', vip: '', vip_index: 1 },
    ]);
  });
});
