import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { connectMysql, quoteId } from '../src/mysql/connect.js';
import { targetDdl } from '../src/rows/ddl.js';
import { createMssqlTypeMap } from '../src/rows/mssql/typemap.js';
import { buildTableSpec, type CatalogColumn } from '../src/source/mssql/reader.js';
import { readExistingTables, shapeProblems } from '../src/target/shape.js';
import { catalogColumn, codeKeyedTable } from './support/mssql-spec.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * The SQL Server type map names a text column's collation in its target type
 * ('VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin'), which the shape check compared with
 * information_schema's COLUMN_TYPE ('varchar(40)'): every shard table init had just created was
 * reported as of another shape (so `full` refused it), and the collation itself, which decides
 * whether two legacy keys become one shard row, was never compared. Real MariaDB.
 */
const map = createMssqlTypeMap({ flavor: 'mariadb' });
const column = (name: string, type: string, extra: Partial<CatalogColumn> = {}) => catalogColumn(name, type, { max_length: 40, ...extra });
const table = codeKeyedTable;
const spec = buildTableSpec(
  'm',
  table,
  [
    column('code', 'varchar', { collation_name: 'SQL_Latin1_General_CP1_CI_AS' }),
    column('name', 'nvarchar', { collation_name: 'Latin1_General_CI_AS', is_nullable: true }),
    column('guid', 'uniqueidentifier', { max_length: 16, is_nullable: true }),
    column('n', 'int', { max_length: 4, is_nullable: true }),
  ],
  ['code'],
  map,
);

describe('the shape check of a shard table for a SQL Server source', () => {
  let env: TestEnv;
  let conn: Connection;
  let db: string;
  const problems = async () => {
    const found = await readExistingTables(conn, [db], ['t']);
    return shapeProblems('s', db, spec, found.columns.get(`${db}.t`)!, found.primaryKeys.get(`${db}.t`) ?? []);
  };
  beforeAll(async () => {
    env = await createTestEnv();
    db = `${env.prefix}_shape`;
    conn = await connectMysql(env.urls.shardA);
    await conn.query(`CREATE DATABASE ${quoteId(db)}`);
    await conn.query(targetDdl(spec, db));
  });
  afterAll(async () => {
    await conn?.end();
    await env?.cleanup();
  });

  it('finds nothing wrong with the table init creates', async () => {
    expect(await problems()).toEqual([]);
  });

  it('names a key column of another collation, under which legacy keys could merge', async () => {
    await conn.query(`ALTER TABLE ${quoteId(db)}.t MODIFY code VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_uca1400_as_ci NOT NULL`);
    expect(await problems()).toEqual([`table m: shard table ${db}.t on server s column code has collation utf8mb4_uca1400_as_ci, expected utf8mb4_bin`]);
  });
});
