import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RowDataPacket } from 'mysql2/promise';
import { silentLogger } from '../src/log.js';
import { connectMysql } from '../src/mysql/connect.js';
import { runVerify } from '../src/verify/index.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { createMemberTable } from './support/nasty.js';

/**
 * `verify --watch` plans a new job, with a chunk row per chunk, every pass: the chunks table grew
 * by a table's chunk count a pass for as long as it watched (37 passes of a 10-chunk table: 370
 * rows; 10,000 chunks a pass for a billion rows). The chunks of finished verify jobs past the newest
 * KEPT_VERIFY_JOBS of a name are deleted (their results are in verify_runs).
 */
/** KEPT_VERIFY_JOBS in src/verify/runs.ts. */
const KEPT_VERIFY_JOBS = 20;

describe('verify --watch: the control store does not grow by a pass of chunks each pass', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 4, extra: { verify: { chunk_rows: 100, recheck_after_seconds: 0 } } });
    await createMemberTable(env.legacyUrl, 300);
    for (const args of [['init'], ['full']]) {
      const r = await runCli([...args, '--config', env.configPath]);
      expect(r.code, r.stderr).toBe(0);
    }
  }, 120_000);
  afterAll(async () => env?.cleanup());

  it('keeps the chunks of the newest finished jobs only', async () => {
    const controller = new AbortController();
    const PASSES = KEPT_VERIFY_JOBS + 10;
    let passes = 0;
    const r = await runVerify(env.config, {
      logger: silentLogger,
      watchSeconds: 0.01,
      signal: controller.signal,
      onPass: () => {
        if (++passes === PASSES) controller.abort();
      },
    });
    expect(r.passes).toBe(PASSES);
    expect(r.state).toBe('clean');
    const control = await connectMysql(env.config.control.url);
    const [[perPass]] = await control.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM chunks WHERE job_id = ?', [r.jobId]);
    const [[all]] = await control.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM chunks c JOIN jobs j ON j.id = c.job_id WHERE j.kind = 'verify'");
    const [[runs]] = await control.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM verify_runs');
    await control.end();
    expect(Number(perPass!.n)).toBeGreaterThanOrEqual(3);
    expect(Number(runs!.n)).toBe(PASSES); // the history of runs is kept
    expect(Number(all!.n)).toBeLessThanOrEqual((KEPT_VERIFY_JOBS + 1) * Number(perPass!.n));
  }, 180_000);
});
