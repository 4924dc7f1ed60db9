import pLimit from 'p-limit';
import { withRetry } from '../mysql/retry.js';
import { chunksLeftBeyond, claimChunk, heldKey, type Chunk } from '../store/leases.js';
import type { ChunkClaimsOf } from '../store/workers.js';

/** What a worker does next: copy a chunk, wait and ask again, or stop (this process has nothing left to do). */
export type NextChunk = { chunk: Chunk } | { waitMs: number } | null;

export interface ChunkClaimsOptions extends ChunkClaimsOf {
  /** Whether this process is still planning chunks (a worker finding none then waits for more). */
  planning: () => boolean;
  /** Whether the run is stopping: workers waiting for their turn then claim nothing more. */
  stopping: () => boolean;
}

/** How long a worker that found no chunk waits while the planner inserts more. */
const PLAN_WAIT_MS = 50;

/**
 * The claims of one process's workers on a job, taken one at a time, each chunk entered in `held`
 * before the next worker looks. So a worker that finds no chunk sees every chunk its siblings hold.
 * Claiming at once, a worker could meet a sibling's claim committed but not yet held (or its rows
 * locked, and skipped), take it for another process's chunk and wait a second for nothing: at the
 * end of about one copy in three, and claims of the same process deadlocked with each other.
 */
export class ChunkClaims {
  /** Chunks this process has claimed and not yet recorded, by heldKey: the only leases it renews. */
  readonly held = new Map<string, Chunk>();
  private readonly oneAtATime = pLimit(1);

  constructor(private readonly options: ChunkClaimsOptions) {}

  next(): Promise<NextChunk> {
    const { pool, jobId, workerId, leaseSeconds, retry, logger } = this.options;
    return this.oneAtATime(async () => {
      // A worker that waited its turn behind a failing claim (a control store down) stops with the
      // run instead of failing after its own round of retries.
      if (this.options.stopping()) return null;
      const chunk = await withRetry('claim a chunk', retry, logger, () => claimChunk(pool, jobId, workerId, leaseSeconds));
      if (chunk) {
        this.held.set(heldKey(chunk), chunk);
        return { chunk };
      }
      if (this.options.planning()) return { waitMs: PLAN_WAIT_MS };
      // Chunks leased by another process are finished by it or, if it died, taken over here at lease
      // expiry; so are this process's own leases that it does not hold (a claim whose reply was lost).
      // Chunks held here are finished by the workers holding them.
      const left = await withRetry('look for chunks', retry, logger, () => chunksLeftBeyond(pool, jobId, workerId, [...this.held.values()]));
      return left ? { waitMs: Math.min(1000, (leaseSeconds * 1000) / 4) } : null;
    });
  }

  /** The chunk is recorded (done or given back): its lease is no longer this process's to renew. */
  release(chunk: Chunk): void {
    this.held.delete(heldKey(chunk));
  }
}
