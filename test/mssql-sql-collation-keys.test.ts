import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TableConfig } from '../src/config/schema.js';
import { connectMysql } from '../src/mysql/connect.js';
import { createMssqlTypeMap } from '../src/rows/mssql/typemap.js';
import { buildTableSpec } from '../src/source/mssql/reader.js';
import { upsertSql } from '../src/target/writer.js';
import { catalogColumn, codeKeyedTable, shardTableOf } from './support/mssql-spec.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * A SQL collation (SQL_Latin1_General_CP1_CI_AS, SQL Server's default on US installs) compares
 * char/varchar data by its old non-Unicode sort order, one character at a time: no expansions and
 * nothing ignorable, so 'a…' <> 'a...', 'x™' <> 'xTM', 'Bobs' + CHAR(160) + 'Widgets' <>
 * 'Bobs Widgets' and 'k' + CHAR(1) <> 'k' there, and a varchar primary key holds both of each
 * pair. Such a key column was given utf8mb4_uca1400_as_ci / utf8mb4_0900_as_ci, under which each
 * pair is one key: the second row's LOAD DATA REPLACE or upsert replaced the first, and the copy
 * counted both as written.
 * The shard part runs on a real MariaDB.
 */
const map = createMssqlTypeMap({ flavor: 'mariadb' });
const column = catalogColumn;
const table = codeKeyedTable;
/** Pairs SQL_Latin1_General_CP1_CI_AS keeps apart in a varchar column (all are CP1252 characters). */
const PAIRS: [string, string][] = [
  ['a\u2026', 'a...'],
  ['x\u2122', 'xTM'],
  ['Bobs\u00A0Widgets', 'Bobs Widgets'],
  // A SQL collation weighs every code point; UCA ignores control characters.
  ['k\u0001', 'k'],
];

describe('a SQL Server varchar key under a SQL collation', () => {
  const spec = buildTableSpec(
    'm',
    table,
    [column('code', 'varchar', { max_length: 40, collation_name: 'SQL_Latin1_General_CP1_CI_AS' }), column('v', 'int', { is_nullable: true })],
    ['code'],
    map,
  );

  it('takes utf8mb4_bin in the primary key; elsewhere, and for nvarchar (compared by Unicode rules), the _as_ci collation stays', () => {
    expect(spec.columns[0]!.targetType).toBe('VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin');
    const other = buildTableSpec(
      'm',
      { ...table, shard_key: 'id' } as TableConfig,
      [
        column('id', 'int'),
        column('code', 'varchar', { max_length: 40, collation_name: 'SQL_Latin1_General_CP1_CI_AS' }),
        column('name', 'nvarchar', { max_length: 40, collation_name: 'SQL_Latin1_General_CP1_CI_AS' }),
      ],
      ['id', 'name'],
      map,
    );
    expect(other.columns.map((c) => c.targetType)).toEqual([
      'INT',
      'VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_uca1400_as_ci',
      'VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_uca1400_as_ci',
    ]);
    // A case-sensitive or binary SQL collation already maps to utf8mb4_bin.
    expect(map.conversion({ dataType: 'varchar', length: 10, collation: 'SQL_Latin1_General_CP1_CS_AS' }, 'c').keyTargetType).toBeUndefined();
  });

  describe('on a shard server', () => {
    let env: TestEnv;
    let url: string;
    beforeAll(async () => {
      env = await createTestEnv();
      url = await shardTableOf(env, spec, 'sqlcoll');
    });
    afterAll(async () => env?.cleanup());

    it('keeps apart every two keys SQL Server keeps apart', async () => {
      const conn = await connectMysql(url);
      try {
        let v = 0;
        for (const pair of PAIRS) for (const code of pair) await conn.query(upsertSql('`t`', spec, 1), [code, String(++v)]);
        const [rows] = await conn.query('SELECT code FROM t ORDER BY v');
        expect((rows as { code: string }[]).map((r) => r.code)).toEqual(PAIRS.flat());
      } finally {
        await conn.end();
      }
    });
  });
});
