import type { RowDataPacket } from 'mysql2/promise';
import type { TableSpec } from '../rows/types.js';
import type { CopyMethod } from './chunk.js';
import { startPositionsOf, type FullJob } from './job.js';
import type { JobContext, RunState } from './run.js';
import { PLANNING_NOT_FINISHED, STOPPED_ON_REQUEST, type FullCopyResult, type LeftChunk } from './types.js';

export function emptyResult(specs: TableSpec[], method: CopyMethod): FullCopyResult {
  return {
    jobId: null,
    job: specs.map((s) => s.name).join(','),
    state: 'done',
    method,
    startPositions: [],
    tables: [],
    servers: [],
    seconds: 0,
    rowsThisRun: 0,
    rowsPerSec: 0,
    chunksThisRun: 0,
    rejectedValues: 0,
    left: [],
    errors: [],
  };
}

interface ChunkRow extends RowDataPacket {
  table_name: string;
  chunk_no: number;
  state: string;
  lower_key: unknown;
  upper_key: unknown;
  rows_done: number | string | null;
  result: unknown;
  last_error: string | null;
}

const parseJson = <T>(v: unknown): T | null => (v === null || v === undefined ? null : typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));

/** The job's state from the control store (all processes' work) plus this run's figures; marks a complete job done. */
export async function summarize(ctx: JobContext, job: FullJob, run: RunState, seconds: number): Promise<FullCopyResult> {
  const { store, map } = ctx;
  const [chunks] = await store.pool.query<ChunkRow[]>(
    'SELECT table_name, chunk_no, state, lower_key, upper_key, rows_done, result, last_error FROM chunks WHERE job_id = ? ORDER BY table_name, chunk_no',
    [job.id],
  );
  const tables = new Map<string, FullCopyResult['tables'][number]>();
  for (const spec of ctx.specs) tables.set(spec.name, { table: spec.name, chunks: 0, chunksDone: 0, rows: 0, rowsThisRun: run.rowsByTable.get(spec.name) ?? 0, servers: {} });
  const serverRows: Record<string, number> = {};
  const left: LeftChunk[] = [];
  for (const c of chunks) {
    const t = tables.get(c.table_name)!;
    t.chunks++;
    if (c.state !== 'done') {
      left.push({ table: c.table_name, chunkNo: c.chunk_no, state: c.state, lowerKey: parseJson(c.lower_key), upperKey: parseJson(c.upper_key), error: c.last_error });
      continue;
    }
    t.chunksDone++;
    t.rows += Number(c.rows_done ?? 0);
    const result = parseJson<{ servers?: Record<string, number> }>(c.result);
    for (const [server, n] of Object.entries(result?.servers ?? {})) {
      t.servers[server] = (t.servers[server] ?? 0) + n;
      serverRows[server] = (serverRows[server] ?? 0) + n;
    }
  }
  const [rejected] = await store.pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM rejected_values WHERE job_id = ?', [job.id]);
  // Every chunk done is not the job done while its planning has not finished (a planner stopped or killed
  // part-way): the key range past the last planned chunk has no chunk yet, so nothing says it is copied.
  const [jobRows] = await store.pool.query<RowDataPacket[]>('SELECT state FROM jobs WHERE id = ?', [job.id]);
  const planned = jobRows[0]?.state !== 'planning';
  const complete = planned && left.length === 0 && chunks.length > 0;
  if (complete) await store.pool.query("UPDATE jobs SET state = 'done', finished_at = COALESCE(finished_at, NOW(6)) WHERE id = ? AND state = 'running'", [job.id]);
  return {
    ...emptyResult(ctx.specs, ctx.method),
    jobId: job.id,
    job: job.name,
    state: complete ? 'done' : 'incomplete',
    startPositions: await startPositionsOf(store, job.id),
    tables: [...tables.values()],
    servers: map.servers().map((s) => ({ server: s.name, rows: serverRows[s.name] ?? 0, shards: map.shardsOn(s.name).length })),
    seconds,
    rowsThisRun: run.rows,
    rowsPerSec: seconds > 0 ? run.rows / seconds : 0,
    chunksThisRun: run.chunks,
    rejectedValues: Number(rejected[0]?.n ?? 0),
    left,
    // A stop that came when every chunk was done (or during the last ones) left nothing for a rerun.
    errors: complete ? run.errors.filter((e) => e !== STOPPED_ON_REQUEST) : planned || run.errors.length > 0 ? run.errors : [PLANNING_NOT_FINISHED],
  };
}
