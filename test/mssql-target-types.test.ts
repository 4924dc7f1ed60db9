import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql, quoteId } from '../src/mysql/connect.js';
import { createMssqlTypeMap } from '../src/rows/mssql/typemap.js';
import type { RowValue, SourceType } from '../src/rows/types.js';
import { createTestEnv, withDatabase, type TestEnv } from './support/env.js';
import { shardServerFlavor } from '../src/target/flavor.js';

/**
 * The other half of type fidelity: the DDL types the SQL Server map produces, created on a real
 * shard server (MariaDB here, so the MariaDB collation flavour), and the converted values written
 * and read back unchanged.
 */
const map = createMssqlTypeMap({ flavor: 'mariadb' });

interface Case {
  column: string;
  type: SourceType;
  /** The value tedious hands over for the map's SELECT expression. */
  driverValues: unknown[];
  /** How to compare what comes back (default: equal text / bytes). */
  compare?: (written: RowValue, read: RowValue) => void;
}

const cases: Case[] = [
  { column: 'flag', type: { dataType: 'bit' }, driverValues: [true, false, null] },
  { column: 'tiny', type: { dataType: 'tinyint' }, driverValues: [255, 0] },
  { column: 'big', type: { dataType: 'bigint' }, driverValues: ['9007199254740993', '-9223372036854775808', '9223372036854775807'] },
  { column: 'amount', type: { dataType: 'decimal', precision: 38, scale: 10 }, driverValues: ['9999999999999999999999999999.9999999999', '-0.0000000001', '0.0000000000'] },
  { column: 'wide', type: { dataType: 'numeric', precision: 38, scale: 0 }, driverValues: ['99999999999999999999999999999999999999', '-99999999999999999999999999999999999999'] },
  { column: 'money', type: { dataType: 'money' }, driverValues: ['922337203685477.5807', '-922337203685477.5808'] },
  { column: 'smoney', type: { dataType: 'smallmoney' }, driverValues: ['214748.3647', '-214748.3648'] },
  {
    column: 'ratio',
    type: { dataType: 'float' },
    driverValues: [0.1, 1.7976931348623157e308, 5e-324],
    compare: (w, r) => expect(Number(r)).toBe(Number(w)),
  },
  { column: 'r', type: { dataType: 'real' }, driverValues: [Math.fround(0.1), 0.5], compare: (w, r) => expect(Math.fround(Number(r))).toBe(Math.fround(Number(w))) },
  { column: 'name_gbk', type: { dataType: 'varchar', length: 40, collation: 'Chinese_PRC_CI_AS' }, driverValues: ['张伟喆镕', '€', '', 'a '] },
  { column: 'name_n', type: { dataType: 'nvarchar', length: 100, collation: 'Chinese_PRC_CI_AS' }, driverValues: ['𠀀😀 Ａ', 'éèe'] },
  { column: 'code', type: { dataType: 'nchar', length: 4, collation: 'Latin1_General_CS_AS' }, driverValues: ['AbC1'] },
  { column: 'note', type: { dataType: 'nvarchar', length: -1, collation: 'Chinese_PRC_CI_AS' }, driverValues: ['长'.repeat(100_000) + '😀'] },
  { column: 'raw', type: { dataType: 'varbinary', length: -1 }, driverValues: [Buffer.from([0, 0xff, 0]), Buffer.alloc(0)] },
  { column: 'b16', type: { dataType: 'binary', length: 16 }, driverValues: [Buffer.from('FF19966F868B11D0B42D00C04FC964FF', 'hex')] },
  { column: 'guid', type: { dataType: 'uniqueidentifier' }, driverValues: ['6F9619FF-8B86-D011-B42D-00C04FC964FF'] },
  { column: 'd', type: { dataType: 'date' }, driverValues: ['1000-01-01', '9999-12-31', '2024-02-29'] },
  { column: 'dt', type: { dataType: 'datetime' }, driverValues: ['1753-01-01 00:00:00.000', '2024-03-01 10:00:00.003'] },
  { column: 'sdt', type: { dataType: 'smalldatetime' }, driverValues: ['2079-06-06 23:59:00'] },
  { column: 'dt2', type: { dataType: 'datetime2', scale: 7 }, driverValues: ['2024-12-31 23:59:59.9999990', '2024-03-02 09:00:00.0000010'] },
  { column: 't', type: { dataType: 'time', scale: 7 }, driverValues: ['23:59:59.9999990', '00:00:00.0000000'] },
  { column: 'dto', type: { dataType: 'datetimeoffset', scale: 7 }, driverValues: ['2024-03-02 09:00:00.1234567 480', '0001-01-01 00:00:00.0000000 -840'] },
  { column: 'x', type: { dataType: 'xml', length: -1 }, driverValues: ['<a b="1">x</a>'] },
];

describe('SQL Server type map on a real shard server', () => {
  let env: TestEnv;
  let url: string;
  beforeAll(async () => {
    env = await createTestEnv();
    const db = `${env.prefix}_types`;
    const admin = await connectMysql(env.urls.shardA);
    await admin.query(`CREATE DATABASE ${quoteId(db)} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
    await admin.end();
    url = withDatabase(env.urls.shardA, db);
  });
  afterAll(async () => env?.cleanup());

  it('creates every target type and reads every converted value back unchanged', async () => {
    const conn = await connectMysql(url);
    try {
      const columns = cases.map((c) => `${quoteId(c.column)} ${map.conversion(c.type, c.column).targetType} NULL`);
      await conn.query(`CREATE TABLE t (id INT NOT NULL PRIMARY KEY, ${columns.join(', ')}) ENGINE=InnoDB`);
      const rows = Math.max(...cases.map((c) => c.driverValues.length));
      const written: RowValue[][] = [];
      for (let i = 0; i < rows; i++) {
        const values = cases.map((c) => (i < c.driverValues.length ? (map.conversion(c.type, c.column).convert(c.driverValues[i]) as RowValue) : null));
        written.push(values);
        await conn.query(`INSERT INTO t (id, ${cases.map((c) => quoteId(c.column)).join(', ')}) VALUES (?, ${cases.map(() => '?').join(', ')})`, [i, ...values]);
      }
      const [back] = await conn.query(`SELECT ${cases.map((c) => quoteId(c.column)).join(', ')} FROM t ORDER BY id`);
      (back as Record<string, RowValue>[]).forEach((row, i) => {
        cases.forEach((c, j) => {
          const w = written[i]![j]!;
          const r = row[c.column] ?? null;
          if (w === null) return expect(r, `${c.column} row ${i}`).toBeNull();
          if (c.compare) return c.compare(w, r);
          if (Buffer.isBuffer(w)) return expect(Buffer.isBuffer(r) && r.equals(w), `${c.column} row ${i}`).toBe(true);
          // mysql2 hands back small integer types as JS numbers; everything else already as text
          expect(typeof r === 'number' ? String(r) : r, `${c.column} row ${i}`).toBe(w);
        });
      });
    } finally {
      await conn.end();
    }
  });

  it('an accent-sensitive source collation stays accent-sensitive: no new duplicate keys', async () => {
    const conn = await connectMysql(url);
    try {
      const type = map.conversion({ dataType: 'nvarchar', length: 20, collation: 'Chinese_PRC_CI_AS' }, 'k').targetType;
      await conn.query(`CREATE TABLE k (k ${type} NOT NULL PRIMARY KEY) ENGINE=InnoDB`);
      // distinct under Chinese_PRC_CI_AS, so they can coexist in the source's unique key
      await conn.query("INSERT INTO k VALUES ('resume'), ('résumé'), ('resumé')");
      // equal under CI: the source could not have held both, and the target agrees
      await expect(conn.query("INSERT INTO k VALUES ('RESUME')")).rejects.toThrow(/Duplicate entry/);
      const cs = map.conversion({ dataType: 'nvarchar', length: 20, collation: 'Latin1_General_CS_AS' }, 'k').targetType;
      await conn.query(`CREATE TABLE kcs (k ${cs} NOT NULL PRIMARY KEY) ENGINE=InnoDB`);
      await conn.query("INSERT INTO kcs VALUES ('resume'), ('RESUME'), ('Resume')");
    } finally {
      await conn.end();
    }
  });

  it('the DDL for a SQL Server source names the shard servers\' collations: MariaDB is asked and told apart', async () => {
    expect(await shardServerFlavor(env.config)).toBe('mariadb');
    expect(await shardServerFlavor({ servers: { x: { primary: 'mysql://root@127.0.0.1:1', replicas: [], max_connections: 1 } } })).toBeUndefined();
  });
});
