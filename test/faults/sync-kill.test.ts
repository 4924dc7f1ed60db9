import { afterAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../../src/mysql/connect.js';
import { execCli, runCli } from '../support/cli.js';
import { createTestEnv, type TestEnv } from '../support/env.js';
import { compareTable } from '../support/compare.js';
import { controlNumber, faultPoints, faultTimeout, killAfter, expectConverged, seededRandom, startCli, waitFor } from '../support/faults.js';
import { captureLegacy, kafkaServices, rewriteConfig, settledMessageCount, waitForMessages, type LegacyCapture } from '../services/kafka-env.js';

/**
 * kill -9 of `sync` at seeded random points (3 in CI, SOAK_POINTS in the soak) while inserts,
 * updates (each bumping updated_at, which the config names) and deletes keep arriving from real
 * Debezium between the kills; a final `sync --until-caught-up` must leave the shards equal to
 * legacy row by row. (One kill at a fixed
 * point, a rebalance, a broker restart and a shard server down: test/sync-failures.test.ts.)
 */

const DDL = `CREATE TABLE member (
  member_id BIGINT NOT NULL PRIMARY KEY,
  name VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  points DECIMAL(20,4) NOT NULL,
  updated_at DATETIME(6) NOT NULL
) ENGINE=InnoDB`;

describe('sync killed anywhere', () => {
  let env: TestEnv;
  let capture: LegacyCapture | undefined;
  afterAll(async () => {
    await capture?.stop().catch(() => {});
    await env?.cleanup();
  });

  it('kill -9 at random points with changes flowing, then --until-caught-up: the shards equal legacy', async () => {
    env = await createTestEnv({ shardCount: 8 });
    const topic = `${env.prefix}.${env.legacyDb}.member`;
    const tables = env.raw.tables as Record<string, Record<string, unknown>>;
    rewriteConfig(env, {
      ...env.raw,
      // Replays after each kill go through keep-newer upserts and deletes bounded by their before image's time.
      tables: { ...tables, member: { ...tables.member, updated_at: 'updated_at' } },
      cdc: { kafka: { brokers: kafkaServices().brokers, topic, group: `${env.prefix}-sync`, max_batch_events: 20, partitions_concurrently: 2, session_timeout_ms: 6000, rebalance_timeout_ms: 10000 } },
    });
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query(DDL);
    await legacy.query("INSERT INTO member VALUES (0, 'sentinel', 0, '2024-01-01 00:00:00')");
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr + init.stdout).toBe(0);
    capture = await captureLegacy(env, ['member'], 4);
    await waitForMessages([topic], 1);

    const random = seededRandom();
    let next = 1;
    let events = 1;
    // Each round: a burst of changes (inserts, updates of earlier rows, deletes), then a sync killed at a random moment.
    const writeBurst = async (): Promise<void> => {
      const rows = Array.from({ length: 300 }, (_, j) => `(${next + j}, ${j % 9 ? `'m${next + j} ü'` : 'NULL'}, ${next + j}.${String(j % 10000).padStart(4, '0')}, '2024-01-01 00:00:00.${String(j).padStart(6, '0')}')`);
      await legacy.query(`INSERT INTO member VALUES ${rows.join(', ')}`);
      next += 300;
      events += 300;
      const [u] = await legacy.query('UPDATE member SET points = points + 0.0001, name = CONCAT(COALESCE(name, ""), "+"), updated_at = updated_at + INTERVAL 1 SECOND WHERE member_id % 7 = ? AND member_id > 0', [
        Math.floor(random() * 7),
      ]);
      events += (u as { affectedRows: number }).affectedRows;
      const [d] = await legacy.query('DELETE FROM member WHERE member_id % 13 = ? AND member_id > 0', [Math.floor(random() * 13)]);
      events += (d as { affectedRows: number }).affectedRows; // at least one event per delete (plus a tombstone if on)
    };
    const points = faultPoints();
    let killed = 0;
    for (let i = 0; i < points; i++) {
      await writeBurst();
      const child = startCli(['sync', '--config', env.configPath, '--json', '--log-level', 'warn']);
      await waitFor('sync started applying', async () => child.proc.exitCode !== null || (await controlNumber(env.config, 'SELECT COALESCE(SUM(applied_events), 0) AS n FROM cdc_offsets')) > 0, 90_000);
      if (await killAfter(child, random() * 2000)) killed++;
    }
    expect(killed).toBe(points);
    await writeBurst();
    await waitForMessages([topic], events, 90_000);
    await settledMessageCount([topic]); // tombstones and stragglers are in too

    const rerun = await execCli(['sync', '--config', env.configPath, '--json', '--until-caught-up']);
    expect(rerun.code, rerun.stderr.slice(-2000)).toBe(0);
    await legacy.end();
    expectConverged(await compareTable(env.config, env.legacyUrl, 'member', 'member', ['member_id'], 'member_id'), 'kill -9 sync', killed);
  }, faultTimeout(20_000, 120_000));
});
