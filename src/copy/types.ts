import type { Logger } from '../log.js';
import type { StartPosition } from '../source/reader.js';
import type { ChunkKey } from '../store/leases.js';
import type { CopyMethod } from './chunk.js';

export interface FullCopyOptions {
  logger?: Logger;
  /** Logical table names (default: every table in the config). */
  tables?: string[];
  /** Show the plan (chunks, shards, servers) and change nothing. */
  dryRun?: boolean;
  /** Drop the job's progress on purpose and start it again. */
  restart?: boolean;
  maxRowsPerSec?: number;
  /** Chunk workers in this process (default copy.workers). */
  workers?: number;
  onProgress?: (progress: TableProgress[]) => void;
  /** Aborted (SIGINT/SIGTERM): no new chunk is taken; what is buffered is written and recorded; the rest is left. */
  signal?: AbortSignal;
}

export interface TableProgress {
  table: string;
  chunksTotal: number;
  chunksDone: number;
  rowsDone: number;
}

export interface LeftChunk {
  table: string;
  chunkNo: number;
  state: string;
  lowerKey: ChunkKey | null;
  upperKey: ChunkKey | null;
  error: string | null;
}

export interface TablePlan {
  table: string;
  source: string;
  target: string;
  chunks: number;
  chunkRows: number;
}

export interface FullCopyResult {
  jobId: number | null;
  job: string;
  /** done: every chunk copied; incomplete: chunks are left (see `left`); planned: --dry-run. */
  state: 'done' | 'incomplete' | 'planned';
  method: CopyMethod;
  startPositions: StartPosition[];
  tables: { table: string; chunks: number; chunksDone: number; rows: number; rowsThisRun: number; servers: Record<string, number> }[];
  servers: { server: string; rows: number; shards: number }[];
  seconds: number;
  rowsThisRun: number;
  rowsPerSec: number;
  chunksThisRun: number;
  rejectedValues: number;
  left: LeftChunk[];
  /** Why the run stopped early (e.g. a value the target cannot hold, with on_unrepresentable: fail). */
  errors: string[];
  plan?: {
    tables: TablePlan[];
    shards: number;
    servers: { server: string; shards: number }[];
    /** The job of these tables in the control store, which a run resumes (or drops, with --restart). */
    job?: { id: number; state: string; chunks: number; chunksDone: number; rows: number; action: 'resume' | 'restart' };
    /** The control store could not be read: whether such a job exists is unknown (and a run would fail there). */
    controlError?: string;
    /** Shard servers that did not answer: a run would leave their chunks undone (and exit 1). */
    unreachable?: string[];
  };
}

/** The error a stop request leaves in the result; it goes when every chunk got done anyway. */
export const STOPPED_ON_REQUEST = 'stopped on request: the chunks not yet taken are left for the next run';

/** A job whose planning stopped before its last chunk: the rest of the key range has no chunk yet. */
export const PLANNING_NOT_FINISHED = 'the job has not finished planning its chunks: run membermig full again to plan and copy the rest';

/** The error of a --restart stopped before it dropped the job's progress: it changed nothing. */
export const STOPPED_BEFORE_RESTART = 'stopped on request before the restart: no progress was dropped and no shard table emptied; run membermig full --restart again';
