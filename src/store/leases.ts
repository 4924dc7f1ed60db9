import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';

/**
 * Chunk leases: how several processes (on any machines) share one job without double work.
 * A worker claims the next pending (or expired) chunk with FOR UPDATE SKIP LOCKED, keeps its
 * lease alive with heartbeats, and completes it only while it still owns it. Times are the
 * control store's clock (NOW(6)), so workers' clocks do not matter.
 */

export type ChunkKey = string[];

export interface Chunk {
  jobId: number;
  tableName: string;
  chunkNo: number;
  /** Exclusive lower bound; null = from the start. */
  lowerKey: ChunkKey | null;
  /** Inclusive upper bound; null = to the end. */
  upperKey: ChunkKey | null;
  attempts: number;
}

export interface NewChunk {
  tableName: string;
  chunkNo: number;
  lowerKey: ChunkKey | null;
  upperKey: ChunkKey | null;
}

/** A chunk's key in a worker's map of the chunks it holds. */
export const heldKey = (c: Pick<Chunk, 'tableName' | 'chunkNo'>): string => `${c.tableName}\u0000${c.chunkNo}`;

export async function insertChunks(pool: Pool, jobId: number, chunks: NewChunk[]): Promise<void> {
  const BATCH = 1000;
  for (let i = 0; i < chunks.length; i += BATCH) {
    const part = chunks.slice(i, i + BATCH);
    await pool.query(
      'INSERT IGNORE INTO chunks (job_id, table_name, chunk_no, lower_key, upper_key) VALUES ?',
      [part.map((c) => [jobId, c.tableName, c.chunkNo, json(c.lowerKey), json(c.upperKey)])],
    );
  }
}

function json(key: ChunkKey | null): string | null {
  return key === null ? null : JSON.stringify(key);
}

interface ChunkRow extends RowDataPacket {
  table_name: string;
  chunk_no: number;
  lower_key: string | ChunkKey | null;
  upper_key: string | ChunkKey | null;
  attempts: number;
}

/** A chunk bound as the control store returns it (JSON text or already parsed) → the key. */
export function parseChunkKey(v: string | ChunkKey | null): ChunkKey | null {
  if (v === null) return null;
  return typeof v === 'string' ? (JSON.parse(v) as ChunkKey) : v;
}

/** Claims one chunk of the job (optionally of one table), or returns null when none is free. */
export async function claimChunk(pool: Pool, jobId: number, worker: string, leaseSeconds: number, tableName?: string): Promise<Chunk | null> {
  return (await claimChunks(pool, jobId, worker, leaseSeconds, 1, tableName))[0] ?? null;
}

/**
 * Claims up to `limit` chunks of the job (optionally of one table) in one transaction: chunks
 * whose lease expired first (their worker died), then pending ones in chunk order; none when none
 * is free. A batch saves control-store round trips per chunk. Each select reads an index in its
 * order (chunks_claim, chunks_pending), so a claim costs the same at the last chunk as at the first.
 */
export async function claimChunks(pool: Pool, jobId: number, worker: string, leaseSeconds: number, limit: number, tableName?: string): Promise<Chunk[]> {
  const conn = await pool.getConnection();
  try {
    // Record locks only: under REPEATABLE READ the locking reads' gap locks on the chunks_pending
    // index deadlocked with a concurrent completeChunks inserting its 'done' entries there.
    await conn.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
    await conn.beginTransaction();
    const select = async (index: string, state: string, upTo: number) => {
      const [found] = await conn.query<ChunkRow[]>(
        `SELECT table_name, chunk_no, lower_key, upper_key, attempts FROM chunks FORCE INDEX (${index})
          WHERE job_id = ? AND ${state} ${tableName ? 'AND table_name = ?' : ''}
          ORDER BY table_name, chunk_no LIMIT ? FOR UPDATE SKIP LOCKED`,
        tableName ? [jobId, tableName, upTo] : [jobId, upTo],
      );
      return found;
    };
    const rows = await select('chunks_claim', "state = 'leased' AND lease_until < NOW(6)", limit);
    if (rows.length < limit) rows.push(...(await select('chunks_pending', "state = 'pending'", limit - rows.length)));
    for (const [table, numbers] of byTable(rows.map((r) => ({ tableName: r.table_name, chunkNo: r.chunk_no })))) {
      await conn.query(
        `UPDATE chunks SET state = 'leased', lease_owner = ?, lease_until = NOW(6) + INTERVAL ? SECOND, attempts = attempts + 1
          WHERE job_id = ? AND table_name = ? AND chunk_no IN (?)`,
        [worker, leaseSeconds, jobId, table, numbers],
      );
    }
    await conn.commit();
    return rows.map((row) => ({
      jobId,
      tableName: row.table_name,
      chunkNo: row.chunk_no,
      lowerKey: parseChunkKey(row.lower_key),
      upperKey: parseChunkKey(row.upper_key),
      attempts: row.attempts + 1,
    }));
  } catch (e) {
    await conn.rollback().catch(() => {});
    throw e;
  } finally {
    conn.release();
  }
}

/** Chunk numbers grouped by table. */
function byTable(chunks: Pick<Chunk, 'tableName' | 'chunkNo'>[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const c of chunks) out.set(c.tableName, [...(out.get(c.tableName) ?? []), c.chunkNo]);
  return out;
}

/**
 * Extends the leases of the chunks this worker has in hand; returns how many it still holds.
 * Only those: a chunk whose claim committed but whose reply was lost (a dropped connection) is
 * leased to this worker without its knowing. Renewing by owner kept such a chunk leased, and so
 * out of every worker's reach, for as long as the process ran; left alone, its lease runs out and
 * a claim takes it up like any dead worker's chunk.
 */
export async function renewLeases(pool: Pool, jobId: number, worker: string, leaseSeconds: number, held: Pick<Chunk, 'tableName' | 'chunkNo'>[]): Promise<number> {
  let renewed = 0;
  for (const [table, numbers] of byTable(held)) {
    const [res] = await pool.query<ResultSetHeader>(
      `UPDATE chunks SET lease_until = NOW(6) + INTERVAL ? SECOND WHERE job_id = ? AND table_name = ? AND chunk_no IN (?) AND lease_owner = ? AND state = 'leased'`,
      [leaseSeconds, jobId, table, numbers, worker],
    );
    renewed += res.affectedRows;
  }
  return renewed;
}

/**
 * Whether chunks of the job are left that this worker does not have in hand: pending ones,
 * others' leases (finished by them or taken over at expiry) and leases of its own it does not
 * know of (a claim whose reply was lost: taken up again at expiry, see renewLeases).
 */
export async function chunksLeftBeyond(pool: Pool, jobId: number, worker: string, held: Pick<Chunk, 'tableName' | 'chunkNo'>[]): Promise<boolean> {
  const notHeld = held.length === 0 ? '' : ' OR (table_name, chunk_no) NOT IN (?)';
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT 1 FROM chunks WHERE job_id = ? AND (state = 'pending' OR (state = 'leased' AND (lease_owner <> ?${notHeld}))) LIMIT 1`,
    held.length === 0 ? [jobId, worker] : [jobId, worker, held.map((c) => [c.tableName, c.chunkNo])],
  );
  return rows.length > 0;
}

/**
 * Of these chunks, as this worker claimed them, those another worker has claimed since: a claim
 * counts an attempt, so a chunk whose attempts went past the claim's was taken over.
 */
export async function chunksTakenOver(pool: Pool, chunks: Chunk[]): Promise<Chunk[]> {
  if (chunks.length === 0) return [];
  const [rows] = await pool.query<RowDataPacket[]>('SELECT table_name, chunk_no, attempts FROM chunks WHERE job_id = ? AND (table_name, chunk_no) IN (?)', [
    chunks[0]!.jobId,
    chunks.map((c) => [c.tableName, c.chunkNo]),
  ]);
  const attempts = new Map(rows.map((r) => [`${r.table_name}\u0000${r.chunk_no}`, Number(r.attempts)]));
  return chunks.filter((c) => (attempts.get(`${c.tableName}\u0000${c.chunkNo}`) ?? 0) > c.attempts);
}

/** Marks a chunk done if this worker still owns it; false means the lease was lost to another worker. */
export async function completeChunk(pool: Pool, chunk: Chunk, worker: string, rowsDone: number, result: unknown = null): Promise<boolean> {
  return (await completeChunks(pool, worker, [{ chunk, rowsDone, result }])) === 1;
}

export interface CompletedChunk {
  chunk: Chunk;
  rowsDone: number;
  result: unknown;
}

/**
 * Marks chunks of one job done, one statement per table, each only if this worker still owns
 * it; returns how many it still owned (the rest were lost to other workers).
 */
export async function completeChunks(pool: Pool, worker: string, done: CompletedChunk[]): Promise<number> {
  let completed = 0;
  const jobId = done[0]?.chunk.jobId;
  for (const [table, numbers] of byTable(done.map((d) => d.chunk))) {
    const of = done.filter((d) => d.chunk.tableName === table);
    const cases = (pick: (d: CompletedChunk) => unknown) => ({
      sql: `CASE chunk_no ${of.map(() => 'WHEN ? THEN ?').join(' ')} END`,
      params: of.flatMap((d) => [d.chunk.chunkNo, pick(d)]),
    });
    const rows = cases((d) => d.rowsDone);
    const results = cases((d) => (d.result === null ? null : JSON.stringify(d.result)));
    const [res] = await pool.query<ResultSetHeader>(
      `UPDATE chunks SET state = 'done', rows_done = ${rows.sql}, result = ${results.sql}, lease_owner = NULL, lease_until = NULL, last_error = NULL
        WHERE job_id = ? AND table_name = ? AND chunk_no IN (?) AND lease_owner = ? AND state = 'leased'`,
      [...rows.params, ...results.params, jobId, table, numbers, worker],
    );
    completed += res.affectedRows;
  }
  return completed;
}

/** Gives a chunk back (e.g. its shard server is down) so a later attempt or rerun takes it. */
export async function releaseChunk(pool: Pool, chunk: Chunk, worker: string, error: string, state: 'pending' | 'failed' = 'pending'): Promise<void> {
  await pool.query(
    `UPDATE chunks SET state = ?, lease_owner = NULL, lease_until = NULL, last_error = ?
      WHERE job_id = ? AND table_name = ? AND chunk_no = ? AND lease_owner = ?`,
    [state, error.slice(0, 4000), chunk.jobId, chunk.tableName, chunk.chunkNo, worker],
  );
}

/** Chunks of a job that failed, grouped by table and error (the first errors, most frequent first). */
export interface ChunkFailure {
  table: string;
  chunks: number;
  error: string;
}

export async function chunkFailures(pool: Pool, jobId: number, limit = 5): Promise<ChunkFailure[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT table_name, LEFT(COALESCE(last_error, 'no error recorded'), 1000) AS error, COUNT(*) AS n FROM chunks
      WHERE job_id = ? AND state = 'failed' GROUP BY table_name, error ORDER BY n DESC, table_name LIMIT ?`,
    [jobId, limit],
  );
  return rows.map((r) => ({ table: r.table_name, chunks: Number(r.n), error: r.error }));
}

export interface ChunkCounts {
  tableName: string;
  pending: number;
  leased: number;
  done: number;
  failed: number;
  rowsDone: number;
}

export async function chunkCounts(pool: Pool, jobId: number): Promise<ChunkCounts[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT table_name,
            SUM(state = 'pending') AS pending, SUM(state = 'leased') AS leased,
            SUM(state = 'done') AS done, SUM(state = 'failed') AS failed,
            COALESCE(SUM(rows_done), 0) AS rows_done
       FROM chunks WHERE job_id = ? GROUP BY table_name ORDER BY table_name`,
    [jobId],
  );
  return rows.map((r) => ({
    tableName: r.table_name,
    pending: Number(r.pending),
    leased: Number(r.leased),
    done: Number(r.done),
    failed: Number(r.failed),
    rowsDone: Number(r.rows_done),
  }));
}
