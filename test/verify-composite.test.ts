import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { connectMysql } from '../src/mysql/connect.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { runVerify } from '../src/verify/index.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * A composite text + integer primary key sharded by a text column, copied by `full`: keyset chunks; with crc32,
 * drill-down splits ranges by reading their keys; with murmur3 (no SQL form) ranges are compared
 * row by row and misrouted rows are found in Node.
 */
describe.each(['crc32', 'murmur3'] as const)('verify with a composite text key, %s sharding', (shardFunction) => {
  let env: TestEnv;
  const ROWS = 240;

  beforeAll(async () => {
    // Copied by `membermig full` in 40-row chunks: keyset chunk bounds over the composite key, LOAD DATA lines.
    env = await createTestEnv({ shardCount: 6, shardFunction, extra: { copy: { chunk_rows: 40 }, verify: { chunk_rows: 40, workers: 2, recheck_after_seconds: 0 } } });
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query(`CREATE TABLE account (
      region VARCHAR(8) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
      account_no INT NOT NULL,
      owner VARCHAR(20) NOT NULL,
      credit DECIMAL(12,3) NOT NULL,
      PRIMARY KEY (region, account_no)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
    const rows = Array.from({ length: ROWS }, (_, i) => [['cn-北', 'cn-南', 'eu', 'us'][i % 4], i, `owner ${i}`, `${i}.${String(i % 1000).padStart(3, '0')}`]);
    await legacy.query('INSERT INTO account VALUES ?', [rows]);
    await legacy.end();
    const raw = env.raw as { tables: Record<string, unknown> };
    raw.tables = { account: { source: `${env.legacyDb}.account`, target: 'account', shard_key: 'owner' } };
    env.config.tables = { account: { source: `${env.legacyDb}.account`, target: 'account', shard_key: 'owner', exclude_columns: [] } };
    const { writeFileSync } = await import('node:fs');
    const { stringify } = await import('yaml');
    writeFileSync(env.configPath, stringify(raw));
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
    const full = await runCli(['full', '--config', env.configPath, '--json', '--log-level', 'warn']);
    expect(full.code, full.stderr).toBe(0);
    expect(JSON.parse(full.stdout).result).toMatchObject({ method: 'load', rowsThisRun: ROWS });
  });
  afterAll(async () => env?.cleanup());

  it('finds, classifies and repairs differences; clean afterwards', async () => {
    const clean = await runVerify(env.config, { logger: silentLogger });
    expect(clean.tables[0]).toMatchObject({ state: 'clean', rowsSource: ROWS, rowsTarget: ROWS });
    expect(clean.tables[0]!.chunksTotal).toBeGreaterThanOrEqual(6);

    const map = shardMapFromConfig(env.config);
    const on = async (shard: number, sql: string, params: unknown[]) => {
      const conn = await connectMysql(map.serverOf(shard).primary, { database: map.databaseOf(shard) });
      const [r] = await conn.query(sql, params);
      await conn.end();
      return r as RowDataPacket[];
    };
    const changed = { region: 'cn-南', no: 61, owner: 'owner 61' };
    const moved = { region: 'eu', no: 130, owner: 'owner 130' };
    await on(map.shardOf(changed.owner), 'UPDATE account SET credit = credit + 0.001 WHERE region = ? AND account_no = ?', [changed.region, changed.no]);
    const home = map.shardOf(moved.owner);
    const [row] = await on(home, 'SELECT * FROM account WHERE region = ? AND account_no = ?', [moved.region, moved.no]);
    await on(home, 'DELETE FROM account WHERE region = ? AND account_no = ?', [moved.region, moved.no]);
    await on((home + 1) % map.count, 'INSERT INTO account SET ?', [row]);

    const found = await runVerify(env.config, { logger: silentLogger, leafRows: 3 });
    expect(found.state).toBe('differences');
    expect(found.differences.map((d) => [d.key, d.kind, d.shard, d.columns ?? null]).sort()).toEqual(
      [
        [[changed.region, String(changed.no)], 'different', map.shardOf(changed.owner), ['credit']],
        [[moved.region, String(moved.no)], 'wrong_shard', (home + 1) % map.count, null],
      ].sort(),
    );
    const repaired = await runVerify(env.config, { logger: silentLogger, repair: true });
    expect(repaired.state).toBe('clean');
    expect(repaired.differences.map((d) => d.repairAction).sort()).toEqual(['move', 'upsert']);
    const after = await runVerify(env.config, { logger: silentLogger });
    expect(after.tables[0]).toMatchObject({ state: 'clean', differences: 0, rowsTarget: ROWS });
  });
});
