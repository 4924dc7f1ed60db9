import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { runCli } from './support/cli.js';
import { copyTable } from './support/copy-rows.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * A held repair_queue entry (behind = legacy: a MySQL-primary write whose legacy half failed) of a
 * table whose shard key is not in its primary key. Legacy has no row to route the key by, so the
 * re-check must look at every shard: under --shards it looked at the listed ones only, missed
 * MySQL's row, resolved the entry, and the next verify --repair deleted the row as extra — the only
 * copy of the member's write.
 */
describe('verify --repair --shards and a held repair_queue entry', () => {
  let env: TestEnv;
  let home = -1;
  beforeAll(async () => {
    env = await createTestEnv({
      shardCount: 4,
      tables: { account: { source: 'legacy.account', target: 'account', shard_key: 'owner_id' } },
      legacySql: [
        'CREATE TABLE account (account_id BIGINT NOT NULL PRIMARY KEY, owner_id BIGINT NOT NULL, note VARCHAR(20) NULL)',
        `INSERT INTO account VALUES ${Array.from({ length: 20 }, (_, i) => `(${i + 1}, ${1000 + i}, 'n${i}')`).join(', ')}`,
      ],
      extra: { verify: { recheck_after_seconds: 0 } },
    });
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
    await copyTable(env.config, 'account');
    const map = shardMapFromConfig(env.config);
    home = map.shardOf('5000');
    const conn = await connectMysql(map.serverOf(home).primary, { database: map.databaseOf(home) });
    await conn.query("INSERT INTO account VALUES (100, 5000, 'mysql-only')");
    await conn.end();
    const control = await connectMysql(env.config.control.url);
    await control.query("INSERT INTO repair_queue (table_name, pk, reason, origin, behind) VALUES ('account', '[\"100\"]', 'shim: legacy write failed (test)', 'shim', 'legacy')");
    await control.end();
  }, 120_000);
  afterAll(async () => env?.cleanup());

  it("keeps the entry open and MySQL's row in place, in the scoped run and in the next full one", async () => {
    const map = shardMapFromConfig(env.config);
    const others = [0, 1, 2, 3].filter((s) => s !== home).join(',');
    const scoped = await runCli(['verify', '--repair', '--shards', others, '--config', env.configPath, '--json']);
    expect(JSON.parse(scoped.stdout).result.repairQueue).toEqual([expect.objectContaining({ table: 'account', entries: 1, resolved: 0, legacyBehind: 1 })]);
    // The rows it compared are clean, but an entry is left open: a problem left, exit 1 (it was 0).
    expect([JSON.parse(scoped.stdout).result.state, scoped.code]).toEqual(['clean', 1]);
    const full = await runCli(['verify', '--repair', '--config', env.configPath, '--json']);
    const r = JSON.parse(full.stdout).result;
    expect(r.differences.map((d: { key: string[]; kind: string; repairAction: string }) => [d.key.join(), d.kind, d.repairAction])).toEqual([['100', 'extra', 'hold']]);
    const control = await connectMysql(env.config.control.url);
    const conn = await connectMysql(map.serverOf(home).primary, { database: map.databaseOf(home) });
    try {
      const [entry] = await control.query<RowDataPacket[]>("SELECT resolved_at FROM repair_queue WHERE table_name = 'account'");
      expect(entry[0]!.resolved_at).toBeNull();
      const [rows] = await conn.query<RowDataPacket[]>('SELECT note FROM account WHERE account_id = 100');
      expect(rows.map((row) => row.note)).toEqual(['mysql-only']);
    } finally {
      await control.end();
      await conn.end();
    }
  }, 120_000);
});
