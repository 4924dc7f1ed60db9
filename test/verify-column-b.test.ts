import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql, quoteId } from '../src/mysql/connect.js';
import { runCli } from './support/cli.js';
import { createCopyEnv } from './support/copy-env.js';
import type { TestEnv } from './support/env.js';
import { onShardOf } from './support/shards.js';

/**
 * verify's bucketed drill-down groups shard rows with `GROUP BY b`, `b` being its alias for
 * the bucket. MySQL/MariaDB resolve a GROUP BY name to a FROM-clause column before a select alias,
 * so a legacy table with a column named `b` (copied to the shards as is) is grouped by that column.
 */
describe('verify on a table with a column named like its bucket alias', () => {
  let env: TestEnv;
  const ddl = (t: string, col: string) => `CREATE TABLE ${t} (id INT PRIMARY KEY, member_id BIGINT NOT NULL, ${quoteId(col)} INT NULL)`;
  beforeAll(async () => {
    env = await createCopyEnv({
      shardCount: 4,
      tables: (db) => ({
        bk: { source: `${db}.bk`, target: 'bk', shard_key: 'member_id' },
        ok: { source: `${db}.okt`, target: 'okt', shard_key: 'member_id' },
      }),
      extra: { verify: { chunk_rows: 10_000, workers: 1, recheck_after_seconds: 0 } },
    });
    const conn = await connectMysql(env.legacyUrl);
    for (const [t, col] of [
      ['bk', 'b'],
      ['okt', 'bb'],
    ] as const) {
      await conn.query(ddl(t, col));
      const values = Array.from({ length: 2000 }, (_, i) => `(${i + 1}, 1, ${i + 1})`).join(', ');
      await conn.query(`INSERT INTO ${t} VALUES ${values}, (100000, 1, 100000)`);
    }
    await conn.end();
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
    const full = await runCli(['full', '--config', env.configPath, '--json']);
    expect(full.code, full.stderr).toBe(0);
    // The same extra row on the shards of both tables (a row legacy does not have).
    await onShardOf(env.config, '1', async (shard, db) => {
      await shard.query(`INSERT INTO ${quoteId(db)}.bk VALUES (99999, 1, 99999)`);
      await shard.query(`INSERT INTO ${quoteId(db)}.okt VALUES (99999, 1, 99999)`);
    });
  }, 120_000);
  afterAll(async () => env?.cleanup());

  it('control: with the column named bb, verify finds the extra row', async () => {
    const res = await runCli(['verify', '--config', env.configPath, '--json', '--tables', 'ok']);
    expect(res.code, res.stdout + res.stderr).toBe(1);
    expect(JSON.parse(res.stdout).result.tables[0].differences).toBe(1);
  });

  it('with the column named b, verify finds the extra row too', async () => {
    const res = await runCli(['verify', '--config', env.configPath, '--json', '--tables', 'bk']);
    expect(res.code, res.stdout + res.stderr).toBe(1);
    expect(JSON.parse(res.stdout).result.tables[0].differences).toBe(1);
  });
});
