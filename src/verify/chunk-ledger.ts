import { withRetry } from '../mysql/retry.js';
import { claimChunks, completeChunks, heldKey, releaseChunk, type Chunk, type CompletedChunk } from '../store/leases.js';
import type { ChunkClaimsOf } from '../store/workers.js';
import type { ChunkResult } from './runs.js';

/**
 * Chunks claimed in one control-store transaction, and done chunks recorded in one statement:
 * per-chunk round trips cost about as much as a tenth of a 10k-row chunk's checksums. A crash
 * leaves at most this many claimed-but-unchecked and checked-but-unrecorded chunks to redo.
 */
export const CONTROL_BATCH = 8;

/**
 * One verifier's account of its chunks in a job: claimed and in hand (`held`, the only leases its
 * heartbeat renews), checked and not yet recorded (recorded CONTROL_BATCH at a time), given back.
 */
export class ChunkLedger {
  readonly held = new Map<string, Chunk>();
  private readonly done: CompletedChunk[] = [];

  constructor(private readonly options: ChunkClaimsOf) {}

  /** Up to CONTROL_BATCH chunks of the job; none when none is free now. */
  async claim(): Promise<Chunk[]> {
    const { pool, jobId, workerId, leaseSeconds, retry, logger } = this.options;
    const chunks = await withRetry('claim chunks', retry, logger, () => claimChunks(pool, jobId, workerId, leaseSeconds, CONTROL_BATCH));
    for (const c of chunks) this.held.set(heldKey(c), c);
    return chunks;
  }

  /** A checked chunk, recorded with the next batch (a failed recording is tried again with it). */
  async checked(chunk: Chunk, result: ChunkResult): Promise<void> {
    this.done.push({ chunk, rowsDone: result.legacyRows, result });
    if (this.done.length >= CONTROL_BATCH) await this.record().catch((e) => this.options.logger.warn({ err: (e as Error).message }, 'recording done chunks failed; will retry'));
  }

  /** Records the checked chunks; on failure they stay queued for the next try. */
  async record(): Promise<void> {
    const batch = this.done.splice(0);
    if (batch.length === 0) return;
    try {
      const kept = await completeChunks(this.options.pool, this.options.workerId, batch);
      for (const d of batch) this.held.delete(heldKey(d.chunk));
      if (kept < batch.length) this.options.logger.warn({ lost: batch.length - kept, chunks: batch.map((d) => d.chunk.chunkNo) }, 'lease lost: another verifier redoes these chunks');
    } catch (e) {
      this.done.unshift(...batch);
      throw e;
    }
  }

  /** Gives a chunk back: pending for another try (by anyone), or failed for good. */
  async giveBack(chunk: Chunk, why: string, state: 'pending' | 'failed' = 'pending'): Promise<void> {
    await releaseChunk(this.options.pool, chunk, this.options.workerId, why, state).catch(() => {});
    this.held.delete(heldKey(chunk));
  }
}

/**
 * Hands out claimed chunks one at a time and claims the next batch while fewer than `lowWater`
 * are left, so the slots rarely wait on the control store. Empty when nothing can be claimed now.
 */
export function chunkFeed(claim: () => Promise<Chunk[]>, lowWater: number): { next(): Promise<Chunk | null>; drain(): Promise<Chunk[]> } {
  const queue: Chunk[] = [];
  let refill: Promise<void> | null = null;
  const fill = () =>
    (refill ??= claim()
      .then((chunks) => void queue.push(...chunks))
      .finally(() => (refill = null)));
  return {
    async next() {
      if (queue.length === 0) await fill();
      const chunk = queue.shift() ?? null;
      // A failed read-ahead is retried (and reported) by the next call that finds the queue empty.
      if (chunk && queue.length < lowWater) fill().catch(() => {});
      return chunk;
    },
    /** The chunks claimed and not handed out, a read-ahead in flight included. */
    async drain() {
      await refill?.catch(() => {});
      return queue.splice(0);
    },
  };
}
