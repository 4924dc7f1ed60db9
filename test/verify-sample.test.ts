import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleChunks } from '../src/verify/plan.js';
import { runCli } from './support/cli.js';
import { copyTable } from './support/copy-rows.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/** A sequence of numbers in [0, 1) that repeats: a stand-in for Math.random that makes a sample reproducible. */
const cycle = (values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length]!;
};

describe('verify --sample weighs chunks by their rows', () => {
  it('equal weights keep about that share of the chunks; an empty range is seldom taken, a dense one always', () => {
    const chunks = Array.from({ length: 10 }, (_, i) => i);
    expect(sampleChunks(chunks, chunks.map(() => 1), 30, cycle([0.1, 0.5, 0.9, 0.25]))).toEqual([0, 3, 4, 7, 8]);
    // One dense range among empty ones (a sparse key): 10% of the rows is in the dense one.
    const weights = [1, 1, 5000, 1, 1, 1, 1, 1, 1, 1];
    expect(sampleChunks(chunks, weights, 10, cycle([0.05]))).toEqual([2]);
    expect(sampleChunks(chunks, weights, 10, cycle([0.99]))).toEqual([2]);
    // Never none: one chunk drawn by weight.
    expect(sampleChunks(chunks, chunks.map(() => 1), 0.01, cycle([0.999, 0.999, 0.999, 0.999, 0.999, 0.999, 0.999, 0.999, 0.999, 0.999, 0.35]))).toEqual([3]);
    expect(sampleChunks(chunks, chunks.map(() => 0), 100, cycle([0.5]))).toEqual(chunks);
  });

  describe('on a sparse integer key (value ranges, mostly empty)', () => {
    let env: TestEnv;
    const DENSE = 1000;

    beforeAll(async () => {
      env = await createTestEnv({
        shardCount: 4,
        tables: { sparse: { source: 'legacy.sparse', target: 'sparse', shard_key: 'id' } },
        legacySql: [
          'CREATE TABLE sparse (id BIGINT NOT NULL PRIMARY KEY, v VARCHAR(20) NOT NULL)',
          `INSERT INTO sparse SELECT seq, CONCAT('v', seq) FROM seq_1_to_${DENSE}`,
          "INSERT INTO sparse VALUES (1000000000000, 'far away')",
          'ANALYZE TABLE sparse',
        ],
        // 50-row chunks: the 1,001 rows are planned as ~20 equal ranges of values, the first holding 1,000 of them.
        extra: { verify: { chunk_rows: 50, workers: 2, recheck_after_seconds: 0 } },
      });
      const init = await runCli(['init', '--config', env.configPath]);
      expect(init.code, init.stderr).toBe(0);
      expect(await copyTable(env.config, 'sparse')).toBe(DENSE + 1);
    });
    afterAll(async () => env?.cleanup());

    it('a 10% sample compares the dense range, not a few empty ones (it said clean after comparing no row)', async () => {
      const res = await runCli(['verify', '--config', env.configPath, '--sample', '10', '--json']);
      expect(res.code, res.stderr).toBe(0);
      const table = JSON.parse(res.stdout).result.tables[0];
      expect(table.chunksTotal).toBeLessThan(5);
      expect(table).toMatchObject({ table: 'sparse', state: 'clean', differences: 0 });
      expect(table.rowsSource).toBeGreaterThanOrEqual(DENSE);
    });
  });
});
