import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunksLeftBeyond, chunksTakenOver, claimChunks, completeChunks, renewLeases, type Chunk } from '../src/store/leases.js';
import { openControlStore, setupControlStore, type ControlStore } from '../src/store/control.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/** Chunk leases on the real control store: the order claims take chunks in. */
describe('chunk claims', () => {
  let env: TestEnv;
  let store: ControlStore;
  beforeAll(async () => {
    env = await createTestEnv();
    await setupControlStore(env.config);
    store = openControlStore(env.config);
    await store.pool.query("INSERT INTO jobs (id, kind, name, state) VALUES (77, 'verify', 'leases', 'running')");
    await store.pool.query("INSERT INTO chunks (job_id, table_name, chunk_no) SELECT 77, 'member', seq FROM seq_0_to_4999");
    await store.pool.query("UPDATE chunks SET state = 'done' WHERE job_id = 77 AND chunk_no < 4000");
  });
  afterAll(async () => {
    await store?.close();
    await env?.cleanup();
  });

  it('takes expired leases first, then pending chunks in order, each once; a live lease is left alone', async () => {
    const first = await claimChunks(store.pool, 77, 'w1', 60, 8);
    expect(first.map((c) => c.chunkNo)).toEqual([4000, 4001, 4002, 4003, 4004, 4005, 4006, 4007]);
    // w1 dies: the lease of 4002 runs out; 4003 is still held.
    await store.pool.query('UPDATE chunks SET lease_until = NOW(6) - INTERVAL 1 SECOND WHERE job_id = 77 AND chunk_no = 4002');
    const second = await claimChunks(store.pool, 77, 'w2', 60, 4);
    expect(second.map((c) => [c.chunkNo, c.attempts])).toEqual([
      [4002, 2],
      [4008, 1],
      [4009, 1],
      [4010, 1],
    ]);
    const [owners] = await store.pool.query('SELECT chunk_no, lease_owner FROM chunks WHERE job_id = 77 AND chunk_no IN (4002, 4003) ORDER BY chunk_no');
    expect(owners).toEqual([
      { chunk_no: 4002, lease_owner: 'w2' },
      { chunk_no: 4003, lease_owner: 'w1' },
    ]);
    // w1 (alive after all, cut off from the control store) learns which of its chunks were taken over.
    expect((await chunksTakenOver(store.pool, first)).map((c) => c.chunkNo)).toEqual([4002]);
    expect(await chunksTakenOver(store.pool, second)).toEqual([]);
  });

  it('claims racing with completions of other chunks neither deadlock nor hand a chunk out twice', async () => {
    await store.pool.query("INSERT INTO jobs (id, kind, name, state) VALUES (78, 'verify', 'race', 'running')");
    await store.pool.query("INSERT INTO chunks (job_id, table_name, chunk_no) SELECT 78, 'member', seq FROM seq_0_to_1199");
    const claimed: number[] = [];
    // Six workers, each claiming 8 at a time and completing its previous batch while others claim:
    // what verify's feed does. Under REPEATABLE READ this deadlocked (gap locks on chunks_pending).
    const worker = async (name: string) => {
      let held: Chunk[] = [];
      for (;;) {
        const [next] = await Promise.all([claimChunks(store.pool, 78, name, 60, 8), held.length > 0 ? completeChunks(store.pool, name, held.map((chunk) => ({ chunk, rowsDone: 1, result: null }))) : 0]);
        claimed.push(...next.map((c) => c.chunkNo));
        held = next;
        if (next.length === 0) return;
      }
    };
    await Promise.all(['a', 'b', 'c', 'd', 'e', 'f'].map(worker));
    expect(claimed.length).toBe(1200);
    expect(new Set(claimed).size).toBe(1200);
    const [left] = await store.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM chunks WHERE job_id = 78 AND state <> 'done'");
    expect(Number(left[0]!.n)).toBe(0);
  });

  it('reads the pending chunks through their index, not past the chunks already done', async () => {
    const [plan] = await store.pool.query<RowDataPacket[]>(
      "EXPLAIN SELECT chunk_no FROM chunks FORCE INDEX (chunks_pending) WHERE job_id = 77 AND state = 'pending' ORDER BY table_name, chunk_no LIMIT 8",
    );
    // In index order: the LIMIT stops the read after 8 entries (no sort of every pending chunk).
    expect(plan[0]).toMatchObject({ key: 'chunks_pending', type: 'ref' });
    expect(String(plan[0]!.Extra)).not.toMatch(/filesort/);
  });

  it('renewal extends only the leases in hand: a chunk whose claim reply was lost runs out and is taken up again', async () => {
    await store.pool.query("INSERT INTO jobs (id, kind, name, state) VALUES (79, 'full', 'orphan', 'running')");
    await store.pool.query("INSERT INTO chunks (job_id, table_name, chunk_no) SELECT 79, 'member', seq FROM seq_0_to_3");
    const inHand = await claimChunks(store.pool, 79, 'w9', 60, 2);
    // The next claim commits but its reply never arrives: w9 leases chunk 2 without knowing it.
    const lost = await claimChunks(store.pool, 79, 'w9', 1, 1);
    expect(lost.map((c) => c.chunkNo)).toEqual([2]);
    await completeChunks(store.pool, 'w9', [{ chunk: (await claimChunks(store.pool, 79, 'w9', 60, 1))[0]!, rowsDone: 1, result: null }]);
    expect(await renewLeases(store.pool, 79, 'w9', 60, inHand)).toBe(2);
    // With every chunk w9 knows of in hand, the orphan still counts as left: w9 waits for it.
    expect(await chunksLeftBeyond(store.pool, 79, 'w9', inHand)).toBe(true);
    await new Promise((r) => setTimeout(r, 1200));
    expect(await renewLeases(store.pool, 79, 'w9', 60, inHand)).toBe(2);
    const retaken = await claimChunks(store.pool, 79, 'w9', 60, 4);
    expect(retaken.map((c) => [c.chunkNo, c.attempts])).toEqual([[2, 2]]);
    expect(await chunksLeftBeyond(store.pool, 79, 'w9', [...inHand, ...retaken])).toBe(false);
    // Another worker's live lease counts as left too (it finishes it, or it is taken over at expiry).
    expect(await chunksLeftBeyond(store.pool, 79, 'w8', [])).toBe(true);
  });
});
