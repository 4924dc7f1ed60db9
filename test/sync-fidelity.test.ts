import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql, quoteId } from '../src/mysql/connect.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { captureLegacy, kafkaClient, kafkaServices, rewriteConfig, settledMessageCount, topicMessages, waitForMessages, type LegacyCapture } from './services/kafka-env.js';

/**
 * Data fidelity of `membermig sync` through real Debezium, byte for byte: HEX(CAST(col AS BINARY))
 * of every column on both sides in UTC sessions (text in utf8mb4, which the shards hold by design).
 */

const T_DDL = `CREATE TABLE t (
  id BIGINT NOT NULL PRIMARY KEY,
  member_id BIGINT NOT NULL,
  d65 DECIMAL(65,30) NULL,
  d52 DECIMAL(5,2) NULL,
  bu BIGINT UNSIGNED NULL,
  bs BIGINT NULL,
  ti TINYINT NULL,
  mu MEDIUMINT UNSIGNED NULL,
  f FLOAT NULL,
  dbl DOUBLE NULL,
  dt6 DATETIME(6) NULL,
  dt0 DATETIME NULL,
  dt3 DATETIME(3) NULL,
  ts6 TIMESTAMP(6) NULL DEFAULT NULL,
  ts0 TIMESTAMP NULL DEFAULT NULL,
  dd DATE NULL,
  t6 TIME(6) NULL,
  t0 TIME NULL,
  y YEAR NULL,
  guid BINARY(16) NULL,
  gtxt CHAR(36) CHARACTER SET ascii NULL,
  bin4 BINARY(4) NULL,
  vb VARBINARY(20) NULL,
  bl BLOB NULL,
  u8 VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  ch CHAR(5) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  b1 BIT(1) NULL,
  b10 BIT(10) NULL,
  b64 BIT(64) NULL,
  e ENUM('a','b','c') NULL,
  s SET('x','y','z') NULL,
  j JSON NULL
) ENGINE=InnoDB`;

const CS_DDL = `CREATE TABLE cs (
  id BIGINT NOT NULL PRIMARY KEY,
  member_id BIGINT NOT NULL,
  lat VARCHAR(200) CHARACTER SET latin1 NULL,
  lat_txt TEXT CHARACTER SET latin1 NULL,
  gb VARCHAR(40) CHARACTER SET gbk NULL
) ENGINE=InnoDB`;

const PK_DDL = `CREATE TABLE pk (
  id VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL PRIMARY KEY,
  member_id BIGINT NOT NULL,
  v INT NULL
) ENGINE=InnoDB`;

const Z_DDL = `CREATE TABLE z (
  id BIGINT NOT NULL PRIMARY KEY,
  member_id BIGINT NOT NULL,
  dd DATE NULL,
  dt6 DATETIME(6) NULL,
  ts0 TIMESTAMP NULL DEFAULT NULL,
  dd_nn DATE NOT NULL DEFAULT '2000-01-01',
  y YEAR NULL
) ENGINE=InnoDB`;

const EXTREME = `'99999999999999999999999999999999999.999999999999999999999999999999', 999.99, 18446744073709551615, -9223372036854775808, -128, 16777215,
  3.40282e38, 1.7976931348623157e308, '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59', '2024-02-29 12:00:00.123',
  '2038-01-19 03:14:07.999999', '1970-01-01 00:00:01', '9999-12-31', '838:59:59.000000', '-838:59:59', 2155,
  UNHEX('00112233445566778899AABBCCDDEEFF'), '6F9619FF-8B86-D011-B42D-00C04FC964FF', X'01', X'00', X'00FF00FF',
  '😀 emoji \\0 nul ', 'ab', b'1', b'1000000001', b'1111111111111111111111111111111111111111111111111111111111111111',
  'c', 'x,z', '{"a": 1.10, "big": 12345678901234567890, "u": "\\\\u00e9", "n": null}'`;

const LOW = `'-0.000000000000000000000000000001', -999.99, 0, 9223372036854775807, 127, 0,
  -1.17549e-38, 5e-324, '1000-01-01 00:00:00.000000', '1000-01-01 00:00:00', '1000-01-01 00:00:00.001',
  '1970-01-01 00:00:01.000000', '2038-01-19 03:14:07', '1000-01-01', '-00:00:00.000001', '25:00:00', 1901,
  UNHEX('FF000000000000000000000000000000'), '', X'FF000000', X'', X'',
  '', '', b'0', b'0', b'0',
  'a', '', '[]'`;

const MID = `'0.000000000000000000000000000001', 0.01, 9007199254740993, -1, 0, 1,
  0.1, 0.30000000000000004, '2024-03-10 02:30:00.500000', '1970-01-01 00:00:00', '1969-12-31 23:59:59.999',
  '2024-03-10 02:30:00.000001', '2000-02-29 12:00:00', '1969-12-31', '-12:34:56.789012', '00:00:00', 1970,
  UNHEX('00000000000000000000000000000000'), 'a', X'00000000', X'0000', X'000000',
  'x  ', ' ', b'1', b'0000000001', b'1000000000000000000000000000000000000000000000000000000000000000',
  'b', 'x,y,z', '{"k":"v"}'`;

/** Every column of a table as hex of its bytes, per primary key. */
const TEXT_COLUMNS = new Set(['u8', 'ch', 'lat', 'lat_txt', 'gb', 'gtxt', 'e', 's']);
async function hexRows(url: string, table: string, columns: string[]): Promise<Map<string, Record<string, string | null>>> {
  const conn = await connectMysql(url);
  try {
    await conn.query("SET time_zone = '+00:00'");
    const sel = columns.map((c) => (TEXT_COLUMNS.has(c) ? `HEX(CONVERT(${quoteId(c)} USING utf8mb4))` : `HEX(CAST(${quoteId(c)} AS BINARY))`) + ` AS ${quoteId(c)}`).join(', ');
    const [rows] = await conn.query(`SELECT CAST(id AS CHAR) AS pk, ${sel} FROM ${table}`);
    return new Map((rows as Record<string, string | null>[]).map((r) => [r.pk!, r]));
  } finally {
    await conn.end();
  }
}

describe('membermig sync: every type, byte for byte, through real Debezium', () => {
  let env: TestEnv;
  let capture: LegacyCapture;
  let topics: string[];
  let legacy: Awaited<ReturnType<typeof connectMysql>>;
  const columns: Record<string, string[]> = {};

  async function shardHex(table: string): Promise<{ rows: Map<string, Record<string, string | null>>; misplaced: string[] }> {
    const map = shardMapFromConfig(env.config);
    const out = new Map<string, Record<string, string | null>>();
    const misplaced: string[] = [];
    for (const server of map.servers()) {
      for (const shard of map.shardsOn(server.name)) {
        const rows = await hexRows(server.primary, `${quoteId(map.databaseOf(shard))}.${quoteId(table)}`, columns[table]!);
        for (const [k, r] of rows) {
          if (out.has(k)) misplaced.push(`${table} ${k} in more than one shard`);
          out.set(k, r);
        }
      }
    }
    return { rows: out, misplaced };
  }

  /** Every difference between legacy and the shards, one line each (empty when byte-identical). */
  async function diff(table: string): Promise<string[]> {
    const want = await hexRows(env.legacyUrl, table, columns[table]!);
    const { rows: got, misplaced } = await shardHex(table);
    const out = [...misplaced];
    for (const [k, w] of want) {
      const g = got.get(k);
      if (!g) out.push(`${table} ${k}: missing on shards`);
      else for (const c of columns[table]!) if (w[c] !== g[c]) out.push(`${table} ${k}.${c}: legacy ${w[c]} shard ${g[c]}`);
    }
    for (const k of got.keys()) if (!want.has(k)) out.push(`${table} ${k}: extra on shards`);
    return out;
  }

  async function syncUntilCaughtUp() {
    await settledMessageCount(topics, 3000);
    const res = await runCli(['sync', '--config', env.configPath, '--json', '--until-caught-up']);
    expect(res.stdout, res.stderr).not.toBe('');
    return { ...res, result: JSON.parse(res.stdout).result };
  }

  async function deadLetters(): Promise<{ reason: string }[]> {
    const control = await connectMysql(env.config.control.url);
    try {
      const [rows] = await control.query('SELECT reason FROM dead_letters WHERE resolved_at IS NULL');
      return rows as { reason: string }[];
    } finally {
      await control.end();
    }
  }

  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 4 });
    topics = ['t', 'cs', 'z', 'pk'].map((t) => `${env.prefix}.${env.legacyDb}.${t}`);
    rewriteConfig(env, {
      ...env.raw,
      tables: Object.fromEntries(['t', 'cs', 'z', 'pk'].map((t) => [t, { source: `${env.legacyDb}.${t}`, target: t, shard_key: 'member_id' }])),
      cdc: { kafka: { brokers: kafkaServices().brokers, topic: topics, group: `${env.prefix}-sync` } },
    });
    legacy = await connectMysql(env.legacyUrl, { multipleStatements: true });
    await legacy.query("SET time_zone = '+00:00'");
    for (const ddl of [T_DDL, CS_DDL, Z_DDL, PK_DDL]) await legacy.query(ddl);
    await legacy.query("INSERT INTO pk VALUES ('seed', 1, 0)");
    for (const t of ['t', 'cs', 'z', 'pk']) {
      const [cols] = await legacy.query('SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION', [env.legacyDb, t]);
      columns[t] = (cols as { c: string }[]).map((r) => r.c);
    }
    // Rows before the capture starts: copied by full (and read by Debezium's snapshot).
    await legacy.query(`INSERT INTO t VALUES (1, 101, ${EXTREME}), (2, 102, ${LOW}), (3, 103, ${MID})`);
    await legacy.query(`INSERT INTO cs VALUES
      (1, 101, _latin1 X'808182838485868788898A8B8C8D8E8F909192939495969798999A9B9C9D9E9FA0FF', _latin1 X'E9F6FCDF00', _gbk X'D6D0CEC4'),
      (2, 102, _latin1 X'81', _latin1 X'8D8F909D', _gbk X'A1A4A1AA')`);
    await legacy.query("INSERT INTO z VALUES (1, 101, '2020-01-01', '2020-01-01 00:00:00.000001', '2020-01-01 00:00:00', '2020-01-01', 2020)");
    const init = await runCli(['init', '--config', env.configPath, '--json']);
    expect(init.code, init.stderr + init.stdout).toBe(0);
    capture = await captureLegacy(env, ['t', 'cs', 'z', 'pk'], 4);
    await waitForMessages(topics, 7);
    const full = await runCli(['full', '--config', env.configPath, '--json']);
    expect(full.code, full.stderr + full.stdout).toBe(0);
  }, 240_000);

  afterAll(async () => {
    await capture?.stop();
    await legacy?.end();
    await env?.cleanup();
  });

  it('after full: the shards hold every legacy byte', async () => {
    for (const t of ['t', 'cs', 'z', 'pk']) expect.soft(await diff(t), t).toEqual([]);
  });

  it('streamed inserts, updates, deletes, key and shard-key changes end byte-exact, latin1 bytes Java cannot decode included', async () => {
    await legacy.query("SET SESSION sql_mode = 'STRICT_ALL_TABLES'");
    await legacy.query(`INSERT INTO t VALUES (11, 111, ${EXTREME}), (12, 112, ${LOW}), (13, 113, ${MID}),
      (14, 114, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`);
    // MySQL's latin1 maps 0x81, 0x8D, 0x8F, 0x90, 0x9D to U+0081..; Java's windows-1252 sends U+FFFD for them.
    await legacy.query(`INSERT INTO cs VALUES
      (11, 111, _latin1 X'808182838485868788898A8B8C8D8E8F909192939495969798999A9B9C9D9E9FA0FF', _latin1 X'E9F6FCDF00', _gbk X'D6D0CEC4'),
      (12, 112, _latin1 X'81', _latin1 X'8D8F909D', _gbk X'A1A4A1AA'),
      (13, 113, 'plain', '', '')`);
    await legacy.query(`
      UPDATE t SET d65 = -d65, bu = 18446744073709551614, dt6 = '2001-01-01 00:00:00.000001', e = 'a', s = 'y', j = '{}' WHERE id = 11;
      UPDATE t SET member_id = 999 WHERE id = 12;
      UPDATE t SET id = 130 WHERE id = 13;
      UPDATE t SET id = 10, member_id = 110 WHERE id = 1;
      DELETE FROM t WHERE id = 2;
      UPDATE t SET u8 = '' WHERE id = 3;
      UPDATE cs SET member_id = 555 WHERE id = 11;
      UPDATE cs SET gb = 'x' WHERE id = 12;
      DELETE FROM cs WHERE id = 13;`);
    const res = await syncUntilCaughtUp();
    expect(res.code, res.stderr + res.stdout).toBe(0);
    expect(await deadLetters()).toEqual([]);
    for (const t of ['t', 'cs', 'pk']) expect.soft(await diff(t), t).toEqual([]);
  }, 180_000);

  it("YEAR 0000 (sent as 1900) and TIMESTAMP '0000-00-00 00:00:00' (sent as the epoch) apply as they are", async () => {
    await legacy.query("SET SESSION sql_mode = ''");
    await legacy.query("INSERT INTO z VALUES (13, 113, NULL, NULL, '0000-00-00 00:00:00', '2020-01-01', NULL), (15, 115, NULL, NULL, NULL, '2020-01-01', 0)");
    await legacy.query("SET SESSION sql_mode = 'STRICT_ALL_TABLES'");
    const res = await syncUntilCaughtUp();
    expect(res.code, res.stderr + res.stdout).toBe(0);
    expect(await deadLetters()).toEqual([]);
    expect(await diff('z')).toEqual([]);
  }, 180_000);

  it('zero and partial-zero DATE/DATETIME values, which Debezium sends as NULL or the default: verify finds each, --repair makes them exact', async () => {
    await legacy.query("SET SESSION sql_mode = ''");
    await legacy.query(`INSERT INTO z VALUES
      (11, 111, '0000-00-00', NULL, NULL, '2020-01-01', NULL),
      (12, 112, NULL, '0000-00-00 00:00:00.000000', NULL, '2020-01-01', NULL),
      (14, 114, NULL, NULL, NULL, '0000-00-00', NULL),
      (16, 116, '2024-00-10', '2024-02-00 00:00:00.000000', NULL, '2024-00-00', NULL)`);
    await legacy.query("SET SESSION sql_mode = 'STRICT_ALL_TABLES'");
    expect((await syncUntilCaughtUp()).code).toBe(0);
    // The limit of the event format: the image cannot tell these from NULL or the default.
    expect((await diff('z')).map((d) => d.split(':')[0])).toEqual(['z 11.dd', 'z 12.dt6', 'z 14.dd_nn', 'z 16.dd', 'z 16.dt6', 'z 16.dd_nn']);
    const found = await runCli(['verify', '--config', env.configPath, '--json', '--tables', 'z']);
    expect(found.code, found.stderr).toBe(1);
    expect(JSON.parse(found.stdout).result.tables[0].differences).toBe(4);
    const repaired = await runCli(['verify', '--config', env.configPath, '--json', '--tables', 'z', '--repair']);
    expect(JSON.parse(repaired.stdout).result.tables[0].repaired).toBe(4);
    expect(await diff('z')).toEqual([]);
  }, 180_000);

  it('a case-only primary-key change (k1 -> K1 under a _ci key) survives any order of its delete and upsert, and their redelivery', async () => {
    await legacy.query("INSERT INTO pk VALUES ('k1', 11, 1), ('k2', 12, 2), ('k3', 13, 3), ('k4', 14, 4), ('k5', 15, 5), ('k6', 16, 6), ('k7', 17, 7), ('k8', 18, 8)");
    await syncUntilCaughtUp();
    await legacy.query("UPDATE pk SET id = UPPER(id) WHERE id LIKE 'k%'");
    expect((await syncUntilCaughtUp()).code).toBe(0);
    expect(await diff('pk')).toEqual([]);
    // Debezium's delete of kN and create of KN land in different partitions: redeliver the deletes
    // (as after a crash before the commit), so they apply after the creates.
    const topic = topics[3]!;
    const seen = (await topicMessages(topic)).map((m) => ({
      partition: m.partition,
      offset: m.offset,
      key: (m.key as { payload: { id: string } }).payload.id,
      op: m.value ? (m.value as { payload: { op: string } }).payload.op : null,
    }));
    const rewind = new Map<number, string>();
    for (const d of seen.filter((m) => m.op === 'd')) {
      const c = seen.find((m) => m.op === 'c' && m.key === d.key.toUpperCase());
      if (c && c.partition !== d.partition && !rewind.has(d.partition)) rewind.set(d.partition, d.offset);
    }
    expect(rewind.size).toBeGreaterThan(0);
    const admin = kafkaClient().admin();
    await admin.connect();
    await admin.setOffsets({ groupId: `${env.prefix}-sync`, topic, partitions: [...rewind].map(([partition, offset]) => ({ partition, offset })) });
    await admin.disconnect();
    expect((await runCli(['sync', '--config', env.configPath, '--json', '--until-caught-up'])).code).toBe(0);
    expect(await diff('pk')).toEqual([]);
  }, 180_000);

  it('replaying every event from the start (duplicates, older images first) converges, and verify agrees', async () => {
    const admin = kafkaClient().admin();
    await admin.connect();
    try {
      for (const topic of topics) {
        const low = await admin.fetchTopicOffsets(topic);
        await admin.setOffsets({ groupId: `${env.prefix}-sync`, topic, partitions: low.map((p) => ({ partition: p.partition, offset: p.low })) });
      }
    } finally {
      await admin.disconnect();
    }
    const res = await syncUntilCaughtUp();
    expect(res.result.stoppedBy, res.stderr + res.stdout).toBe('caught-up');
    for (const t of ['t', 'cs', 'pk']) expect.soft(await diff(t), t).toEqual([]);
    const verify = await runCli(['verify', '--config', env.configPath, '--json', '--tables', 't,cs,pk']);
    expect(verify.code, verify.stdout).toBe(0);
  }, 180_000);
});
