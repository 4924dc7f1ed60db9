import { createHash } from 'node:crypto';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { RefusedError } from '../errors.js';

/**
 * A run that must be the only one of its kind per control store (e.g. sync from SQL Server CDC,
 * where a second run re-applies older pages over newer rows and saves its older position last)
 * holds a named lock on a connection of its own for as long as it runs. The lock is the server's
 * (GET_LOCK), so it goes with the connection if the process dies; its name includes the control
 * database, since two control stores may share one server.
 */
export async function holdRunLock(pool: Pool, kind: string, refusal: string): Promise<() => Promise<void>> {
  const conn = await pool.getConnection();
  try {
    const [db] = await conn.query<RowDataPacket[]>('SELECT DATABASE() AS name');
    const name = `membermig.${kind}.${createHash('sha1').update(String(db[0]?.name)).digest('hex').slice(0, 16)}`;
    const [got] = await conn.query<RowDataPacket[]>('SELECT GET_LOCK(?, 0) AS got', [name]);
    if (Number(got[0]?.got) !== 1) throw new RefusedError(refusal);
    return async () => {
      await conn.query('SELECT RELEASE_LOCK(?)', [name]).catch(() => {});
      conn.release();
    };
  } catch (e) {
    conn.release();
    throw e;
  }
}
