import type { Pool, PoolConnection } from 'mysql2/promise';

/**
 * Runs `work` on a connection of the pool. One that a failure left unusable (or that `work` says
 * is lost) is thrown away, not handed to the next caller.
 */
export async function onConnection<T>(pool: Pool, work: (conn: PoolConnection, lost: () => void) => Promise<T>): Promise<T> {
  const conn = await pool.getConnection();
  let usable = true;
  try {
    return await work(conn, () => (usable = false));
  } catch (e) {
    if (unusable(e)) usable = false;
    throw e;
  } finally {
    if (usable) conn.release();
    else conn.destroy();
  }
}

/**
 * A lost connection, or one whose statement timed out: mysql2 leaves that statement pending on
 * it, and the pool's end would wait behind it for a server that may never answer.
 */
export function unusable(e: unknown): boolean {
  const err = e as { fatal?: boolean; code?: string };
  return err.fatal === true || err.code === 'PROTOCOL_SEQUENCE_TIMEOUT';
}

/** One read statement, its rows as arrays of values. */
export type RowsQuery = (sql: string, values?: unknown[]) => Promise<unknown[][]>;

/**
 * Read statements on the pool's connections, each failing when the server has not answered in
 * `timeoutMs` (when given): a server that accepts and never answers (hung, stopped) fails the
 * statement instead of holding its caller forever.
 */
export function rowsQuery(pool: Pool, timeoutMs?: number): RowsQuery {
  return (sql, values) =>
    onConnection(pool, async (conn) => {
      try {
        const [rows] = await conn.query({ sql, values, rowsAsArray: true, ...(timeoutMs === undefined ? {} : { timeout: timeoutMs }) });
        return rows as unknown as unknown[][];
      } catch (e) {
        if (timeoutMs === undefined || (e as { code?: string }).code !== 'PROTOCOL_SEQUENCE_TIMEOUT') throw e;
        throw Object.assign(new Error(`no answer within ${timeoutMs / 1000} s (the server hangs or is overloaded)`, { cause: e }), { code: 'PROTOCOL_SEQUENCE_TIMEOUT' });
      }
    });
}
