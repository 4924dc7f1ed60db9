import { createHash } from 'node:crypto';
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';

/**
 * The name of a control-store lock (GET_LOCK). Such locks are the server's, not a database's, so
 * the control database is part of the name: two control stores on one server (staging and
 * production, parallel test runs) never wait on each other's locks. `kind` stays readable (as
 * information_schema.METADATA_LOCK_INFO shows it); the rest is hashed, within the 64 characters
 * a lock name may have.
 */
export function storeLockName(database: string, kind: string, key = ''): string {
  return `membermig.${kind}.${createHash('sha1').update(`${database}\0${key}`).digest('hex').slice(0, 32)}`;
}

/** The database a control-store connection (or pool) uses. */
export async function databaseOf(conn: Pool | PoolConnection): Promise<string> {
  const [rows] = await conn.query<RowDataPacket[]>('SELECT DATABASE() AS name');
  return String(rows[0]?.name);
}
