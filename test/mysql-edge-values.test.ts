import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { connectMysql } from '../src/mysql/connect.js';
import { runVerify } from '../src/verify/index.js';
import { runCli } from './support/cli.js';
import { createCopyEnv } from './support/copy-env.js';
import type { TestEnv } from './support/env.js';
import { onShardOf } from './support/shards.js';

/**
 * MySQL legacy values found bent by a review with real runs (2026-11-28): ENUM/SET members
 * lower-cased in the shard DDL, NO PAD key collations turned PAD SPACE (keys 'a' and 'a ' then
 * collide), and YEAR 0000 read back as 0 by verify, so its repair never confirmed.
 */
describe('MySQL legacy edge values: member case, NO PAD keys, YEAR 0000', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createCopyEnv({
      shardCount: 2,
      tables: (db) => ({
        en: { source: `${db}.en`, target: 'en', shard_key: 'id' },
        np: { source: `${db}.np`, target: 'np', shard_key: 'sk' },
        yr: { source: `${db}.yr`, target: 'yr', shard_key: 'id' },
      }),
    });
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query(`CREATE TABLE en (id INT PRIMARY KEY, e ENUM('Alpha','beta') COLLATE utf8mb4_general_ci NULL,
      s SET('Red','Blue') COLLATE utf8mb4_general_ci NULL, b ENUM('X','x') COLLATE utf8mb4_bin NULL)`);
    await legacy.query("INSERT INTO en VALUES (1, 'Alpha', 'Red,Blue', 'X'), (2, 'beta', 'Blue', 'x'), (3, NULL, '', NULL)");
    await legacy.query('CREATE TABLE np (sk INT, k VARCHAR(10) CHARACTER SET latin1 COLLATE latin1_nopad_bin, v INT, PRIMARY KEY (sk, k))');
    await legacy.query("INSERT INTO np VALUES (1, 'a', 1), (1, 'a ', 2), (1, 'a  ', 3), (2, 'b', 4)");
    await legacy.query('CREATE TABLE yr (id INT PRIMARY KEY, y YEAR NULL, v VARCHAR(5))');
    await legacy.query("INSERT INTO yr VALUES (1, 0, 'a'), (2, 2000, 'b'), (3, NULL, 'c')");
    await legacy.end();
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
    const full = await runCli(['full', '--config', env.configPath]);
    expect(full.code, full.stderr).toBe(0);
  }, 120_000);
  afterAll(async () => env?.cleanup());

  it('ENUM and SET members keep their case in the shard table and in the rows', async () => {
    const types = await onShardOf(env.config, '1', async (shard, db) => {
      const [rows] = await shard.query("SELECT COLUMN_NAME AS c, COLUMN_TYPE AS t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'en' ORDER BY ORDINAL_POSITION", [db]);
      return Object.fromEntries((rows as { c: string; t: string }[]).map((r) => [r.c, r.t]));
    });
    expect(types).toMatchObject({ e: "enum('Alpha','beta')", s: "set('Red','Blue')", b: "enum('X','x')" });
    for (const [id, want] of [['1', ['Alpha', 'Red,Blue', 'X']], ['2', ['beta', 'Blue', 'x']]] as const) {
      const got = await onShardOf(env.config, id, async (shard, db) => ((await shard.query(`SELECT CAST(e AS BINARY) AS e, CAST(s AS BINARY) AS s, CAST(b AS BINARY) AS b FROM \`${db}\`.en WHERE id = ?`, [id])) as unknown as [{ e: Buffer; s: Buffer; b: Buffer }[]])[0][0]!);
      expect([got.e.toString(), got.s.toString(), got.b.toString()], `row ${id}`).toEqual(want);
    }
    expect((await runVerify(env.config, { logger: silentLogger, tables: ['en'], recheckAfterSeconds: 0 })).state).toBe('clean');
  });

  it('keys under a NO PAD collation that differ by trailing spaces stay apart', async () => {
    const keys = await onShardOf(env.config, '1', async (shard, db) => ((await shard.query(`SELECT HEX(k) AS k, v FROM \`${db}\`.np WHERE sk = 1 ORDER BY v`)) as unknown as [{ k: string; v: number }[]])[0]);
    expect(keys).toEqual([{ k: '61', v: 1 }, { k: '6120', v: 2 }, { k: '612020', v: 3 }]);
    expect((await runVerify(env.config, { logger: silentLogger, tables: ['np'], recheckAfterSeconds: 0 })).state).toBe('clean');
  });

  it('a repaired row with YEAR 0000 is confirmed equal', async () => {
    await onShardOf(env.config, '1', (shard, db) => shard.query(`UPDATE \`${db}\`.yr SET v = 'z' WHERE id = 1`));
    const repaired = await runVerify(env.config, { logger: silentLogger, tables: ['yr'], repair: true, recheckAfterSeconds: 0 });
    expect(repaired.differences.map((d) => [d.key[0], d.columns])).toEqual([['1', ['v']]]);
    expect(repaired.state).toBe('clean');
    const y = await onShardOf(env.config, '1', async (shard, db) => ((await shard.query(`SELECT CAST(y AS CHAR) AS y, v FROM \`${db}\`.yr WHERE id = 1`)) as unknown as [{ y: string; v: string }[]])[0][0]);
    expect(y).toEqual({ y: '0000', v: 'a' });
  });
});
