import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkClaims } from '../src/copy/claims.js';
import { createLogger } from '../src/log.js';
import { completeChunk } from '../src/store/leases.js';
import { openControlStore, setupControlStore, type ControlStore } from '../src/store/control.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/** One process's workers claiming chunks of a job through ChunkClaims, on the real control store. */
describe('ChunkClaims', () => {
  let env: TestEnv;
  let store: ControlStore;
  beforeAll(async () => {
    env = await createTestEnv();
    await setupControlStore(env.config);
    store = openControlStore(env.config);
  });
  afterAll(async () => {
    await store?.close();
    await env?.cleanup();
  });

  const claimsFor = (jobId: number, workerId: string, stopping = () => false) =>
    new ChunkClaims({ pool: store.pool, jobId, workerId, leaseSeconds: 60, retry: { retries: 5, baseMs: 20 }, logger: createLogger('silent'), planning: () => false, stopping });

  it('hands each chunk out once, and a worker finding none while its siblings hold the rest stops without waiting', async () => {
    await store.pool.query("INSERT INTO jobs (id, kind, name, state) VALUES (91, 'full', 'claims', 'running')");
    await store.pool.query("INSERT INTO chunks (job_id, table_name, chunk_no) SELECT 91, 'member', seq FROM seq_0_to_399");
    const claims = claimsFor(91, 'p1');
    const copied: number[] = [];
    let waits = 0;
    // Eight workers of one process, claiming back to back: each records its chunk in the background
    // while it claims the next, as full's workers do. At the end several claim at once.
    const worker = async () => {
      const recording: Promise<void>[] = [];
      for (;;) {
        const next = await claims.next();
        if (next === null) break;
        if ('waitMs' in next) {
          waits++;
          await new Promise((r) => setTimeout(r, next.waitMs));
          continue;
        }
        copied.push(next.chunk.chunkNo);
        recording.push(
          (async () => {
            await new Promise((r) => setTimeout(r, Math.random() * 6));
            expect(await completeChunk(store.pool, next.chunk, 'p1', 1)).toBe(true);
            claims.release(next.chunk);
          })(),
        );
      }
      await Promise.all(recording);
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    expect(copied.length).toBe(400);
    expect(new Set(copied).size).toBe(400);
    // With one process, every chunk not done is held by one of its workers: nobody had reason to wait.
    expect(waits).toBe(0);
    expect(claims.held.size).toBe(0);
    const [left] = await store.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM chunks WHERE job_id = 91 AND state <> 'done'");
    expect(Number(left[0]!.n)).toBe(0);
  });

  it('workers claiming at once when fewer chunks are left than workers: the ones without a chunk stop at once', async () => {
    // The end of a copy: workers let go by a full batch buffer all claim at the same moment. Claimed
    // side by side, the ones without a chunk saw a sibling's claim in flight, took it for another
    // process's and waited a second for nothing.
    for (let round = 0; round < 10; round++) {
      const jobId = 100 + round;
      await store.pool.query("INSERT INTO jobs (id, kind, name, state) VALUES (?, 'full', ?, 'running')", [jobId, `claims-at-once-${round}`]);
      await store.pool.query("INSERT INTO chunks (job_id, table_name, chunk_no) SELECT ?, 'member', seq FROM seq_0_to_2", [jobId]);
      const claims = claimsFor(jobId, 'p4');
      const answers = await Promise.all(Array.from({ length: 6 }, () => claims.next()));
      expect(answers.filter((a) => a !== null && 'chunk' in a).map((a) => (a as { chunk: { chunkNo: number } }).chunk.chunkNo).sort()).toEqual([0, 1, 2]);
      expect(answers.filter((a) => a === null)).toHaveLength(3);
    }
  });

  it("waits while another process holds a chunk, and takes it over once that process's lease runs out", async () => {
    await store.pool.query("INSERT INTO jobs (id, kind, name, state) VALUES (92, 'full', 'claims-2', 'running')");
    await store.pool.query("INSERT INTO chunks (job_id, table_name, chunk_no) SELECT 92, 'member', seq FROM seq_0_to_1");
    const other = claimsFor(92, 'p2');
    const first = await other.next();
    expect(first).toMatchObject({ chunk: { chunkNo: 0 } });
    const mine = claimsFor(92, 'p3');
    const second = await mine.next();
    expect(second).toMatchObject({ chunk: { chunkNo: 1 } });
    // Chunk 0 is p2's: p3 waits for it rather than stopping.
    expect(await mine.next()).toEqual({ waitMs: 1000 });
    await store.pool.query('UPDATE chunks SET lease_until = NOW(6) - INTERVAL 1 SECOND WHERE job_id = 92 AND chunk_no = 0');
    expect(await mine.next()).toMatchObject({ chunk: { chunkNo: 0, attempts: 2 } });
  });

  it('claims nothing once the run is stopping, also for workers already waiting their turn', async () => {
    await store.pool.query("INSERT INTO jobs (id, kind, name, state) VALUES (93, 'full', 'claims-3', 'running')");
    await store.pool.query("INSERT INTO chunks (job_id, table_name, chunk_no) SELECT 93, 'member', seq FROM seq_0_to_3");
    let stopping = false;
    const claims = claimsFor(93, 'p5', () => stopping);
    const first = claims.next();
    await new Promise((r) => setImmediate(r)); // its claim is under way
    const queued = [claims.next(), claims.next()];
    stopping = true; // e.g. the first worker's claim failed for good
    expect(await first).toMatchObject({ chunk: { chunkNo: 0 } });
    expect(await Promise.all(queued)).toEqual([null, null]);
    const [leased] = await store.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM chunks WHERE job_id = 93 AND state = 'leased'");
    expect(Number(leased[0]!.n)).toBe(1);
  });
});
