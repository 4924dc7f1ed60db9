import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { createSourceReader } from '../src/source/index.js';
import { silentLogger } from '../src/log.js';
import { classifyRows } from '../src/verify/drill.js';
import { runCli } from './support/cli.js';
import { copyTable } from './support/copy-rows.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * A nullable shard key that is not the primary key: copy refuses a row whose shard key is NULL
 * (no shard function routes NULL). verify routed it as the text "null" (crc32('null') % N),
 * reported it missing there, and --repair wrote it into that shard.
 */
describe('verify: a legacy row whose shard key became NULL', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv({
      shardCount: 4,
      tables: { account: { source: 'legacy.account', target: 'account', shard_key: 'owner_id' } },
      legacySql: [
        'CREATE TABLE account (account_id BIGINT NOT NULL PRIMARY KEY, owner_id BIGINT NULL, note VARCHAR(20) NULL)',
        `INSERT INTO account VALUES ${Array.from({ length: 40 }, (_, i) => `(${i + 1}, ${1000 + i}, 'n${i}')`).join(', ')}`,
      ],
      extra: { verify: { recheck_after_seconds: 0 } },
    });
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
    await copyTable(env.config, 'account');
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query('UPDATE account SET owner_id = NULL WHERE account_id = 7');
    await legacy.end();
  }, 120_000);
  afterAll(async () => env?.cleanup());

  it('is refused by name, as copy refuses it, and --repair writes it into no shard', async () => {
    for (const args of [['verify'], ['verify', '--repair']]) {
      const r = await runCli([...args, '--config', env.configPath, '--json']);
      expect([r.code, args.join(' ')]).toEqual([1, args.join(' ')]);
      expect(JSON.parse(r.stdout).result.state).toBe('failed');
      expect(r.stdout + r.stderr).toContain("table account: a row's shard key owner_id is NULL: no shard to copy it to");
      // Tried once, not three times: it fails the same way every time, and the advice says what helps.
      expect(r.stderr).not.toContain('will retry');
      const human = await runCli([...args, '--config', env.configPath]);
      expect(human.stdout).toContain('some chunks failed: give the legacy rows named above a shard key, then run again');
    }
    const map = shardMapFromConfig(env.config);
    let copies = 0;
    for (let shard = 0; shard < map.count; shard++) {
      const conn = await connectMysql(map.serverOf(shard).primary, { database: map.databaseOf(shard) });
      const [rows] = await conn.query<RowDataPacket[]>('SELECT owner_id FROM account WHERE account_id = 7');
      await conn.end();
      for (const row of rows) {
        copies++;
        expect(row.owner_id).not.toBeNull(); // the copy made before the legacy update, left as it was
      }
    }
    expect(copies).toBe(1);
  }, 120_000);

  it('the drill-down (SQL Server and Node-hashed sides) refuses it too, rather than calling it missing on shard crc32("null")', async () => {
    const reader = createSourceReader(env.config, silentLogger);
    const spec = await reader.describeTable('account', env.config.tables.account!);
    await reader.close();
    const map = shardMapFromConfig(env.config);
    const legacy = spec.columns.map((c) => (c.source === 'account_id' ? '7' : c.source === 'owner_id' ? null : 'n6'));
    expect(() => classifyRows(spec, map, ['7'], legacy, new Map(), new Set([0, 1, 2, 3]))).toThrow("table account: a row's shard key owner_id is NULL");
  });
});
