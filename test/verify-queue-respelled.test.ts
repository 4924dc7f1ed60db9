import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { runCli } from './support/cli.js';
import { copyTable } from './support/copy-rows.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * A repair_queue entry (behind = mysql) naming a text key in another spelling than legacy's row,
 * under a _ci collation: the shim queued 'K1' for the row legacy holds as 'k1'. Legacy answers 'K1'
 * with its row 'k1', which the drain did not take for the entry's: it deleted 'K1' on every shard
 * (the _ci delete took the copy 'k1' with it), re-copied nothing, and resolved the entry. A run
 * whose pass did not reach the row (--shards without its home) left MySQL without it.
 */
describe('verify --repair and a repair_queue entry naming a respelled key', () => {
  let env: TestEnv;
  let home = -1;
  beforeAll(async () => {
    env = await createTestEnv({
      shardCount: 4,
      tables: { tag: { source: 'legacy.tag', target: 'tag', shard_key: 'code' } },
      legacySql: [
        'CREATE TABLE tag (code VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL PRIMARY KEY, note VARCHAR(20) NULL)',
        `INSERT INTO tag VALUES ('k1', 'legacy'), ${Array.from({ length: 20 }, (_, i) => `('t${i}', 'n${i}')`).join(', ')}`,
      ],
      extra: { verify: { recheck_after_seconds: 0 } },
    });
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
    await copyTable(env.config, 'tag');
    const map = shardMapFromConfig(env.config);
    home = map.shardOf('k1');
    const conn = await connectMysql(map.serverOf(home).primary, { database: map.databaseOf(home) });
    const [copied] = await conn.query<RowDataPacket[]>("SELECT code FROM tag WHERE code = 'k1'");
    await conn.end();
    expect(copied.map((row) => row.code)).toEqual(['k1']);
    const control = await connectMysql(env.config.control.url);
    await control.query("INSERT INTO repair_queue (table_name, pk, reason, origin, behind) VALUES ('tag', '[\"K1\"]', 'shim: mysql write failed (test)', 'shim', 'mysql')");
    await control.end();
  }, 120_000);
  afterAll(async () => env?.cleanup());

  it("re-copies legacy's row instead of deleting it", async () => {
    const map = shardMapFromConfig(env.config);
    const others = [0, 1, 2, 3].filter((s) => s !== home).join(',');
    const run = await runCli(['verify', '--repair', '--shards', others, '--config', env.configPath, '--json']);
    expect(JSON.parse(run.stdout).result.repairQueue, run.stderr).toEqual([expect.objectContaining({ table: 'tag', entries: 1 })]);
    const conn = await connectMysql(map.serverOf(home).primary, { database: map.databaseOf(home) });
    try {
      const [rows] = await conn.query<RowDataPacket[]>("SELECT code, note FROM tag WHERE code = 'k1'");
      expect(rows.map((row) => [row.code, row.note])).toEqual([['k1', 'legacy']]);
    } finally {
      await conn.end();
    }
  }, 120_000);
});
