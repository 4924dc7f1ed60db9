import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { createShardWriter, type ShardWriter } from '../src/target/writer.js';
import { runCli } from './support/cli.js';
import { createCopyEnv, writeConfig } from './support/copy-env.js';
import type { TestEnv } from './support/env.js';
import { readShards } from './support/shards.js';

/**
 * The shard functions hash a key's text as UTF-8 and an integer's plain digits. A legacy MySQL
 * table may hold keys in another form: a ZEROFILL column prints 42 as 00000042 and a latin1 column
 * holds other bytes than UTF-8. Copy (both paths) and verify --shards must read them as the map does.
 */
const SHARDS = 8;
const IDS = [3, 42, 77, 1001, 65535, 4000000];
const NAMES = ['bår', 'Ærø', 'café', 'naïve', 'Zoë', 'Über', 'plain', 'ñandú'];
const crcShard = (bytes: Buffer) => crc32(bytes) % SHARDS;

describe('ZEROFILL and latin1 shard keys route as the shard map routes them', () => {
  let env: TestEnv;
  let writer: ShardWriter;
  beforeAll(async () => {
    env = await createCopyEnv({
      shardCount: SHARDS,
      tables: (db) => ({
        account: { source: `${db}.account`, target: 'account', shard_key: 'id' },
        alias: { source: `${db}.alias`, target: 'alias', shard_key: 'name' },
      }),
      extra: { verify: { recheck_after_seconds: 0 } },
    });
    const conn = await connectMysql(env.legacyUrl);
    await conn.query(`CREATE TABLE account (
      id INT(8) UNSIGNED ZEROFILL NOT NULL PRIMARY KEY,
      serial BIGINT UNSIGNED ZEROFILL NOT NULL,
      balance DECIMAL(10,2) ZEROFILL NULL
    )`);
    await conn.query('INSERT INTO account VALUES ?', [IDS.map((id, i) => [id, BigInt(id) * 1_000_000_007n, i % 2 ? null : `${id}.5`])]);
    await conn.query('CREATE TABLE alias (name VARCHAR(20) CHARACTER SET latin1 NOT NULL PRIMARY KEY, n INT NOT NULL)');
    await conn.query('INSERT INTO alias VALUES ?', [NAMES.map((name, i) => [name, i])]);
    await conn.end();
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
    writer = createShardWriter(env.config);
  });
  afterAll(async () => {
    await writer?.close();
    await env?.cleanup();
  });

  it('the keys chosen hash differently in their legacy form (else this test could not fail)', () => {
    expect(IDS.some((id) => crcShard(Buffer.from(String(id).padStart(8, '0'))) !== writer.map.shardOf(String(id)))).toBe(true);
    expect(NAMES.some((name) => crcShard(Buffer.from(name, 'latin1')) !== writer.map.shardOf(name))).toBe(true);
  });

  for (const method of ['load', 'insert'] as const) {
    it(`full (${method}) puts every row in the shard the map names, with plain digits`, async () => {
      env.raw = { ...env.raw, copy: { ...((env.raw.copy as object) ?? {}), method } };
      writeConfig(env);
      const res = await runCli(['full', '--config', env.configPath, '--restart', '--json']);
      expect(res.code, res.stderr).toBe(0);
      expect(JSON.parse(res.stdout).result).toMatchObject({ method, rowsThisRun: IDS.length + NAMES.length });
      // readShards fails on any row outside its shard.
      const accounts = await readShards(writer, 'account');
      expect([...accounts.values()].map((r) => r.map((v) => (v === null ? null : String(v))))).toEqual(
        expect.arrayContaining(IDS.map((id, i) => [String(id), String(BigInt(id) * 1_000_000_007n), i % 2 ? null : `${id}.50`])),
      );
      expect(accounts.size).toBe(IDS.length);
      const aliases = await readShards(writer, 'alias');
      expect([...aliases.keys()].sort()).toEqual([...NAMES].sort());
      const verify = await runCli(['verify', '--config', env.configPath, '--json']);
      expect(verify.code, verify.stdout).toBe(0);
    });
  }

  it('verify --shards selects the legacy rows of those shards by the keys the map hashes', async () => {
    const id = String(IDS.find((i) => crcShard(Buffer.from(String(i).padStart(8, '0'))) !== writer.map.shardOf(String(i)))!);
    const name = NAMES.find((n) => crcShard(Buffer.from(n, 'latin1')) !== writer.map.shardOf(n))!;
    for (const [table, column, key] of [['account', 'id', id], ['alias', 'name', name]] as const) {
      const shard = writer.map.shardOf(key);
      await writer.poolOf(writer.map.serverOf(shard).name).query(`DELETE FROM \`${writer.map.databaseOf(shard)}\`.${table} WHERE ${column} = ?`, [key]);
      const res = await runCli(['verify', '--config', env.configPath, '--json', '--tables', table, '--shards', String(shard)]);
      expect(res.code, res.stdout).toBe(1);
      expect(JSON.parse(res.stdout).result.differences.map((d: { key: string[]; kind: string }) => [d.key[0], d.kind])).toEqual([[key, 'missing']]);
    }
  });
});

describe('a NULL shard key', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createCopyEnv({ shardCount: 4, tables: (db) => ({ visit: { source: `${db}.visit`, target: 'visit', shard_key: 'member_id' } }) });
    const conn = await connectMysql(env.legacyUrl);
    // A legacy column left nullable that should not be: most rows have a key, one does not.
    await conn.query('CREATE TABLE visit (id INT NOT NULL PRIMARY KEY, member_id BIGINT NULL)');
    await conn.query('INSERT INTO visit VALUES (1, 10), (2, NULL), (3, 30)');
    await conn.end();
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
  });
  afterAll(async () => env?.cleanup());

  for (const method of ['load', 'insert'] as const) {
    it(`stops full (${method}) with the table and column named, copying the row nowhere`, async () => {
      env.raw = { ...env.raw, copy: { method } };
      writeConfig(env);
      const res = await runCli(['full', '--config', env.configPath, '--restart']);
      expect(res.code).toBe(1);
      // A value the target cannot hold, by rows.on_unrepresentable (fail here): not "run full again", which cannot help.
      expect(res.stdout + res.stderr).toContain('table visit, key (2), column member_id: the shard key is NULL: no shard to copy the row to (value NULL); rows.on_unrepresentable is fail');
      const writer = createShardWriter(env.config);
      try {
        for (let shard = 0; shard < writer.map.count; shard++) {
          const [rows] = await writer.poolOf(writer.map.serverOf(shard).name).query(`SELECT id FROM \`${writer.map.databaseOf(shard)}\`.visit WHERE member_id IS NULL`);
          expect(rows, `shard ${shard}`).toEqual([]);
        }
      } finally {
        await writer.close();
      }
    });
  }

  it('with rows.on_unrepresentable: record, full copies the other rows and records the one (exit 1, rejected)', async () => {
    env.raw = { ...env.raw, copy: { method: 'load' }, rows: { on_unrepresentable: 'record' } };
    writeConfig(env);
    const res = await runCli(['full', '--config', env.configPath, '--restart', '--json']);
    expect(res.code, res.stderr).toBe(1);
    const result = JSON.parse(res.stdout).result;
    expect(result.state).toBe('done');
    expect(result.rowsThisRun).toBe(2);
    const control = await connectMysql(env.config.control.url);
    const [rejected] = await control.query('SELECT pk, column_name, value, reason FROM rejected_values WHERE table_name = ?', ['visit']);
    await control.end();
    expect(rejected).toEqual([{ pk: '["2"]', column_name: 'member_id', value: 'NULL', reason: 'the shard key is NULL: no shard to copy the row to' }]);
  });
});
