import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { shardMapFromConfig, type ShardMap } from '../src/shard/map.js';
import { runCli } from './support/cli.js';
import { createCopyEnv } from './support/copy-env.js';
import { compareTable } from './support/compare.js';
import { onShard as onShardOfEnv, verifyTable } from './support/verify-runs.js';
import type { TestEnv } from './support/env.js';

/** verify --repair with binary, temporal, decimal, gbk and enum key columns. */
describe('verify --repair by unusual primary keys', () => {
  let env: TestEnv;
  let map: ShardMap;

  const onShard = (shard: number, sql: string, params: unknown[] = []) => onShardOfEnv(env, shard, sql, params);
  const verify = async (table: string, repair = false) => {
    const run = await verifyTable(env, table, repair);
    return { ...run, kinds: ((run.result?.differences ?? []) as any[]).map((d) => `${d.kind} ${JSON.stringify(d.key)} @${d.shard}`).sort() };
  };
  const same = async (table: string, key: string[], shardKey: string) => (await compareTable(env.config, env.legacyUrl, table, table, key, shardKey)).differences;

  beforeAll(async () => {
    env = await createCopyEnv({
      shardCount: 4,
      tables: (db) => ({
        bk: { source: `${db}.bk`, target: 'bk', shard_key: 'sk' },
        tk: { source: `${db}.tk`, target: 'tk', shard_key: 'sk' },
        gk: { source: `${db}.gk`, target: 'gk', shard_key: 'k' },
      }),
      extra: { verify: { chunk_rows: 10, workers: 2, recheck_after_seconds: 0 } },
    });
    map = shardMapFromConfig(env.config);
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query('CREATE TABLE bk (id BINARY(4) NOT NULL PRIMARY KEY, sk INT NOT NULL, v VARCHAR(10) NULL)');
    await legacy.query(`INSERT INTO bk VALUES ${Array.from({ length: 40 }, (_, i) => `(X'${(i * 0x1f3a5).toString(16).padStart(6, '0')}${i % 2 ? '00' : 'FF'}', ${i}, 'v${i}')`).join(', ')}, (X'20202020', 1, 'sp'), (X'00000000', 2, 'z'), (X'FFFFFFFF', 3, 'f')`);
    await legacy.query(`CREATE TABLE tk (sk INT NOT NULL, at DATETIME(6) NOT NULL, amt DECIMAL(10,4) NOT NULL, kind ENUM('b','a','C') NOT NULL, v VARCHAR(10) NULL, PRIMARY KEY (sk, at, amt, kind))`);
    await legacy.query(`INSERT INTO tk VALUES ${Array.from({ length: 40 }, (_, i) => `(${i % 5}, '2024-01-01 00:00:00.${String(i).padStart(6, '0')}', ${i}.5001, '${['b', 'a', 'C'][i % 3]}', 'v${i}')`).join(', ')}`);
    await legacy.query('CREATE TABLE gk (k VARCHAR(10) CHARACTER SET gbk COLLATE gbk_chinese_ci NOT NULL PRIMARY KEY, v INT NULL)');
    await legacy.query(`INSERT INTO gk VALUES ${Array.from({ length: 30 }, (_, i) => `('城${i}市', ${i})`).join(', ')}, ('北京', 1), ('Abc', 2), ('é', 3)`);
    await legacy.end();
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr + init.stdout).toBe(0);
    const full = await runCli(['full', '--config', env.configPath]);
    expect(full.code, full.stderr).toBe(0);
  }, 180_000);
  afterAll(async () => env?.cleanup());

  it('clean after the copy', async () => {
    for (const t of ['bk', 'tk', 'gk']) expect((await verify(t)).result?.state, t).toBe('clean');
  });

  it('bk: BINARY(4) key: missing, extra, wrong shard, changed; repaired', async () => {
    const sh = (hex: string) => map.shardOf(Buffer.from(hex, 'hex') as never);
    void sh;
    const rows = await onShard(0, 'SELECT HEX(id) AS id FROM bk');
    const all: { id: string; shard: number }[] = [];
    for (let s = 0; s < 4; s++) for (const r of await onShard(s, 'SELECT HEX(id) AS id FROM bk')) all.push({ id: String(r.id), shard: s });
    expect(rows.length).toBeGreaterThan(0);
    const [a, b, c] = all;
    await onShard(a!.shard, `DELETE FROM bk WHERE id = X'${a!.id}'`);
    await onShard(b!.shard, `UPDATE bk SET v = 'changed' WHERE id = X'${b!.id}'`);
    const [row] = await onShard(c!.shard, `SELECT * FROM bk WHERE id = X'${c!.id}'`);
    await onShard(c!.shard, `DELETE FROM bk WHERE id = X'${c!.id}'`);
    await onShard((c!.shard + 1) % 4, 'INSERT INTO bk SET ?', [row]);
    await onShard(2, "INSERT INTO bk VALUES (X'00000001', 2, 'extra'), (X'41', 2, 'pad')");
    const found = await verify('bk');
    expect(found.result?.state, found.stderr).toBe('differences');
    const rep = await verify('bk', true);
    expect(rep.result?.state, rep.stderr + JSON.stringify(rep.kinds)).toBe('clean');
    expect(await same('bk', ['id'], 'sk')).toEqual([]);
  });

  it('tk: DATETIME(6)/DECIMAL/ENUM key parts: a microsecond, a last digit and an enum member changed on a shard', async () => {
    await onShard(map.shardOf('1'), "UPDATE tk SET at = '2024-01-01 00:00:00.000002' WHERE sk = 1 AND at = '2024-01-01 00:00:00.000001'");
    await onShard(map.shardOf('2'), "UPDATE tk SET amt = 2.5002 WHERE sk = 2 AND amt = 2.5001");
    await onShard(map.shardOf('3'), "UPDATE tk SET kind = 'a' WHERE sk = 3 AND amt = 3.5001");
    const found = await verify('tk');
    expect(found.result?.state, found.stderr).toBe('differences');
    expect(found.kinds, JSON.stringify(found.kinds)).toHaveLength(6);
    const rep = await verify('tk', true);
    expect(rep.result?.state, rep.stderr + JSON.stringify(rep.kinds)).toBe('clean');
    expect(await same('tk', ['sk', 'at', 'amt', 'kind'], 'sk')).toEqual([]);
  });

  it('gk: gbk _ci key: case changed, a row moved to another shard, an extra gbk row', async () => {
    await onShard(map.shardOf('Abc'), "UPDATE gk SET k = 'ABC' WHERE k = 'Abc'");
    const home = map.shardOf('北京');
    const [row] = await onShard(home, "SELECT * FROM gk WHERE k = '北京'");
    await onShard(home, "DELETE FROM gk WHERE k = '北京'");
    await onShard((home + 1) % 4, 'INSERT INTO gk SET ?', [row]);
    await onShard(map.shardOf('上海'), "INSERT INTO gk VALUES ('上海', 9)");
    const found = await verify('gk');
    expect(found.result?.state, found.stderr).toBe('differences');
    const rep = await verify('gk', true);
    expect(rep.result?.state, rep.stderr + JSON.stringify(rep.kinds)).toBe('clean');
    expect(await same('gk', ['k'], 'k')).toEqual([]);
  });
});
