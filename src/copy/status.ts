import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { StartPosition } from '../source/reader.js';
import { isStopped, liveWorkersSql } from '../store/status-tables.js';

/** The "full copy" section of `membermig status`: the latest full-copy jobs, what is left, what was rejected. */
export interface FullCopyStatus {
  jobs: {
    id: number;
    job: string;
    state: string;
    /** Not done, and no process works on it (SIGINT, kill -9): `membermig full` goes on with it. */
    stopped: boolean;
    chunks: number;
    chunksLeft: number;
    rows: number;
    rejectedValues: number;
    startPositions: StartPosition[];
  }[];
}

const parse = (v: unknown): Record<string, unknown> => (typeof v === 'string' ? (JSON.parse(v) as Record<string, unknown>) : (v as Record<string, unknown>));

/** `deadHere`: workers of this host whose process is gone (deadLocalWorkers), not counted as working. */
export async function collectFullCopyStatus(pool: Pool, leaseSeconds: number, deadHere: string[], limit = 5): Promise<FullCopyStatus> {
  const [jobs] = await pool.query<RowDataPacket[]>(
    `SELECT j.id, j.name, j.state,
            (SELECT COUNT(*) FROM chunks c WHERE c.job_id = j.id) AS chunks,
            (SELECT COUNT(*) FROM chunks c WHERE c.job_id = j.id AND c.state <> 'done') AS chunks_left,
            (SELECT COALESCE(SUM(rows_done), 0) FROM chunks c WHERE c.job_id = j.id AND c.state = 'done') AS rows_done,
            (SELECT COUNT(*) FROM rejected_values r WHERE r.job_id = j.id) AS rejected,
            ${liveWorkersSql('j', deadHere)} AS live_workers
       FROM jobs j WHERE j.kind = 'full' AND j.state <> 'abandoned' ORDER BY j.id DESC LIMIT ?`,
    [leaseSeconds, limit],
  );
  const result: FullCopyStatus = { jobs: [] };
  for (const j of jobs) {
    const [positions] = await pool.query<RowDataPacket[]>('SELECT source_kind, position FROM cdc_start_positions WHERE job_id = ? ORDER BY source_kind', [j.id]);
    result.jobs.push({
      id: Number(j.id),
      job: j.name,
      state: j.state,
      stopped: isStopped(j.state, Number(j.live_workers)),
      chunks: Number(j.chunks),
      chunksLeft: Number(j.chunks_left),
      rows: Number(j.rows_done),
      rejectedValues: Number(j.rejected),
      startPositions: positions.map((p) => ({ kind: p.source_kind, position: parse(p.position) })),
    });
  }
  return result;
}
