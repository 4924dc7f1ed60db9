import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { connectMysql } from '../src/mysql/connect.js';
import { rowsQuery } from '../src/mysql/pool.js';
import { canonicalRow, combineChecksums, differingColumns, doubleText, emptyChecksum, hashCanonical, mysqlCanonicalValue, mysqlRowHash, rowHash, type CanonicalHash, type CanonicalKind } from '../src/rows/canonical.js';
import { keyText } from '../src/rows/convert.js';
import { shardKeyPosition, targetDdl } from '../src/rows/ddl.js';
import { doubleExpression, floatExpression } from '../src/rows/mysql.js';
import type { ColumnSpec, Row, TableSpec } from '../src/rows/types.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { createSourceReader, MysqlSourceReader } from '../src/source/index.js';
import { createShardWriter, type ShardWriter } from '../src/target/writer.js';
import { MysqlLegacySide, ShardSide, StreamingLegacySide, keyId, type HashedRow } from '../src/verify/sides.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { createMemberTable } from './support/nasty.js';
import { zeroCrcText } from './support/zero-crc.js';

/**
 * The canonical hash computed three ways must agree on nasty values: by the legacy server (SQL
 * over source columns, gbk/latin1 converted), in Node over the rows the reader converts, and by
 * the shard servers over the copied rows.
 */
const NASTY_DDL = `CREATE TABLE nasty (
  id BIGINT NOT NULL PRIMARY KEY,
  s VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NULL,
  g VARCHAR(20) CHARACTER SET gbk COLLATE gbk_chinese_ci NULL,
  d DECIMAL(20,6) NULL,
  t DATETIME(6) NULL,
  i BIGINT NULL,
  u BIGINT UNSIGNED NULL,
  b VARBINARY(8) NULL,
  c CHAR(5) NULL,
  y YEAR NULL,
  f FLOAT NULL,
  e DOUBLE NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;

const FLOAT_COLUMNS: ColumnSpec[] = [
  { source: 'f', target: 'f', sourceType: { dataType: 'float' }, targetType: 'float', nullable: true },
  { source: 'd', target: 'd', sourceType: { dataType: 'double' }, targetType: 'double', nullable: false },
];

/** No nullable column: the canonical row must still be binary (a text-only CONCAT_WS would refuse 0xFF). */
const STRICT_DDL = `CREATE TABLE strict_text (
  id BIGINT NOT NULL PRIMARY KEY,
  s VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL,
  g VARCHAR(20) CHARACTER SET gbk NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;

const NASTY_ROWS: unknown[][] = [
  [1, null, null, null, null, null, null, null, null, null, null, null],
  [2, '', '', '0.000000', '1000-01-01 00:00:00.000000', '0', '0', Buffer.alloc(0), '', 1901, 0, 0],
  [3, 'a', '北京', '1.500000', '2024-02-29 23:59:59.999999', '9223372036854775807', '18446744073709551615', Buffer.from([0xff, 0xfe]), 'a', 2155, 0.1, 9592.180569541113],
  [4, 'a ', '北京 ', '-1.500000', '2024-02-29 23:59:59.000001', '-9223372036854775808', '1', Buffer.from([0x00]), 'a  ', 2000, -1.5, 1e-20],
  [5, 'A', '上海', '123456789.100000', '9999-12-31 23:59:59.999999', '-1', '9007199254740993', Buffer.from('\\N'), 'A', null, 123456789, 123456789012345680000],
  [6, 'Zoë 😀', '深圳市', '0.000001', '1970-01-01 00:00:00.000000', '9007199254740993', null, Buffer.from([0x0a, 0x09]), 'x y', 2024, 3.4e38, 9007199254740993],
  [7, '\\N', null, '-0.000001', null, null, '2', null, null, null, 1.17549435e-38, -0.30000000000000004],
  [8, 'tab\there\nnl', 'ab', '99999999999999.999999', '2000-01-01 12:00:00.5', null, null, null, 'ÄÖÜ', null, 16777217, 4097885430382135.5],
];

describe('canonical hash: legacy SQL, Node and shard SQL agree', () => {
  let env: TestEnv;
  let reader: MysqlSourceReader;
  let writer: ShardWriter;
  const specs: Record<string, TableSpec> = {};

  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 4 });
    await createMemberTable(env.legacyUrl, 40);
    const conn = await connectMysql(env.legacyUrl);
    await conn.query(NASTY_DDL);
    await conn.query('INSERT INTO nasty VALUES ?', [NASTY_ROWS]);
    await conn.query(STRICT_DDL);
    await conn.query('INSERT INTO strict_text VALUES ?', [[[1, 'a', '北京'], [2, 'A', '上海'], [3, 'a ', ''], [4, '', 'x'], [5, 'Zoë 😀', '深圳市'], [6, 'x', 'y'], [7, 'é', 'é'], [8, '1', '2']]]);
    await conn.end();
    reader = createSourceReader(env.config, silentLogger) as MysqlSourceReader;
    writer = createShardWriter(env.config);
    for (const name of ['member', 'nasty', 'strict_text']) {
      specs[name] = await reader.describeTable(name, { source: `${env.legacyDb}.${name}`, target: name, shard_key: name === 'member' ? 'member_id' : 'id', exclude_columns: [] });
    }
    const map = shardMapFromConfig(env.config);
    for (const server of map.servers()) {
      const conn = await connectMysql(server.primary);
      for (const shard of map.shardsOn(server.name)) {
        await conn.query(`CREATE DATABASE IF NOT EXISTS \`${map.databaseOf(shard)}\``);
        for (const spec of Object.values(specs)) await conn.query(targetDdl(spec, map.databaseOf(shard)));
      }
      await conn.end();
    }
    for (const spec of Object.values(specs)) {
      const at = shardKeyPosition(spec);
      for await (const batch of reader.readRange(spec, null, null, 100)) {
        const byShard = new Map<number, Row[]>();
        for (const row of batch) {
          const shard = map.shardOf(String(row[at]));
          byShard.set(shard, [...(byShard.get(shard) ?? []), row]);
        }
        for (const [shard, rows] of byShard) await writer.upsertRows(shard, spec, rows);
      }
    }
  });
  afterAll(async () => {
    await reader?.close();
    await writer?.close();
    await env?.cleanup();
  });

  const asMap = (rows: HashedRow[]) => new Map(rows.map((r) => [keyId(r.key), r.hash]));

  for (const hash of ['crc32', 'md5'] as CanonicalHash[]) {
    for (const table of ['nasty', 'member', 'strict_text']) {
      it(`${table}, ${hash}: every row hashes the same in the legacy server, in Node and in its shard`, async () => {
        const spec = specs[table]!;
        const map = shardMapFromConfig(env.config);
        const all = { lower: null, upper: null };
        const sql = asMap(await new MysqlLegacySide(reader, spec, hash, map, 60_000).rowHashes(all, {}));
        const node = asMap(await new StreamingLegacySide(reader, spec, hash, map).rowHashes(all, {}));
        const shards = new ShardSide((s) => rowsQuery(writer.poolOf(s), 60_000), spec, hash, map, [0, 1, 2, 3]);
        const target = asMap(await shards.rowHashes(all, {}, [0, 1, 2, 3]));
        expect(sql.size).toBeGreaterThan(7);
        expect(node).toEqual(sql);
        expect(target).toEqual(sql);
        // And the checksums of the whole range agree: legacy pushdown, Node, and the sum over the shards.
        const a = await new MysqlLegacySide(reader, spec, hash, map, 60_000).checksum(all, {});
        const b = await new StreamingLegacySide(reader, spec, hash, map).checksum(all, {});
        const c = (await shards.checksums(all, {})).reduce((s, r) => combineChecksums(hash, s, r), emptyChecksum());
        expect(b).toEqual(a);
        expect(c).toEqual(a);
        // Rows read back by key from the shards compare equal, column by column, to the legacy rows.
        const legacyRows = await new MysqlLegacySide(reader, spec, hash, map, 60_000).rowsByKey([...sql.keys()].map((id) => JSON.parse(id)));
        const copies = new Map([...(await shards.rowsByKey(new Map([0, 1, 2, 3].map((shard) => [shard, [...sql.keys()].map((id) => JSON.parse(id))])))).values()].flatMap((m) => [...m]));
        expect(copies.size).toBe(legacyRows.rows.size);
        for (const [id, row] of legacyRows.rows) expect(differingColumns(spec.columns, row, copies.get(id)!), id).toEqual([]);
      });
    }
  }


  /** The legacy server's canonical bytes (hex) of one text column of a scratch table, by id. */
  async function legacyCanonicalHex(charset: string, nullable: boolean, values: string): Promise<{ id: number; canon: string }[]> {
    const legacy = await connectMysql(env.legacyUrl);
    try {
      await legacy.query(`CREATE TABLE charset_probe (id INT PRIMARY KEY, v VARCHAR(4) CHARACTER SET ${charset} ${nullable ? 'NULL' : 'NOT NULL'})`);
      await legacy.query(`INSERT INTO charset_probe VALUES ${values}`);
      const expr = mysqlCanonicalValue('v', { targetType: 'varchar(4)', nullable }, { dataType: 'varchar', charset });
      const [rows] = await legacy.query(`SELECT id, HEX(${expr}) AS canon FROM charset_probe ORDER BY id`);
      return rows as { id: number; canon: string }[];
    } finally {
      await legacy.query('DROP TABLE IF EXISTS charset_probe');
      await legacy.end();
    }
  }

  it('an ascii column holding byte 0xFE is never the NULL marker', async () => {
    expect(await legacyCanonicalHex('ascii', true, "(1, X'FE'), (2, NULL), (3, 'ok')")).toEqual([
      { id: 1, canon: 'FD4645' },
      { id: 2, canon: 'FE' },
      { id: 3, canon: '6F6B' },
    ]);
  });

  it('a gbk value with no Unicode form is never the same canonical bytes as a shard value of "?"', async () => {
    // X'A140' converts to '?' (3F); its canonical bytes are 0xFD + its hex instead. A mapped character stays UTF-8.
    expect(await legacyCanonicalHex('gbk', false, "(1, X'A140'), (2, '北')")).toEqual([
      { id: 1, canon: 'FD41313430' },
      { id: 2, canon: Buffer.from('北').toString('hex').toUpperCase() },
    ]);
  });

  it('a row whose CRC-32 is 0 keeps its key multiplier: on a wrong shard it still changes the digest', async () => {
    const kinds: CanonicalKind[] = ['literal', 'text'];
    const bytesOf = (text: string) => canonicalRow(kinds, ['7', text]);
    const text = zeroCrcText(bytesOf);
    const row = `CAST(X'${bytesOf(text).toString('hex')}' AS BINARY)`;
    const home = Number(hashCanonical('crc32', Buffer.from('7')) & 15n);
    const conn = await connectMysql(env.urls.shardA);
    try {
      const hashes = `${mysqlRowHash('crc32', row, "'7'", 4)} AS legacy, ${mysqlRowHash('crc32', row, "'7'", 4, home)} AS home, ${mysqlRowHash('crc32', row, "'7'", 4, home ^ 1)} AS wrong`;
      const [[r]] = (await conn.query(`SELECT CRC32(${row}) AS crc, ${hashes}`)) as unknown as [Record<string, unknown>[]];
      expect(String(r!.crc)).toBe('0');
      expect(BigInt(String(r!.legacy))).toBe(rowHash('crc32', kinds, ['7', text], [0], 4));
      expect(String(r!.home)).toBe(String(r!.legacy));
      expect(String(r!.wrong)).not.toBe(String(r!.legacy));
    } finally {
      await conn.end();
    }
  });

  it('FLOAT and DOUBLE: the server prints `column * 1e0` as doubleText does, for values of every magnitude', async () => {
    const values = [0.1, 1e15, 1e16, 1234567890123456.7, 9007199254740993, 1e-14, 1e-15, 1.5e-15, 2 ** 53, 5e-324, 1.7976931348623157e308, 123456789012345680000];
    for (let e = -40; e <= 40; e++) for (let k = 0; k < 8; k++) values.push((k % 2 ? -1 : 1) * (k % 3 === 0 ? 10 ** e : Math.random() * 10 ** e));
    for (let k = 0; k < 1000; k++) values.push((Math.random() - 0.5) * 10 ** (Math.floor(Math.random() * 600) - 300));
    const inFloat = (v: number) => v === 0 || (Math.abs(v) >= 1.2e-38 && Math.abs(v) <= 3.4e38);
    const conn = await connectMysql(env.legacyUrl);
    try {
      await conn.query('CREATE TABLE floats (i INT PRIMARY KEY, f FLOAT NULL, d DOUBLE NOT NULL)');
      await conn.query('INSERT INTO floats VALUES ?', [values.map((v, i) => [i, inFloat(v) ? v : null, v])]);
      // Read back as ShardSide.rowsByKey reads them (text: mysql2's own parse of a DOUBLE is off by an ulp at times).
      const [rows] = await conn.query(`SELECT i, CONCAT(f * 1e0) AS f, CONCAT(d * 1e0) AS d, ${floatExpression('f')} AS fAsRead, ${doubleExpression('d')} AS dAsRead FROM floats ORDER BY i`);
      const wrong = (rows as { i: number; f: string | null; d: string; fAsRead: string | null; dAsRead: string }[]).flatMap((r) => {
        const v = values[r.i]!;
        const out: string[] = [];
        if (r.d !== doubleText(v)) out.push(`double ${v}: server ${r.d}, doubleText ${doubleText(v)}`);
        if (r.f !== null && r.f !== doubleText(Math.fround(v))) out.push(`float ${v}: server ${r.f}, doubleText ${doubleText(Math.fround(v))}`);
        // What the driver reads back compares equal to the value the legacy reader gives.
        if (r.fAsRead !== null && differingColumns(FLOAT_COLUMNS, [r.fAsRead, r.dAsRead], [String(Math.fround(v)), String(v)]).length > 0) out.push(`read back ${v}`);
        if (r.dAsRead !== doubleText(v)) out.push(`double read back ${v}: ${r.dAsRead}`);
        return out;
      });
      expect(wrong).toEqual([]);
    } finally {
      await conn.end();
    }
  });

  it('keeps near-identical values apart in SQL: NULL, empty, trailing space, case, gbk', async () => {
    const spec = specs.nasty!;
    const conn = await connectMysql(env.legacyUrl);
    const s = spec.columns.find((c) => c.source === 's')!;
    const g = spec.columns.find((c) => c.source === 'g')!;
    const [rows] = await conn.query(`SELECT HEX(${mysqlCanonicalValue('s', s, s.sourceType)}) AS s, HEX(${mysqlCanonicalValue('g', g, g.sourceType)}) AS g FROM nasty WHERE id <= 5 ORDER BY id`);
    await conn.end();
    const list = rows as { s: string; g: string }[];
    expect(new Set(list.map((r) => r.s)).size).toBe(5);
    // gbk text is hashed as its UTF-8 bytes: 北京 = E58C97E4BAAC.
    expect(list[2]!.g).toBe('E58C97E4BAAC');
    expect(keyText(spec, ['3', null, null, null, null, null, null, null, null, null, null, null])).toEqual(['3']);
  });
});
