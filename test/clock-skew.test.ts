import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Lsn } from '../src/cdc/mssql/lsn.js';
import { markCaughtUp, savePosition } from '../src/cdc/mssql/position.js';
import { mirrorOffsets } from '../src/cdc/offsets.js';
import { checkGates } from '../src/gray/gates.js';
import { openControlStore, setupControlStore, type ControlStore } from '../src/store/control.js';
import { collectStatus } from '../src/store/status.js';
import { stringify } from 'yaml';
import { parseConfig } from '../src/config/index.js';
import { kafkaClient, kafkaServices } from './services/kafka-env.js';
import { connectMysql } from '../src/mysql/connect.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { runCli } from './support/cli.js';
import { copyTable } from './support/copy-rows.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * Clocks that disagree: the host a command runs on, the control server, the legacy server whose
 * commit times Debezium and SQL Server CDC report. Lags are the control server's clock against the
 * times stored there; a legacy clock ahead of it cannot make a lag look small.
 */
describe('clocks that disagree', () => {
  let env: TestEnv;
  let store: ControlStore;
  const controlNowMs = async () => {
    const [rows] = await store.pool.query<RowDataPacket[]>('SELECT CAST(UNIX_TIMESTAMP(NOW(6)) * 1000 AS SIGNED) AS now_ms');
    return Number(rows[0]!.now_ms);
  };
  const lsn = { lsn: Lsn.parse('0000002b00000f000001'), seqval: null };
  const mssqlConfig = () => ({ ...env.config, cdc: { mssql: { capture_instances: { member: 'dbo_Member' }, poll_interval_ms: 1000 } } });
  const lagGate = async (config = env.config) => (await checkGates(store.pool, config, 'member')).find((g) => g.gate === 'sync_lag')!;

  beforeAll(async () => {
    env = await createTestEnv();
    await setupControlStore(env.config);
    store = openControlStore(env.config);
  });
  afterAll(async () => {
    await store?.close();
    await env?.cleanup();
  });
  beforeEach(async () => {
    for (const t of ['cdc_offsets', 'cdc_lsn_positions', 'verify_runs']) await store.pool.query(`DELETE FROM ${t}`);
    await store.pool.query("INSERT INTO verify_runs (table_name, state, finished_at) VALUES ('member', 'clean', NOW(6))");
  });
  afterEach(() => vi.useRealTimers());

  it("status on a host whose clock is 10 minutes ahead shows a capture instance caught up just now as caught up (the control server's clock)", async () => {
    await savePosition(store.pool, { instance: 'dbo_Member', table: 'member', position: lsn, eventsApplied: 1, lastSourceTsMs: (await controlNowMs()) - 60_000 });
    await markCaughtUp(store.pool, 'dbo_Member', 'member', lsn);
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 600_000 });
    const status = await collectStatus(mssqlConfig());
    expect(status.sync!.captureInstances[0]!.lagSeconds).toBeLessThanOrEqual(1);
    expect(status.problems.filter((p) => p.includes('sync lag'))).toEqual([]);
  });

  it('status on a host whose clock is 10 minutes behind still sees a direct-CDC sync silent for 5 minutes', async () => {
    await markCaughtUp(store.pool, 'dbo_Member', 'member', lsn);
    await store.pool.query('UPDATE cdc_lsn_positions SET caught_up_at = NOW(6) - INTERVAL 300 SECOND');
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() - 600_000 });
    const status = await collectStatus(mssqlConfig());
    expect(status.sync!.captureInstances[0]!.lagSeconds).toBeGreaterThanOrEqual(300);
    expect(status.problems).toEqual(expect.arrayContaining([expect.stringMatching(/^sync lag 30\d\.0 s is over/)]));
  });

  it('the sync_lag gate refuses a partition behind whose last event has a source time ahead of the control clock (a legacy clock ahead), not a lag of 0', async () => {
    // 40 events behind; the last applied event's commit time, by a legacy clock 10 minutes fast, is "in the future".
    await mirrorOffsets(store.pool, [{ group: 'g', topic: 't', partition: 0, nextOffset: '60', highWatermark: '100', lastSourceTsMs: (await controlNowMs()) + 600_000, appliedEvents: 60 }]);
    const gate = await lagGate();
    expect(gate).toMatchObject({ ok: false, message: expect.stringMatching(/^t\[0\] is 40 events behind: .* (599|600)\.\d s ahead of the control store's clock/) });
  });

  it('the direct-CDC sync_lag gate refuses a change whose commit time is ahead of the control clock, not a lag of 0', async () => {
    // Sync stopped 5 minutes ago after applying a change the legacy server, 10 minutes fast, stamped 5 minutes ahead.
    await markCaughtUp(store.pool, 'dbo_Member', 'member', lsn);
    await store.pool.query('UPDATE cdc_lsn_positions SET caught_up_at = NOW(6) - INTERVAL 300 SECOND');
    await savePosition(store.pool, { instance: 'dbo_Member', table: 'member', position: lsn, eventsApplied: 1, lastSourceTsMs: (await controlNowMs()) + 300_000 });
    expect(await lagGate(mssqlConfig())).toMatchObject({ ok: false, message: expect.stringMatching(/^capture instance dbo_Member: .* (299|300)\.\d s ahead of the control store's clock/) });
  });

  it("status asking the broker takes a partition's lag by the control server's clock, not its host's", async () => {
    const topic = `${env.prefix}.member`;
    const group = `${env.prefix}-sync`;
    const kafka = kafkaClient();
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ key: String(i), value: 'v' })) });
      await producer.disconnect();
      // A broker just started answers group requests with NOT_COORDINATOR for a while.
      for (let tries = 1; ; tries++) {
        const done = await admin.setOffsets({ groupId: group, topic, partitions: [{ partition: 0, offset: '5' }] }).then(() => true, (e: Error) => (tries < 60 ? false : Promise.reject(e)));
        if (done) break;
        await new Promise((r) => setTimeout(r, 500));
      }
    } finally {
      await admin.disconnect();
    }
    // 5 events behind; the last one applied was committed 2 s ago.
    await mirrorOffsets(store.pool, [{ group, topic, partition: 0, nextOffset: '5', highWatermark: '10', lastSourceTsMs: (await controlNowMs()) - 2000, appliedEvents: 5 }]);
    const config = parseConfig(stringify({ ...env.raw, cdc: { kafka: { brokers: kafkaServices().brokers, topic, group } } }), env.configPath);
    for (const skewMs of [600_000, -600_000]) {
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + skewMs, shouldAdvanceTime: true });
      const status = await collectStatus(config);
      vi.useRealTimers();
      expect(status.sync!.kafka).toMatchObject({ reachable: true });
      expect(status.sync!.partitions[0]).toMatchObject({ lagMessages: 5 });
      expect(status.sync!.partitions[0]!.lagSeconds).toBeGreaterThanOrEqual(2);
      expect(status.sync!.partitions[0]!.lagSeconds).toBeLessThan(5);
    }
  });
});

/**
 * `verify --since 30m` on a host whose clock is an hour ahead: "30 minutes ago" by that clock is half
 * an hour in the future for the rows' times, and the run compared nothing and said clean.
 */
describe('verify --since a duration ago, on a host whose clock is ahead', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv({
      shardCount: 4,
      tables: { member: { source: 'legacy.member', target: 'member', shard_key: 'member_id', updated_at: 'updated_at' } },
      legacySql: [
        'CREATE TABLE member (member_id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL, updated_at DATETIME(6) NOT NULL)',
        // Member 2 changed 10 minutes ago (UTC, as updated_at holds it), the others long ago.
        "INSERT INTO member VALUES (1, 'a', '2024-01-01 00:00:00'), (2, 'b', UTC_TIMESTAMP(6) - INTERVAL 10 MINUTE), (3, 'c', '2024-01-01 00:00:00')",
      ],
      extra: { verify: { recheck_after_seconds: 0 } },
    });
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
    await copyTable(env.config, 'member');
    // Member 2's copy is lost.
    const map = shardMapFromConfig(env.config);
    const shard = map.shardOf('2');
    const conn = await connectMysql(map.serverOf(shard).primary, { database: map.databaseOf(shard) });
    await conn.query('DELETE FROM member WHERE member_id = 2');
    await conn.end();
  }, 120_000);
  afterAll(async () => {
    vi.useRealTimers();
    await env?.cleanup();
  });

  it('finds the lost copy of a row changed 10 minutes ago', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 3_600_000, shouldAdvanceTime: true });
    const r = await runCli(['verify', '--tables', 'member', '--since', '30m', '--json', '--config', env.configPath]);
    vi.useRealTimers();
    const result = JSON.parse(r.stdout).result;
    expect(result.tables[0]).toMatchObject({ rowsSource: 1, differences: 1 });
  });
});
