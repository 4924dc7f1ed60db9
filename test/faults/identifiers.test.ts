import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql, quoteId } from '../../src/mysql/connect.js';
import { shardMapFromConfig } from '../../src/shard/map.js';
import { execCli, runCli } from '../support/cli.js';
import { createCopyEnv } from '../support/copy-env.js';
import type { TestEnv } from '../support/env.js';
import { compareTable } from '../support/compare.js';
import { recordFaults } from '../support/faults.js';

/**
 * Hostile identifiers: a legacy table and columns named with double quotes, backticks, spaces,
 * semicolons, comment markers and Unicode go through init, full and verify (--repair): every name is
 * quoted everywhere, nothing is injected (a canary table survives), the shards equal legacy.
 * (Every value type at its boundaries: test/types.test.ts; nasty values: test/support/nasty.ts.)
 */

const TABLE = 'we"ird `tab` 名';
const KEY = 'mem`ber "id"';
const COLUMNS = ["na'me; DROP TABLE canary; --", 'sp ace\ttab', '名前 ü', 'x`); DELETE FROM canary; #'];
const ROWS = 300;

describe('hostile table and column names', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createCopyEnv({
      shardCount: 4,
      tables: (db) => ({ weird: { source: `${db}.${TABLE}`, target: TABLE, shard_key: KEY } }),
      extra: { copy: { chunk_rows: 70, batch_rows: 30, workers: 2 }, verify: { chunk_rows: 70, workers: 2, recheck_after_seconds: 0 } },
    });
    const conn = await connectMysql(env.legacyUrl);
    await conn.query('CREATE TABLE canary (id INT PRIMARY KEY)');
    await conn.query('INSERT INTO canary VALUES (1)');
    await conn.query(
      `CREATE TABLE ${quoteId(TABLE)} (${quoteId(KEY)} BIGINT NOT NULL PRIMARY KEY, ${COLUMNS.map((c, i) => `${quoteId(c)} ${i % 2 ? 'VARCHAR(40)' : 'TEXT'} NULL`).join(', ')}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    );
    const rows = Array.from({ length: ROWS }, (_, i) => [i * 101 - 5000, `v'${i}"\``, i % 3 ? `t\t${i}` : null, `名${i}😀`, `);--${i}`]);
    await conn.query(`INSERT INTO ${quoteId(TABLE)} VALUES ?`, [rows]);
    await conn.end();
  });
  afterAll(async () => env?.cleanup());

  it('init, full and verify handle them; nothing injected; the shards equal legacy', async () => {
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr + init.stdout).toBe(0);
    const full = await execCli(['full', '--config', env.configPath, '--json']);
    expect(full.code, full.stderr.slice(-2000)).toBe(0);
    expect(JSON.parse(full.stdout).result.state).toBe('done');
    const cmp = await compareTable(env.config, env.legacyUrl, TABLE, TABLE, [KEY], KEY);
    expect(cmp.differences.slice(0, 10)).toEqual([]);
    expect(cmp.shardRows).toBe(ROWS);

    const clean = await execCli(['verify', '--config', env.configPath, '--json']);
    expect(clean.code, clean.stderr.slice(-2000) + clean.stdout.slice(-1000)).toBe(0);
    expect(JSON.parse(clean.stdout).result.tables[0]).toMatchObject({ rowsSource: ROWS, rowsTarget: ROWS });

    // A bent value in a hostile column: verify names the column, --repair fixes it.
    const map = shardMapFromConfig(env.config);
    const shard = map.shardOf('-5000');
    const conn = await connectMysql(map.serverOf(shard).primary, { database: map.databaseOf(shard) });
    await conn.query(`UPDATE ${quoteId(TABLE)} SET ${quoteId(COLUMNS[2]!)} = 'bent' WHERE ${quoteId(KEY)} = -5000`);
    await conn.end();
    const found = await execCli(['verify', '--config', env.configPath, '--json']);
    expect(found.code).toBe(1);
    expect(JSON.parse(found.stdout).result.differences.map((d: { columns: string[] }) => d.columns)).toEqual([[COLUMNS[2]]]);
    const repaired = await execCli(['verify', '--config', env.configPath, '--repair', '--json']);
    expect(repaired.code, repaired.stdout.slice(-2000)).toBe(0);
    const after = await compareTable(env.config, env.legacyUrl, TABLE, TABLE, [KEY], KEY);
    expect(after.differences).toEqual([]);

    const legacy = await connectMysql(env.legacyUrl);
    const [canary] = await legacy.query('SELECT COUNT(*) AS n FROM canary');
    await legacy.end();
    expect(Number((canary as { n: number }[])[0]!.n)).toBe(1);
    recordFaults({ scenario: 'hostile identifiers', faults: 0, recoveries: 0, rowsChecked: after.legacyRows, differences: after.differences.length });
  }, 240_000); // child processes are slow when the shared machine is busy
});
