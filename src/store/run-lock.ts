import type { Pool, RowDataPacket } from 'mysql2/promise';
import { RefusedError } from '../errors.js';
import { databaseOf, storeLockName } from './lock-name.js';

/**
 * A run that must be the only one of its kind per control store (e.g. sync from SQL Server CDC,
 * where a second run re-applies older pages over newer rows and saves its older position last)
 * holds a named lock on a connection of its own for as long as it runs. The lock is the server's
 * (GET_LOCK), so it goes with the connection if the process dies (its name: storeLockName).
 */
export async function holdRunLock(pool: Pool, kind: string, refusal: string): Promise<() => Promise<void>> {
  const conn = await pool.getConnection();
  try {
    const name = storeLockName(await databaseOf(conn), kind);
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
