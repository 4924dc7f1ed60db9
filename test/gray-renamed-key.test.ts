import { writeFileSync } from 'node:fs';
import type { Connection, Pool } from 'mysql2/promise';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../src/config/schema.js';
import { checkGates } from '../src/gray/gates.js';
import { connectMysql } from '../src/mysql/connect.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * Gray on a table whose integer shard key is renamed in the shard tables (tables.NAME.columns), and
 * the sync_lag gate beside a topic sync no longer reads. Both from a review (2026-11-29): the id check
 * looked for the legacy column name in the shard table, found nothing and let "0123" through (a
 * --deny that then protected nobody); the gate read every topic's row, and a renamed topic's last
 * row, older every second, kept it shut for good.
 */
describe('gray: a renamed shard key, a topic no longer read, a mis-edited shard map', () => {
  let env: TestEnv;
  let db: Connection;
  const cli = (...args: string[]) => runCli([...args, '--config', env.configPath]);

  beforeAll(async () => {
    env = await createTestEnv({
      shardCount: 4,
      tables: { member: { source: 'legacy.Member', target: 'member', shard_key: 'MemberID', columns: { MemberID: { target: 'member_id' } } } },
      legacySql: ['CREATE TABLE Member (MemberID BIGINT PRIMARY KEY, name VARCHAR(50) NULL)'],
    });
    const init = await cli('init');
    expect(init.code, init.stderr).toBe(0);
    db = await connectMysql(env.config.control.url);
  });
  afterAll(async () => {
    await db?.end();
    await env?.cleanup();
  });

  it('member ids are checked against the shard table\'s column: "0123" is refused by gray check and --deny (exit 2)', async () => {
    const check = await cli('gray', 'check', 'member', '0123');
    expect(check.code).toBe(2);
    expect(check.stderr).toContain('member.member_id is bigint, so write it in plain digits');
    const deny = await cli('gray', 'set', 'member', '--deny', '0123', '--reason', 'keep VIP 123 on legacy');
    expect(deny.code).toBe(2);
    expect((await cli('gray', 'set', 'member', '--deny', '123', '--reason', 'keep VIP 123 on legacy')).code).toBe(0);
  });

  it('the sync_lag gate looks at the configured topics only', async () => {
    await db.query("INSERT INTO cdc_offsets (consumer_group, topic, partition_no, next_offset, high_watermark, last_source_ts_ms) VALUES ('g', 't', 0, 100, 100, UNIX_TIMESTAMP() * 1000)");
    // The topic the connector wrote before it was renamed; sync no longer reads it.
    await db.query(
      `INSERT INTO cdc_offsets (consumer_group, topic, partition_no, next_offset, high_watermark, last_source_ts_ms, updated_at) VALUES
        ('g', 'old-topic', 0, 50, 50, (UNIX_TIMESTAMP() - 86400) * 1000, NOW(6) - INTERVAL 1 DAY)`,
    );
    try {
      const config = { ...env.config, cdc: { kafka: { brokers: ['127.0.0.1:9092'], topic: 't', group: 'g' } } } as Config;
      const gate = (await checkGates(db as unknown as Pool, config, 'member')).find((g) => g.gate === 'sync_lag')!;
      expect(gate.ok, gate.message).toBe(true);
      expect(gate.message).toContain('over 1 partitions');
    } finally {
      await db.query('DELETE FROM cdc_offsets');
    }
  });

  it('with a config whose shard map differs from the recorded one, a move back to legacy works and a raise is refused', async () => {
    const misEdited = env.configPath.replace(/\.yaml$/, '-16.yaml');
    writeFileSync(misEdited, stringify({ ...env.raw, shards: { ...(env.raw.shards as object), count: 16, placement: [{ shards: '0-15', server: 'shard-a' }] } }));
    const deny = await runCli(['gray', 'set', 'member', '--deny', '77', '--reason', 'incident: VIP back to legacy', '--config', misEdited]);
    expect(deny.code, deny.stderr).toBe(0);
    const raise = await runCli(['gray', 'set', 'member', '--read', '10%', '--reason', 'raise', '--force', '--config', misEdited]);
    expect(raise.code).toBe(2);
    expect(raise.stderr).toContain("the config's shard map is not the one");
  });
});
