import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql, quoteId } from '../src/mysql/connect.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { createShim } from '../src/shim/index.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { captureLegacy, kafkaServices, rewriteConfig, type LegacyCapture } from './services/kafka-env.js';

/**
 * `tables.NAME.columns.SOURCE.target` renames a column in the shard tables: the primary key, the
 * shard key and a plain column here, through every path that names columns: init's DDL and shape
 * check, full (both write methods), verify and --repair, and sync from real Debezium.
 */
describe('column overrides: renamed columns through init, full, verify, repair and sync', () => {
  let env: TestEnv;
  let capture: LegacyCapture | undefined;
  const topic = () => `${env.prefix}.${env.legacyDb}.Member`;
  const table = (extra: object = {}) => ({
    member: {
      source: `${env.legacyDb}.Member`,
      target: 'member',
      shard_key: 'MemberID',
      columns: { MemberID: { target: 'member_id' }, EMail: { target: 'email' }, Balance: { target: 'balance' } },
      ...extra,
    },
  });
  const shardRows = async (): Promise<Record<string, unknown>[]> => {
    const map = shardMapFromConfig(env.config);
    const rows: Record<string, unknown>[] = [];
    for (let shard = 0; shard < map.count; shard++) {
      const conn = await connectMysql(map.serverOf(shard).primary);
      rows.push(...(await conn.query<RowDataPacket[]>(`SELECT member_id, email, balance, Note FROM ${quoteId(map.databaseOf(shard))}.member`))[0].map((r) => ({ ...r, shard })));
      await conn.end();
    }
    return rows.sort((a, b) => Number(a.member_id) - Number(b.member_id));
  };

  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 4, extra: { verify: { recheck_after_seconds: 0 } } });
    rewriteConfig(env, { ...env.raw, tables: table(), cdc: { kafka: { brokers: kafkaServices().brokers, topic: topic(), group: `${env.prefix}-sync` } } });
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query('CREATE TABLE Member (MemberID BIGINT NOT NULL PRIMARY KEY, EMail VARCHAR(64) NULL, Balance DECIMAL(18,2) NOT NULL, Note VARCHAR(20) NULL, KEY by_email (EMail), KEY by_note (Note, Balance)) ENGINE=InnoDB');
    await legacy.query('INSERT INTO Member VALUES ?', [Array.from({ length: 40 }, (_, i) => [i + 1, i % 5 ? `m${i + 1}@example.cn` : null, `${i}.25`, i % 3 ? 'n' : null])]);
    await legacy.end();
  });

  afterAll(async () => {
    await capture?.stop();
    await env?.cleanup();
  });

  it('refuses overrides that name no column, an excluded one, or make two columns one', async () => {
    const refused = async (extra: object, message: string) => {
      rewriteConfig(env, { ...env.raw, tables: table(extra) });
      const r = await runCli(['init', '--config', env.configPath]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(message);
    };
    await refused({ columns: { Ghost: { target: 'g' } } }, 'columns names Ghost, which is not a column of the source table');
    await refused({ columns: { Note: { target: 'n' } }, exclude_columns: ['Note'] }, 'columns renames Note, which exclude_columns leaves out');
    await refused({ columns: { EMail: { target: 'note' } } }, 'columns EMail and Note would both be column Note in the shard tables');
    rewriteConfig(env, { ...env.raw, tables: table() });
  });

  it('init creates the renamed columns; full copies into them with either write method; verify is clean', async () => {
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
    for (const method of ['load', 'insert']) {
      rewriteConfig(env, { ...env.raw, copy: { method } });
      const full = await runCli(['full', '--config', env.configPath, '--restart', '--json']);
      expect(full.code, full.stderr).toBe(0);
      const rows = await shardRows();
      expect(rows).toHaveLength(40);
      // Secondary indexes keep their columns, by their shard-table names (init wrote the source names: it failed).
      const shards = shardMapFromConfig(env.config);
      const conn = await connectMysql(shards.serverOf(0).primary);
      const [keys] = await conn.query<RowDataPacket[]>(
        "SELECT INDEX_NAME AS i, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) AS c FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'member' GROUP BY INDEX_NAME ORDER BY INDEX_NAME",
        [shards.databaseOf(0)],
      );
      await conn.end();
      expect(keys.map((k) => [k.i, k.c])).toEqual([['by_email', 'email'], ['by_note', 'Note,balance'], ['PRIMARY', 'member_id']]);
      expect(rows[0]).toMatchObject({ member_id: '1', email: null, balance: '0.25', Note: null });
      expect(rows[39]).toMatchObject({ member_id: '40', email: 'm40@example.cn', balance: '39.25', Note: null });
      const map = shardMapFromConfig(env.config);
      for (const r of rows) expect(r.shard).toBe(map.shardOf(String(r.member_id)));
      const verify = await runCli(['verify', '--config', env.configPath, '--json']);
      expect(verify.code, verify.stdout).toBe(0);
    }
  });

  it('verify names a damaged renamed column by its shard-table name and --repair puts it back', async () => {
    const map = shardMapFromConfig(env.config);
    const conn = await connectMysql(map.serverOf(map.shardOf('7')).primary);
    await conn.query(`UPDATE ${quoteId(map.databaseOf(map.shardOf('7')))}.member SET email = 'wrong', balance = 1 WHERE member_id = 7`);
    await conn.end();
    const found = await runCli(['verify', '--config', env.configPath, '--json']);
    expect(found.code).toBe(1);
    expect(JSON.parse(found.stdout).result.differences.map((d: { key: string[]; columns: string[] }) => [d.key, d.columns])).toEqual([[['7'], ['email', 'balance']]]);
    expect((await runCli(['verify', '--config', env.configPath, '--repair'])).code).toBe(0);
    expect((await shardRows())[6]).toMatchObject({ member_id: '7', email: 'm7@example.cn', balance: '6.25' });
  });

  it('the shim knows the renamed shard key as the shard tables primary key: a write needs no pk', async () => {
    const shim = await createShim({ config: env.configPath });
    try {
      const sides: string[] = [];
      await shim.write('member', 5, { legacy: async () => void sides.push('legacy'), mysql: async () => void sides.push('mysql') });
      expect(sides).toContain('legacy');
    } finally {
      await shim.close();
    }
  });

  it('sync applies inserts, updates and deletes from real Debezium into the renamed columns', async () => {
    capture = await captureLegacy(env, ['Member'], 2);
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query("INSERT INTO Member VALUES (41, 'new@example.cn', 41.5, 'x')");
    await legacy.query("UPDATE Member SET EMail = 'changed@example.cn', Balance = 0.01 WHERE MemberID = 2");
    await legacy.query('DELETE FROM Member WHERE MemberID = 3');
    await legacy.end();
    const synced = await runCli(['sync', '--config', env.configPath, '--json', '--until-caught-up']);
    expect(synced.code, synced.stderr).toBe(0);
    const rows = await shardRows();
    expect(rows.map((r) => r.member_id)).not.toContain('3');
    expect(rows.find((r) => r.member_id === '2')).toMatchObject({ email: 'changed@example.cn', balance: '0.01' });
    expect(rows.find((r) => r.member_id === '41')).toMatchObject({ email: 'new@example.cn', balance: '41.50', Note: 'x' });
    const verify = await runCli(['verify', '--config', env.configPath, '--json']);
    expect(verify.code, verify.stdout).toBe(0);
  }, 120_000);
});
