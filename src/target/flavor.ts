import type { RowDataPacket } from 'mysql2/promise';
import type { Config } from '../config/schema.js';
import { connectMysql } from '../mysql/connect.js';
import type { TargetFlavor } from '../rows/mssql/collation.js';

/**
 * MySQL or MariaDB, asked of the first shard server: the DDL generated for a SQL Server source
 * names collations that exist in only one of them (utf8mb4_0900_* / utf8mb4_uca1400_*).
 * Undefined when the server cannot be asked; the caller keeps its default.
 */
export async function shardServerFlavor(config: Pick<Config, 'servers'>): Promise<TargetFlavor | undefined> {
  const server = Object.values(config.servers)[0];
  if (!server) return undefined;
  try {
    const conn = await connectMysql(server.primary, { connectTimeout: 5000 }, server.tls);
    try {
      const [rows] = await conn.query<RowDataPacket[]>('SELECT VERSION() AS v');
      return String(rows[0]?.v ?? '').includes('MariaDB') ? 'mariadb' : 'mysql';
    } finally {
      await conn.end();
    }
  } catch {
    return undefined;
  }
}
