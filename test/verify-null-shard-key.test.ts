import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { rowsQuery } from '../src/mysql/pool.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { createSourceReader } from '../src/source/index.js';
import { silentLogger } from '../src/log.js';
import { createShardWriter } from '../src/target/writer.js';
import { compareRange, recheckKeys } from '../src/verify/drill.js';
import { ShardSide, StreamingLegacySide } from '../src/verify/sides.js';
import { runCli } from './support/cli.js';
import { copyTable } from './support/copy-rows.js';
import { createTestEnv, type TestEnv } from './support/env.js';

const NULL_KEY_REASON = 'table account, key (7), column owner_id: the shard key is NULL: no shard to copy the row to (value NULL)';

/**
 * A nullable shard key that is not the primary key: copy rejects a row whose shard key is NULL
 * (no shard function routes NULL). verify reports such a row as unrepresentable, keeps its old
 * copy, and goes on checking the rest of the chunk: one bad legacy row used to fail its whole
 * chunk on every run, so a damaged row beside it was never found nor repaired.
 */
describe('verify: a legacy row whose shard key became NULL', () => {
  let env: TestEnv;
  const onShards = async (sql: string) => {
    const map = shardMapFromConfig(env.config);
    const out: RowDataPacket[] = [];
    for (let shard = 0; shard < map.count; shard++) {
      const conn = await connectMysql(map.serverOf(shard).primary, { database: map.databaseOf(shard) });
      const [rows] = await conn.query<RowDataPacket[]>(sql);
      await conn.end();
      out.push(...rows.map((r) => ({ ...r, shard })));
    }
    return out;
  };

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
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code).toBe(0);
    // Said before the first copy: such a column lets a row route nowhere.
    expect(init.stderr).toContain('the shard key column is nullable: a row whose key is NULL routes to no shard');
    await copyTable(env.config, 'account');
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query('UPDATE account SET owner_id = NULL WHERE account_id = 7');
    await legacy.end();
    // Two damaged copies in the same chunk as the NULL-key row: one changed, one gone.
    const map = shardMapFromConfig(env.config);
    for (const [id, sql] of [
      [8, "UPDATE account SET note = 'damaged' WHERE account_id = 8"],
      [9, 'DELETE FROM account WHERE account_id = 9'],
    ] as const) {
      const shard = map.shardOf(String(1000 + id - 1));
      const conn = await connectMysql(map.serverOf(shard).primary, { database: map.databaseOf(shard) });
      await conn.query(sql);
      await conn.end();
    }
  }, 120_000);
  afterAll(async () => env?.cleanup());

  it('is reported as unrepresentable, its copy kept, while the rest of its chunk is checked and repaired', async () => {
    const first = await runCli(['verify', '--config', env.configPath, '--json']);
    expect(first.code).toBe(1);
    const found = JSON.parse(first.stdout).result;
    expect(found.state).toBe('differences');
    expect(found.failures).toEqual([]);
    const kinds = (r: { differences: { key: string[]; kind: string; shard: number | null; reason?: string }[] }) =>
      r.differences.map((d) => [d.key.join(), d.kind, d.shard === null ? null : 'shard', d.reason ?? '']).sort();
    expect(kinds(found)).toEqual([
      ['7', 'unrepresentable', null, NULL_KEY_REASON],
      ['8', 'different', 'shard', ''],
      ['9', 'missing', 'shard', ''],
    ]);

    const repair = await runCli(['verify', '--repair', '--config', env.configPath, '--json']);
    expect(repair.code).toBe(1); // the NULL-key row is still there
    const repaired = JSON.parse(repair.stdout).result;
    expect(repaired.differences.map((d: { key: string[]; repairAction: string }) => [d.key.join(), d.repairAction]).sort()).toEqual([
      ['7', 'keep'],
      ['8', 'upsert'],
      ['9', 'upsert'],
    ]);
    expect(repair.stderr).toContain('not repaired: the legacy rows hold values the target cannot hold');

    const after = await runCli(['verify', '--config', env.configPath]);
    expect(after.code).toBe(1);
    expect(after.stdout).toContain('unrepresentable');
    expect(after.stdout).toContain(NULL_KEY_REASON);
    expect(after.stdout).not.toMatch(/\bmissing\b|\bdifferent\b|chunks? failed/);

    const rows = await onShards('SELECT account_id, owner_id, note FROM account WHERE account_id IN (7, 8, 9) ORDER BY account_id');
    // 7: the copy made before the legacy update, left as it was (never routed as the text "null").
    expect(rows.map((r) => [Number(r.account_id), r.owner_id === null ? null : Number(r.owner_id), r.note]).sort((a, b) => a[0] - b[0])).toEqual([
      [7, 1006, 'n6'],
      [8, 1007, 'n7'],
      [9, 1008, 'n8'],
    ]);
  }, 120_000);

  it('the Node-hashed legacy side (SQL Server without pushdown) reports it the same way', async () => {
    const reader = createSourceReader(env.config, silentLogger);
    const writer = createShardWriter(env.config);
    try {
      const spec = await reader.describeTable('account', env.config.tables.account!);
      const map = shardMapFromConfig(env.config);
      const all = [0, 1, 2, 3];
      const ctx = {
        spec,
        hash: 'md5' as const,
        map,
        legacy: new StreamingLegacySide(reader, spec, 'md5', map),
        shards: new ShardSide((s) => rowsQuery(writer.poolOf(s), 60_000), spec, 'md5', map, all),
        filter: {},
        leafRows: 100,
        fanout: 4,
      };
      const range = { lower: null, upper: null };
      const { candidates } = await compareRange(ctx, range);
      expect(candidates.map((c) => [c.key.join(), c.kind, c.shard])).toEqual([['7', 'unrepresentable', null]]);
      const again = await recheckKeys(ctx, candidates);
      expect(again).toEqual([expect.objectContaining({ key: ['7'], kind: 'unrepresentable', shard: null, reason: NULL_KEY_REASON })]);
      // With --shards, the legacy row is in none of them, so the old copy looks extra; read by key it is
      // unrepresentable again, so repair keeps the copy rather than deleting it.
      const home = map.shardOf('1006');
      const some = {
        ...ctx,
        shards: new ShardSide((s) => rowsQuery(writer.poolOf(s), 60_000), spec, 'md5', map, [home]),
        filter: { shards: { expression: (c: string) => map.sqlShardExpression(c)!, list: [home] } },
      };
      const stray = (await compareRange(some, range)).candidates;
      expect(stray.map((c) => [c.key.join(), c.kind, c.shard])).toEqual([['7', 'extra', home]]);
      expect(await recheckKeys(some, stray)).toEqual([expect.objectContaining({ key: ['7'], kind: 'unrepresentable', shard: home, reason: NULL_KEY_REASON })]);
    } finally {
      await reader.close();
      await writer.close();
    }
  }, 60_000);
});
