import type { TableConfig } from '../../src/config/schema.js';
import { connectMysql, quoteId } from '../../src/mysql/connect.js';
import { targetDdl } from '../../src/rows/ddl.js';
import type { TableSpec } from '../../src/rows/types.js';
import type { CatalogColumn } from '../../src/source/mssql/reader.js';
import { withDatabase, type TestEnv } from './env.js';

/**
 * Table specs built from SQL Server catalog rows (no SQL Server here), for tests of what the type
 * map makes of them on a real shard server.
 */

/** A catalog row of column `name` of SQL Server type `type` (4 bytes wide, NOT NULL, unless `extra` says otherwise). */
export const catalogColumn = (name: string, type: string, extra: Partial<CatalogColumn> = {}): CatalogColumn => ({
  column_name: name,
  type_name: type,
  max_length: 4,
  precision: 10,
  scale: 0,
  collation_name: null,
  is_nullable: false,
  is_computed: false,
  ...extra,
});

/** dbo.M copied into shard table t, sharded by its column code. */
export const codeKeyedTable = { source: 'dbo.M', target: 't', shard_key: 'code', exclude_columns: [], columns: {} } as unknown as TableConfig;

/** A database `<prefix>_<suffix>` on env's shard server A holding the spec's shard table; its URL. */
export async function shardTableOf(env: TestEnv, spec: TableSpec, suffix: string): Promise<string> {
  const db = `${env.prefix}_${suffix}`;
  const admin = await connectMysql(env.urls.shardA);
  try {
    await admin.query(`CREATE DATABASE ${quoteId(db)}`);
    await admin.query(targetDdl(spec, db));
  } finally {
    await admin.end();
  }
  return withDatabase(env.urls.shardA, db);
}
