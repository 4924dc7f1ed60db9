import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { silentLogger } from '../src/log.js';
import { runVerify } from '../src/verify/index.js';
import { runCli } from './support/cli.js';
import { copyTable } from './support/copy-rows.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * A verifier killed while it ended the job it shared: the job was left 'finishing' (set, then the
 * runs tallied, then 'done', in separate statements), and every other verifier of the job waited for
 * it for ever, a stop request included. The end is one transaction now; a job an earlier version left
 * 'finishing' (made here by hand, as the kill would) is ended by the next verifier.
 */
describe('verify: a verifier killed mid-job, and the verifier that goes on', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv({
      shardCount: 4,
      legacySql: [
        'CREATE TABLE member (member_id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL)',
        `INSERT INTO member VALUES ${Array.from({ length: 60 }, (_, i) => `(${i + 1}, 'n${i}')`).join(', ')}`,
      ],
      extra: { verify: { recheck_after_seconds: 0 } },
    });
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
    await copyTable(env.config, 'member');
  }, 120_000);
  afterAll(async () => env?.cleanup());

  it('the surviving verifier ends (it does not wait forever on the dead one\'s "finishing")', async () => {
    // A job planned and left with every chunk pending (a stop request before any chunk).
    const stopped = new AbortController();
    stopped.abort();
    const first = await runVerify(env.config, { logger: silentLogger, signal: stopped.signal, chunkRows: 10 });
    expect(first.state).toBe('stopped');
    const control = await connectMysql(env.config.control.url);
    try {
      const jobId = first.jobId;
      const [chunks] = await control.query<RowDataPacket[]>('SELECT chunk_no FROM chunks WHERE job_id = ? ORDER BY chunk_no', [jobId]);
      expect(chunks.length).toBeGreaterThan(2);
      const last = Number(chunks[chunks.length - 1]!.chunk_no);
      // Verifier A holds the last chunk (its lease still runs).
      await control.query("UPDATE chunks SET state = 'leased', lease_owner = 'dead-verifier', lease_until = NOW(6) + INTERVAL 120 SECOND, attempts = 1 WHERE job_id = ? AND chunk_no = ?", [jobId, last]);

      // Verifier B joins and checks the rest, then waits for A's chunk.
      const stopB = new AbortController();
      let returned = false;
      const b = runVerify(env.config, { logger: silentLogger, signal: stopB.signal }).then((r) => {
        returned = true;
        return r;
      });
      for (let i = 0; i < 200; i++) {
        const [open] = await control.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM chunks WHERE job_id = ? AND state <> 'done' AND chunk_no <> ?", [jobId, last]);
        if (Number(open[0]!.n) === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      // A completes its chunk, begins finishing the job (state 'finishing'), and is killed -9 there.
      await control.query(
        `UPDATE chunks SET state = 'done', rows_done = 10, result = '{"legacyRows":10,"targetRows":10,"differences":0,"repaired":0}', lease_owner = NULL, lease_until = NULL WHERE job_id = ? AND chunk_no = ?`,
        [jobId, last],
      );
      await control.query("UPDATE jobs SET state = 'finishing' WHERE id = ?", [jobId]);

      // B ends the job itself, within a few of its half-second looks.
      const deadline = Date.now() + 20_000;
      while (!returned && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      if (!returned) stopB.abort();
      expect(returned).toBe(true);
      const result = await b;
      expect(result.state).toBe('clean');
      const [job] = await control.query<RowDataPacket[]>('SELECT state FROM jobs WHERE id = ?', [jobId]);
      expect(job[0]!.state).toBe('done');
    } finally {
      await control.end();
    }
  }, 90_000);

  it("a chunk taken over from a killed verifier drops what the dead attempt recorded: the run lists only what it found", async () => {
    const stopped = new AbortController();
    stopped.abort();
    const first = await runVerify(env.config, { logger: silentLogger, signal: stopped.signal, chunkRows: 10 });
    const control = await connectMysql(env.config.control.url);
    try {
      const jobId = first.jobId;
      const [runs] = await control.query<RowDataPacket[]>('SELECT MAX(id) AS id FROM verify_runs');
      const runId = Number(runs[0]!.id);
      // The dead attempt had taken chunk 0, recorded a difference it then repaired, and was killed (its lease ran out).
      await control.query("UPDATE chunks SET state = 'leased', lease_owner = 'dead-verifier', lease_until = NOW(6) - INTERVAL 1 SECOND, attempts = 1 WHERE job_id = ? AND chunk_no = 0", [jobId]);
      await control.query("INSERT INTO verify_diffs (run_id, table_name, chunk_no, pk, shard, kind, repair_action, repaired_at) VALUES (?, 'member', 0, '[\"3\"]', 0, 'different', 'upsert', NOW(6))", [runId]);
      const result = await runVerify(env.config, { logger: silentLogger, chunkRows: 10 });
      expect(result.jobId).toBe(jobId);
      expect([result.state, result.differences]).toEqual(['clean', []]);
      const [left] = await control.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM verify_diffs WHERE run_id = ?', [runId]);
      expect(Number(left[0]!.n)).toBe(0);
    } finally {
      await control.end();
    }
  }, 90_000);
});
