import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { connectMysql } from '../src/mysql/connect.js';
import { mysqlTypeMap } from '../src/rows/mysql.js';
import { Unrepresentable, type Row, type TableSpec } from '../src/rows/types.js';
import { createSourceReader, type SourceReader } from '../src/source/index.js';
import { createShardWriter, type ShardWriter } from '../src/target/writer.js';
import { runCli } from './support/cli.js';
import { createCopyEnv, writeConfig } from './support/copy-env.js';
import type { TestEnv } from './support/env.js';

/** Every MySQL type the type map supports, at its edges, through both copy paths: the shards hold what the source holds. */
const DDL = `CREATE TABLE typed (
  id INT NOT NULL PRIMARY KEY,
  ti TINYINT NULL, si SMALLINT UNSIGNED NULL, mi MEDIUMINT NULL, bi BIGINT UNSIGNED NULL,
  f FLOAT NULL, d DOUBLE NULL, dec65 DECIMAL(65,30) NULL, b BIT(10) NULL,
  dt DATETIME NULL, ts TIMESTAMP(3) NULL, tm TIME(6) NULL, y YEAR NULL, da DATE NULL,
  e ENUM('a','b','ç') NULL, st SET('x','y','z') NULL, j JSON NULL,
  c CHAR(5) CHARACTER SET latin1 NULL, bl BLOB NULL, tt TINYTEXT CHARACTER SET gbk NULL, vb VARBINARY(4) NULL,
  ec ENUM('Alpha','beta') COLLATE utf8mb4_general_ci NULL, sc SET('Red','Blue') COLLATE utf8mb4_general_ci NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

const ROWS: unknown[][] = [
  [1, -128, 65535, -8388608, '18446744073709551615', 3.4028234e38, 1.7976931348623157e308, '-99999999999999999999999999999999999.999999999999999999999999999999', Buffer.from([0x03, 0xff]),
    '9999-12-31 23:59:59', '2038-01-19 03:14:07.999', '-838:59:59.000000', 2155, '9999-12-31', 'ç', 'x,z', '{"a": [1, 2.5, "ü\\t"]}', 'ab', ALL_BYTES, '汉字\\\\', Buffer.from([0, 9, 10, 92]), 'Alpha', 'Red,Blue'],
  [2, 0, 0, 0, '0', 0.1, 5e-324, '0.000000000000000000000000000001', Buffer.from([0, 0]), '0000-00-00 00:00:00', '1970-01-01 00:00:01.000', '00:00:00.000001', 1901, '0000-00-00', 'b', '', '[]', '', Buffer.alloc(0), '', Buffer.alloc(0), 'beta', ''],
  [3, ...new Array(22).fill(null)],
  [4, 127, 1, 8388607, '9007199254740993', -1.5, -2.2250738585072014e-308, '12345678901234567890123456789012345.123456789012345678901234567890', Buffer.from([0x02, 0x00]),
    '2024-02-29 12:00:00', '2024-03-31 01:59:59.123', '838:59:59.999999', 2000, '2024-02-29', 'a', 'x,y,z', '{"k": 12345678901234567890.5}', 'é\\t\\n', Buffer.from('\\N'), '\\t', Buffer.from('ab'), 'beta', 'Blue'],
  // A full gbk TINYTEXT: 254 bytes there, 381 in utf8mb4 (more than a TINYTEXT holds).
  [5, ...new Array(18).fill(null), '汉'.repeat(127), null, null, null],
];

describe('every supported MySQL type survives both copy paths exactly', () => {
  let env: TestEnv;
  let reader: SourceReader;
  let writer: ShardWriter;
  let spec: TableSpec;

  const sourceRows = async () => {
    const conn = await connectMysql(env.legacyUrl);
    await conn.query("SET time_zone = '+00:00'");
    // f * 1e0: the FLOAT as the DOUBLE it exactly is, so the comparison sees every bit, not 6 digits.
    const [rows] = await conn.query({ sql: 'SELECT *, f * 1e0 FROM typed ORDER BY id', rowsAsArray: true });
    await conn.end();
    return rows as unknown[][];
  };
  const shardRows = async () => {
    const all: unknown[][] = [];
    for (let shard = 0; shard < writer.map.count; shard++) {
      const conn = await connectMysql(writer.map.serverOf(shard).primary);
      await conn.query("SET time_zone = '+00:00'");
      const [rows] = await conn.query({ sql: `SELECT *, f * 1e0 FROM \`${writer.map.databaseOf(shard)}\`.typed`, rowsAsArray: true });
      await conn.end();
      all.push(...(rows as unknown[][]));
    }
    return all.sort((a, b) => Number(a[0]) - Number(b[0]));
  };
  const truncate = async () => {
    for (let shard = 0; shard < writer.map.count; shard++) {
      await writer.poolOf(writer.map.serverOf(shard).name).query(`TRUNCATE TABLE \`${writer.map.databaseOf(shard)}\`.typed`);
    }
  };

  beforeAll(async () => {
    env = await createCopyEnv({ shardCount: 4, shardFunction: 'mod', tables: (db) => ({ typed: { source: `${db}.typed`, target: 'typed', shard_key: 'id' } }) });
    const conn = await connectMysql(env.legacyUrl);
    await conn.query(DDL);
    await conn.query("SET sql_mode = 'NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'");
    await conn.query('INSERT INTO typed VALUES ?', [ROWS]);
    await conn.end();
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
    reader = createSourceReader(env.config, silentLogger);
    writer = createShardWriter(env.config);
    spec = await reader.describeTable('typed', env.config.tables.typed!);
  });
  afterAll(async () => {
    await reader?.close();
    await writer?.close();
    await env?.cleanup();
  });

  it('shards.function mod refuses a text shard key (exit 2, table and column named): SQL would read its text as a number', async () => {
    const saved = env.raw;
    env.raw = { ...saved, tables: { typed: { source: `${env.legacyDb}.typed`, target: 'typed', shard_key: 'c' } } };
    const path = writeConfig(env, env.configPath.replace(/\.yaml$/, '-text-key.yaml'));
    env.raw = saved;
    for (const command of [['full', '--dry-run'], ['verify'], ['init', '--check']]) {
      const res = await runCli([...command, '--config', path]);
      expect([command.join(' '), res.code, res.stderr]).toEqual([
        command.join(' '),
        2,
        expect.stringContaining('table typed: shards.function mod takes integer shard keys, and shard key column c is char(5): use crc32 or murmur3'),
      ]);
    }
  });

  it('the source holds the edge values as written', async () => {
    const rows = await sourceRows();
    expect(rows).toHaveLength(ROWS.length);
    expect(rows[0]![4]).toBe('18446744073709551615');
    expect(rows[0]![18]).toEqual(ALL_BYTES);
  });

  it("ENUM's error value (index 0) is flagged, not written: only a non-strict insert could write it", () => {
    // The SELECT gives '0' for the error value and '1' + the text otherwise, since both it and a real '' member print as ''.
    const e = mysqlTypeMap.conversion({ dataType: 'enum', columnType: "enum('','a')" }, 'e');
    expect(e.selectExpression('`e`')).toBe("CASE WHEN `e` IS NULL THEN NULL WHEN `e` + 0 = 0 THEN '0' ELSE CONCAT('1', `e`) END");
    expect(e.convert('0')).toBeInstanceOf(Unrepresentable);
    expect(e.convert('1')).toBe('');
    expect(e.convert('1a')).toBe('a');
    expect(e.convert(null)).toBe(null);
  });

  it('LOAD DATA lines built by the source', async () => {
    await truncate();
    const chunk = await reader.readTsv!(spec, null, null, writer.map);
    for (const [shard, blocks] of chunk!.byShard) await writer.loadBlocks(shard, spec, blocks, chunk!.rowsByShard.get(shard)!);
    expect(await shardRows()).toEqual(await sourceRows());
  });

  it('converted rows and upserts', async () => {
    await truncate();
    for await (const batch of reader.readRange(spec, null, null, 2)) {
      for (const row of batch) await writer.upsertRows(writer.map.shardOf(row[0] as string), spec, [row as Row]);
    }
    expect(await shardRows()).toEqual(await sourceRows());
  });
});
