import type { Connection, RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql, quoteId } from '../src/mysql/connect.js';
import { shardMapFromConfig, type ShardMap } from '../src/shard/map.js';
import { execCli, runCli, spawnCli } from './support/cli.js';
import { createCopyEnv } from './support/copy-env.js';
import { onShard, verifyTable } from './support/verify-runs.js';
import type { TestEnv } from './support/env.js';

/**
 * verify finds single-value damage on the shards and --repair makes the shards
 * byte-identical to legacy (HEX of every column), then a second verify is clean.
 */

const TYPES_DDL = `CREATE TABLE tv (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  d DECIMAL(30,10) NULL,
  i BIGINT NULL,
  u BIGINT UNSIGNED NULL,
  dt DATETIME(6) NULL,
  tm TIME(6) NULL,
  ts TIMESTAMP(6) NULL DEFAULT NULL,
  y YEAR NULL,
  b BIT(10) NULL,
  e ENUM('a','B','c ') NULL,
  st SET('x','Y') NULL,
  bn BINARY(4) NULL,
  vb VARBINARY(10) NULL,
  bl BLOB NULL,
  l1 VARCHAR(20) CHARACTER SET latin1 NULL,
  g VARCHAR(20) CHARACTER SET gbk NULL,
  em VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NULL,
  c CHAR(5) NULL,
  vs VARCHAR(10) NULL,
  f FLOAT NULL,
  db DOUBLE NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;

const TYPES_ROWS = [
  "(18446744073709551615, '12345678901234567890.1234567891', -9223372036854775808, 18446744073709551615, '2024-02-29 23:59:59.999999', '-838:59:59.000000', '2038-01-19 03:14:07.999999', 2155, b'1111111111', 'c ', 'x,Y', X'00FF0000', X'00', X'00FFFE0A0D', X'E9FF80', X'D6D0CEC4', 'Zoë 😀', 'ab', 'sp  ', 0.1, 1e-300)",
  "(9007199254740993, '-0.0000000001', 9223372036854775807, 0, '1000-01-01 00:00:00.000001', '838:59:59.999999', '1970-01-01 00:00:01.000001', 1901, b'0', 'B', '', X'20202020', X'', X'', '', '', '', '', '', -0.0, 123456789012345680000)",
  "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
  "(4, '0.0000000000', 1, 1, '2000-06-15 12:30:00.500000', '00:00:00.000001', '2000-06-15 12:30:00.500000', 2000, b'1', 'a', 'Y', X'41000000', X'4142', X'41', X'80', X'8140', 'a', 'a', 'a ', 3.4e38, 9007199254740993)",
];
for (let i = 5; i <= 60; i++) {
  TYPES_ROWS.push(
    `(${i * 1000003}, '${i}.${String(i).padStart(10, '0')}', ${-i}, ${i}, '2020-01-01 00:00:00.${String(i).padStart(6, '0')}', '01:02:03.${String(i).padStart(6, '0')}', '2021-01-01 00:00:00.${String(i).padStart(6, '0')}', ${1901 + i}, b'${(i % 1024).toString(2)}', 'a', 'x', X'${i.toString(16).padStart(8, '0')}', X'${i.toString(16).padStart(2, '0')}FF', X'${i.toString(16).padStart(2, '0')}80', X'C4E4', X'B1B1BEA9', 'n${i} ', 'c${i}', 'v${i} ', ${i}.25, ${i}.125)`,
  );
}

const KEY_DDL = `CREATE TABLE ck (
  k VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL PRIMARY KEY,
  v VARCHAR(10) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;

const COMPOSITE_DDL = `CREATE TABLE cp (
  a INT NOT NULL,
  b VARCHAR(10) CHARACTER SET latin1 COLLATE latin1_swedish_ci NOT NULL,
  v BLOB NULL,
  PRIMARY KEY (a, b)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;

type Spec = { legacy: string; key: string[]; shardKey: string };
const TABLES: Record<string, Spec> = {
  tv: { legacy: 'tv', key: ['id'], shardKey: 'id' },
  ck: { legacy: 'ck', key: ['k'], shardKey: 'k' },
  cp: { legacy: 'cp', key: ['a', 'b'], shardKey: 'a' },
  big: { legacy: 'big', key: ['id'], shardKey: 'id' },
  emp: { legacy: 'emp', key: ['id'], shardKey: 'id' },
};

async function columnsOf(conn: Connection, db: string, table: string): Promise<{ name: string; type: string; charset: string | null }[]> {
  const [rows] = await conn.query<RowDataPacket[]>(
    'SELECT COLUMN_NAME AS name, DATA_TYPE AS type, CHARACTER_SET_NAME AS charset FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
    [db, table],
  );
  return rows as { name: string; type: string; charset: string | null }[];
}

/** Every column as HEX of its bytes (text converted to utf8mb4, temporal/numeric as their text). */
function hexSelect(cols: { name: string; type: string; charset: string | null }[]): string {
  return cols
    .map((c) => {
      const q = quoteId(c.name);
      if (c.charset) return `IF(${q} IS NULL, 'NULL', HEX(CONVERT(${q} USING utf8mb4)))`;
      if (/binary|blob/.test(c.type)) return `IF(${q} IS NULL, 'NULL', HEX(${q}))`;
      if (c.type === 'bit') return `IF(${q} IS NULL, 'NULL', CAST(${q} + 0 AS CHAR))`;
      if (c.type === 'float' || c.type === 'double') return `IF(${q} IS NULL, 'NULL', CONCAT(${q} * 1e0))`;
      return `IF(${q} IS NULL, 'NULL', HEX(CAST(${q} AS CHAR)))`;
    })
    .join(', ');
}

/** Legacy rows vs all shards' rows, byte for byte; each row must be on its home shard, once. */
async function byteDiff(env: TestEnv, table: string): Promise<string[]> {
  const spec = TABLES[table]!;
  const map: ShardMap = shardMapFromConfig(env.config);
  const legacy = await connectMysql(env.legacyUrl);
  await legacy.query("SET time_zone = '+00:00'");
  const cols = await columnsOf(legacy, env.legacyDb, spec.legacy);
  const keyAt = spec.key.map((k) => cols.findIndex((c) => c.name === k));
  const [lrows] = await legacy.query({ sql: `SELECT ${hexSelect(cols)} FROM ${quoteId(spec.legacy)}`, rowsAsArray: true });
  await legacy.end();
  const want = new Map<string, string[]>();
  for (const r of lrows as string[][]) want.set(JSON.stringify(keyAt.map((i) => r[i])), r);
  const out: string[] = [];
  const seen = new Set<string>();
  for (let shard = 0; shard < map.count; shard++) {
    const conn = await connectMysql(map.serverOf(shard).primary);
    await conn.query("SET time_zone = '+00:00'");
    const scols = await columnsOf(conn, map.databaseOf(shard), table);
    const [srows] = await conn.query({ sql: `SELECT ${hexSelect(scols)}, ${quoteId(spec.shardKey)} FROM ${quoteId(map.databaseOf(shard))}.${quoteId(table)}`, rowsAsArray: true });
    await conn.end();
    for (const r of srows as string[][]) {
      const sk = String(r.pop());
      const key = JSON.stringify(keyAt.map((i) => r[i]));
      if (map.shardOf(sk) !== shard) out.push(`${key} on shard ${shard}, home ${map.shardOf(sk)}`);
      if (seen.has(key)) out.push(`${key} twice`);
      seen.add(key);
      const l = want.get(key);
      if (!l) out.push(`extra ${key} on shard ${shard}`);
      else
        for (let i = 0; i < r.length; i++) if (r[i] !== l[i]) out.push(`${key} ${cols[i]!.name}: legacy ${l[i]} shard ${r[i]}`);
    }
  }
  for (const k of want.keys()) if (!seen.has(k)) out.push(`missing ${k}`);
  return out;
}

const verify = verifyTable;

const summary = (r: any) => (r?.differences ?? []).map((d: any) => `${d.kind} ${JSON.stringify(d.key)} @${d.shard}${d.columns ? ' ' + d.columns.join(',') : ''}`).sort();

describe('verify --repair writes exactly the legacy bytes', () => {
  let env: TestEnv;
  let map: ShardMap;

  beforeAll(async () => {
    env = await createCopyEnv({
      shardCount: 4,
      tables: (db) => ({
        tv: { source: `${db}.tv`, target: 'tv', shard_key: 'id' },
        ck: { source: `${db}.ck`, target: 'ck', shard_key: 'k' },
        cp: { source: `${db}.cp`, target: 'cp', shard_key: 'a' },
        big: { source: `${db}.big`, target: 'big', shard_key: 'id' },
        emp: { source: `${db}.emp`, target: 'emp', shard_key: 'id' },
      }),
      extra: { verify: { chunk_rows: 20, workers: 2, recheck_after_seconds: 0 }, copy: { lease_seconds: 2 } },
    });
    map = shardMapFromConfig(env.config);
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query("SET time_zone = '+00:00'");
    await legacy.query(TYPES_DDL);
    await legacy.query(`INSERT INTO tv VALUES ${TYPES_ROWS.join(', ')}`);
    await legacy.query(KEY_DDL);
    const ck = Array.from({ length: 40 }, (_, i) => `('Key${i}é', 'v${i}')`);
    await legacy.query(`INSERT INTO ck VALUES ${ck.join(', ')}, ('abc', 'x'), ('Straße', 's'), ('tail ', 't')`);
    await legacy.query(COMPOSITE_DDL);
    const cp = Array.from({ length: 40 }, (_, i) => `(${i % 7}, 'b${i}${i % 3 ? 'Å' : 'å'}', X'${(i * 37).toString(16).padStart(4, '0')}00')`);
    await legacy.query(`INSERT INTO cp VALUES ${cp.join(', ')}`);
    await legacy.query('CREATE TABLE big (id BIGINT NOT NULL PRIMARY KEY, v VARCHAR(20) NULL, w DECIMAL(12,2) NULL)');
    await legacy.query(`INSERT INTO big VALUES ${Array.from({ length: 1500 }, (_, i) => `(${i * 3 + 100}, 'v${i}', ${i}.${i % 100})`).join(', ')}`);
    await legacy.query('ANALYZE TABLE big');
    await legacy.query('CREATE TABLE emp (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NULL)');
    await legacy.end();
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
    const full = await runCli(['full', '--config', env.configPath]);
    expect(full.code, full.stderr).toBe(0);
  }, 180_000);
  afterAll(async () => env?.cleanup());

  it('the copy is byte-identical and verifies clean', async () => {
    for (const t of Object.keys(TABLES)) expect(await byteDiff(env, t), t).toEqual([]);
    for (const t of Object.keys(TABLES)) expect((await verify(env, t)).result?.state, t).toBe('clean');
  });

  const DAMAGE: [string, string, (string | number)[]][] = [
    ['blob byte', "UPDATE tv SET bl = X'00FFFE0A0C' WHERE id = ?", ['18446744073709551615']],
    ['microsecond', "UPDATE tv SET dt = '2024-02-29 23:59:59.999998' WHERE id = ?", ['18446744073709551615']],
    ['time microsecond', "UPDATE tv SET tm = '-838:59:58.999999' WHERE id = ?", ['9007199254740993']],
    ['timestamp microsecond', "UPDATE tv SET ts = '2000-06-15 12:30:00.500001' WHERE id = ?", ['4']],
    ['trailing space varchar', "UPDATE tv SET vs = 'a' WHERE id = ?", ['4']],
    ['trailing space enum-ish', "UPDATE tv SET vs = 'v5  ' WHERE id = ?", [String(5 * 1000003)]],
    ['NULL to empty', "UPDATE tv SET em = '' WHERE id = ?", ['3']],
    ['empty to NULL', 'UPDATE tv SET em = NULL WHERE id = ?', ['9007199254740993']],
    ['decimal last digit', "UPDATE tv SET d = '12345678901234567890.1234567892' WHERE id = ?", ['18446744073709551615']],
    ['bit flip', "UPDATE tv SET b = b'1111111110' WHERE id = ?", ['18446744073709551615']],
    ['unsigned max', 'UPDATE tv SET u = 18446744073709551614 WHERE id = ?', ['18446744073709551615']],
    ['bigint min', 'UPDATE tv SET i = -9223372036854775807 WHERE id = ?', ['18446744073709551615']],
    ['binary trailing byte', "UPDATE tv SET bn = X'41000020' WHERE id = ?", ['4']],
    ['float minus zero', 'UPDATE tv SET f = 0, db = 0 WHERE id = ?', ['9007199254740993']],
    ['binary spaces', "UPDATE tv SET bn = X'20202000' WHERE id = ?", ['9007199254740993']],
    ['varbinary empty vs zero', "UPDATE tv SET vb = X'' WHERE id = ?", ['18446744073709551615']],
    ['year', 'UPDATE tv SET y = 2154 WHERE id = ?', ['18446744073709551615']],
    ['enum', "UPDATE tv SET e = 'a' WHERE id = ?", ['18446744073709551615']],
    ['set', "UPDATE tv SET st = 'x' WHERE id = ?", ['18446744073709551615']],
    ['latin1 high byte', "UPDATE tv SET l1 = 'éÿ' WHERE id = ?", ['18446744073709551615']],
    ['gbk', "UPDATE tv SET g = '中' WHERE id = ?", ['18446744073709551615']],
    ['emoji', "UPDATE tv SET em = 'Zoë 😁' WHERE id = ?", ['18446744073709551615']],
    ['case under _ci', "UPDATE tv SET em = 'zoë 😀' WHERE id = ?", ['18446744073709551615']],
    ['float', 'UPDATE tv SET f = 0.1000001 WHERE id = ?', ['18446744073709551615']],
    ['double', 'UPDATE tv SET db = 9007199254740994 WHERE id = ?', ['4']],
  ];

  for (const [name, sql, params] of DAMAGE) {
    it(`tv: ${name} is found and repaired byte for byte`, async () => {
      const id = String(params[0]);
      await onShard(env, map.shardOf(id), sql, params);
      expect((await byteDiff(env, 'tv')).length, 'damage applied').toBeGreaterThan(0);
      const found = await verify(env, 'tv');
      expect(found.result?.state, found.stderr).toBe('differences');
      expect(summary(found.result)).toHaveLength(1);
      const rep = await verify(env, 'tv', true);
      expect(rep.result?.state, rep.stderr + JSON.stringify(summary(rep.result))).toBe('clean');
      expect(await byteDiff(env, 'tv')).toEqual([]);
      expect((await verify(env, 'tv')).result?.state).toBe('clean');
    });
  }

  it('tv: deleted, extra and wrong-shard rows are found and repaired', async () => {
    const del = String(7 * 1000003);
    const moved = String(8 * 1000003);
    const dup = String(9 * 1000003);
    await onShard(env, map.shardOf(del), 'DELETE FROM tv WHERE id = ?', [del]);
    const home = map.shardOf(moved);
    const [row] = await onShard(env, home, 'SELECT * FROM tv WHERE id = ?', [moved]);
    await onShard(env, home, 'DELETE FROM tv WHERE id = ?', [moved]);
    await onShard(env, (home + 1) % 4, 'INSERT INTO tv SET ?', [row]);
    const [drow] = await onShard(env, map.shardOf(dup), 'SELECT * FROM tv WHERE id = ?', [dup]);
    await onShard(env, (map.shardOf(dup) + 2) % 4, 'INSERT INTO tv SET ?', [drow]);
    await onShard(env, map.shardOf('77'), 'INSERT INTO tv SET ?', [{ ...drow, id: '77' }]);
    const found = await verify(env, 'tv');
    expect(summary(found.result)).toHaveLength(4);
    const rep = await verify(env, 'tv', true);
    expect(rep.result?.state, rep.stderr).toBe('clean');
    expect(await byteDiff(env, 'tv')).toEqual([]);
    expect((await verify(env, 'tv')).result?.state).toBe('clean');
  });

  it('ck: a _ci text key whose case changed on the shard is repaired to the legacy case', async () => {
    await onShard(env, map.shardOf('abc'), "UPDATE ck SET k = 'ABC' WHERE k = 'abc'");
    const found = await verify(env, 'ck');
    expect(found.result?.state, found.stderr).toBe('differences');
    const rep = await verify(env, 'ck', true);
    expect(rep.result?.state, rep.stderr + JSON.stringify(summary(rep.result))).toBe('clean');
    expect(await byteDiff(env, 'ck')).toEqual([]);
  });

  it('ck: ß vs ss and a trailing space in a _ci key', async () => {
    await onShard(env, map.shardOf('tail '), "UPDATE ck SET k = 'tail' WHERE k = 'tail '");
    const found = await verify(env, 'ck');
    expect(found.result?.state, found.stderr).toBe('differences');
    const rep = await verify(env, 'ck', true);
    expect(rep.result?.state, rep.stderr + JSON.stringify(summary(rep.result))).toBe('clean');
    expect(await byteDiff(env, 'ck')).toEqual([]);
  });

  it('cp: a latin1_swedish_ci key part whose case changed, a blob trailing byte dropped', async () => {
    const [r] = await onShard(env, map.shardOf('1'), "SELECT b FROM cp WHERE a = 1 AND b LIKE 'b%Å' LIMIT 1");
    const b = String(r!.b);
    await onShard(env, map.shardOf('1'), 'UPDATE cp SET b = ? WHERE a = 1 AND b = ?', [b.replace('Å', 'å'), b]);
    await onShard(env, map.shardOf('2'), 'UPDATE cp SET v = LEFT(v, LENGTH(v) - 1) WHERE a = 2');
    const found = await verify(env, 'cp');
    expect(found.result?.state, found.stderr).toBe('differences');
    const rep = await verify(env, 'cp', true);
    expect(rep.result?.state, rep.stderr + JSON.stringify(summary(rep.result))).toBe('clean');
    expect(await byteDiff(env, 'cp')).toEqual([]);
  });

  it('big: a whole shard emptied, 600 extras beyond both ends of the key range, 700 changed values: all repaired', async () => {
    await onShard(env, 0, 'DELETE FROM big');
    for (let i = 0; i < 600; i++) {
      const id = i % 2 ? 100000 + i : -100000 - i;
      await onShard(env, map.shardOf(String(id)), 'INSERT INTO big VALUES (?, ?, ?)', [id, 'x', '1.00']);
    }
    for (let s = 1; s < 4; s++) await onShard(env, s, "UPDATE big SET v = CONCAT(v, ' ') WHERE id % 2 = 0");
    const found = await verify(env, 'big');
    expect(found.result?.state, found.stderr).toBe('differences');
    const rep = await verify(env, 'big', true);
    expect(rep.result?.state, rep.stderr + JSON.stringify(rep.result?.tables)).toBe('clean');
    expect(await byteDiff(env, 'big')).toEqual([]);
    expect((await verify(env, 'big')).result?.state).toBe('clean');
  }, 120_000);

  it('emp: legacy is empty, rows on the shards are extra and repair deletes them', async () => {
    for (const id of [1, 2, 3, -5, 2147483647]) await onShard(env, map.shardOf(String(id)), 'INSERT INTO emp VALUES (?, ?)', [id, 'x']);
    const found = await verify(env, 'emp');
    expect(found.result?.state, found.stderr).toBe('differences');
    const rep = await verify(env, 'emp', true);
    expect(rep.result?.state, rep.stderr).toBe('clean');
    expect(await byteDiff(env, 'emp')).toEqual([]);
  });

  it('big: verify --repair killed with -9 in the middle, then rerun: byte-identical and clean', async () => {
    await onShard(env, 1, 'DELETE FROM big');
    await onShard(env, 2, "UPDATE big SET v = UPPER(v), w = w + 0.01");
    for (let i = 0; i < 300; i++) await onShard(env, 3, 'INSERT INTO big VALUES (?, ?, ?)', [i * 3 + 101, 'stray', '0.00']);
    for (const delay of [300, 900, 1800]) {
      const child = spawnCli(['verify', '--config', env.configPath, '--tables', 'big', '--repair', '--recheck-after', '0', '--workers', '1', '--log-level', 'info']);
      let stderr = '';
      let exited = false;
      const closed = new Promise((r) => child.on('close', () => r((exited = true))));
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const deadline = Date.now() + 30_000;
      while (!stderr.includes('persistent differences') && Date.now() < deadline && !exited) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, delay));
      child.kill('SIGKILL');
      await closed;
    }
    const rerun = await execCli(['verify', '--config', env.configPath, '--json', '--tables', 'big', '--repair', '--recheck-after', '0', '--log-level', 'info']);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(await byteDiff(env, 'big')).toEqual([]);
    const again = await verify(env, 'big');
    expect(again.result?.state).toBe('clean');
  }, 180_000);
});
