import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { respellableKeyPositions } from '../src/rows/ddl.js';
import { createMssqlTypeMap } from '../src/rows/mssql/typemap.js';
import { buildTableSpec } from '../src/source/mssql/reader.js';
import { upsertSql } from '../src/target/writer.js';
import { catalogColumn, codeKeyedTable, shardTableOf } from './support/mssql-spec.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * A SQL Server text primary key under a case-insensitive collation (SQL Server's default) maps to a
 * _ci shard collation, named in the target type's COLLATE clause, which the respelling rule did not
 * read: 'k1' and 'K1' were taken for different keys, and an upsert of 'K1' (sync's change, verify's
 * repair) over 'k1' kept the shard's old spelling. The shard part runs on a real MariaDB.
 */
const map = createMssqlTypeMap({ flavor: 'mariadb' });
const column = catalogColumn;
const table = codeKeyedTable;

describe('a SQL Server text key under a case-insensitive collation', () => {
  const ci = buildTableSpec('m', table, [column('code', 'nvarchar', { max_length: 40, collation_name: 'SQL_Latin1_General_CP1_CI_AS' }), column('v', 'int', { is_nullable: true })], ['code'], map);

  it('is respellable', () => {
    expect(ci.columns[0]!.targetType).toMatch(/_ci$/);
    expect(respellableKeyPositions(ci)).toEqual([0]);
  });

  describe('on a shard server', () => {
    let env: TestEnv;
    let url: string;
    beforeAll(async () => {
      env = await createTestEnv();
      url = await shardTableOf(env, ci, 'respell');
    });
    afterAll(async () => env?.cleanup());

    it("an upsert of 'K1' over 'k1' takes the new spelling", async () => {
      const conn = await connectMysql(url);
      try {
        await conn.query(upsertSql('`t`', ci, 1), ['k1', '1']);
        await conn.query(upsertSql('`t`', ci, 1), ['K1', '2']);
        const [rows] = await conn.query('SELECT code, v FROM t');
        expect(rows).toEqual([{ code: 'K1', v: 2 }]);
      } finally {
        await conn.end();
      }
    });
  });
});
