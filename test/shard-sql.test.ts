import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { connectMysql } from '../src/mysql/connect.js';
import { createShardMap, shardOfKey } from '../src/shard/map.js';
import { testUrls } from './support/env.js';

/** The contract says our crc32 and mod routing equal MySQL's CRC32(k) % count and MOD(k, count). */
describe('shard functions agree with the database', () => {
  let conn: Connection;
  beforeAll(async () => {
    conn = await connectMysql(testUrls().shardA);
  });
  afterAll(async () => {
    await conn?.query('DROP DATABASE IF EXISTS mmt_shard_sql');
    await conn?.end();
  });

  const intKeys = ['0', '1', '42', '1001', '2147483647', '4294967296', '9007199254740993', '9223372036854775807', '18446744073709551615'];
  const stringKeys = ['member-1', '张伟', 'ünïcødé', '😀', 'a b', ''];

  it('crc32 of integer keys equals CRC32() of a BIGINT UNSIGNED column', async () => {
    await conn.query('CREATE DATABASE IF NOT EXISTS mmt_shard_sql');
    await conn.query('CREATE TEMPORARY TABLE mmt_shard_sql.k (v BIGINT UNSIGNED NOT NULL)');
    await conn.query('INSERT INTO mmt_shard_sql.k VALUES ?', [intKeys.map((k) => [k])]);
    const [rows] = await conn.query<RowDataPacket[]>('SELECT CAST(v AS CHAR) AS v, CRC32(v) % 1024 AS s, MOD(v, 1024) AS m FROM mmt_shard_sql.k');
    expect(rows).toHaveLength(intKeys.length);
    for (const r of rows) {
      expect(shardOfKey(r.v, 'crc32', 1024), `crc32 ${r.v}`).toBe(Number(r.s));
      expect(shardOfKey(r.v, 'mod', 1024), `mod ${r.v}`).toBe(Number(r.m));
    }
  });

  it('crc32 of string keys equals CRC32() over their UTF-8 text', async () => {
    for (const key of stringKeys) {
      const [rows] = await conn.query<RowDataPacket[]>('SELECT CRC32(CONVERT(? USING utf8mb4)) % 997 AS s', [key]);
      expect(shardOfKey(key, 'crc32', 997), key).toBe(Number(rows[0]!.s));
    }
  });

  it("the shard map's SQL form of mod equals the JS one: negative keys, 64-bit keys, integer text", async () => {
    const map = createShardMap({ count: 1000, function: 'mod', database: 's{shard}', serverOf: Array(1000).fill('a'), servers: { a: { name: 'a', primary: 'mysql://a', replicas: [] } } });
    const signed = ['-1', '-999', '-1000', '-1001', '-9223372036854775808', '0', '7', '9223372036854775807'];
    // Up to the 65 digits of DECIMAL(65,0), leading zeros aside; modShard refuses longer keys (SQL would saturate).
    const text = [...signed, '18446744073709551615', '36893488147419103232', '9'.repeat(65), `-${'9'.repeat(65)}`, `${'0'.repeat(10)}${'8'.repeat(65)}`];
    const [ints] = await conn.query<RowDataPacket[]>(
      `SELECT v, ${map.sqlShardExpression('CAST(v AS SIGNED)', { integerColumn: true })} AS s FROM JSON_TABLE(?, '$[*]' COLUMNS (v VARCHAR(40) PATH '$')) t`,
      [JSON.stringify(signed)],
    );
    for (const r of ints) expect(Number(r.s), `signed ${r.v}`).toBe(shardOfKey(r.v, 'mod', 1000));
    const [texts] = await conn.query<RowDataPacket[]>(
      `SELECT v, ${map.sqlShardExpression('v')} AS s FROM JSON_TABLE(?, '$[*]' COLUMNS (v VARCHAR(80) PATH '$')) t`,
      [JSON.stringify(text)],
    );
    expect(texts).toHaveLength(text.length);
    for (const r of texts) expect(Number(r.s), `text ${r.v}`).toBe(shardOfKey(r.v, 'mod', 1000));
    expect(() => shardOfKey(`1${'0'.repeat(65)}`, 'mod', 1000)).toThrow(/up to 65 digits, got one of 66/);
  });

  it('agrees on many random 64-bit keys', async () => {
    const keys = Array.from({ length: 2000 }, () => (BigInt(Math.floor(Math.random() * 2 ** 31)) * 4294967296n + BigInt(Math.floor(Math.random() * 2 ** 32))).toString());
    const [rows] = await conn.query<RowDataPacket[]>(
      `SELECT CRC32(v) % 1024 AS s FROM JSON_TABLE(?, '$[*]' COLUMNS (i FOR ORDINALITY, v VARCHAR(20) PATH '$')) t ORDER BY i`,
      [JSON.stringify(keys)],
    );
    expect(rows.map((r) => Number(r.s))).toEqual(keys.map((k) => shardOfKey(k, 'crc32', 1024)));
  });
});
