import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../../src/mysql/connect.js';
import { shardMapFromConfig } from '../../src/shard/map.js';
import { execCli, runCli } from '../support/cli.js';
import { createCopyEnv } from '../support/copy-env.js';
import type { TestEnv } from '../support/env.js';
import { compareTable } from '../support/compare.js';
import { controlNumber, faultPoints, faultTimeout, killAfter, expectConverged, seededRandom, startCli, waitFor } from '../support/faults.js';
import { createMemberTable, memberId } from '../support/nasty.js';

/**
 * kill -9 of `full` and `verify --repair` at seeded random moments (3 each in CI, SOAK_POINTS in the
 * soak), then a rerun: the shards equal the legacy table row by row (nasty values: 64-bit ids,
 * DECIMAL(38,10), DATETIME(6), latin1/gbk text, bytes with NUL/tab/newline). copy's own test kills at
 * fixed points (test/full-resume.test.ts) and verify's kills a verifier without --repair
 * (test/verify-process.test.ts); these kill at random ones, with writes to the shards in flight.
 */

const ROWS = 2000;

describe('kill -9 anywhere, then rerun: nothing lost, duplicated or bent', () => {
  let env: TestEnv;
  const random = seededRandom();
  const compare = () => compareTable(env.config, env.legacyUrl, 'member', 'member', ['member_id'], 'member_id');

  beforeAll(async () => {
    env = await createCopyEnv({
      shardCount: 8,
      tables: (db) => ({ member: { source: `${db}.member`, target: 'member', shard_key: 'member_id' } }),
      // Short leases: a killed verifier's chunk is taken over within seconds.
      extra: { copy: { chunk_rows: 100, batch_rows: 40, workers: 2, lease_seconds: 3 }, verify: { chunk_rows: 100, workers: 2, recheck_after_seconds: 0 } },
    });
    await createMemberTable(env.legacyUrl, ROWS);
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
  });
  afterAll(async () => env?.cleanup());

  it('full killed at random points, rerun to the end: every row once, byte-identical', async () => {
    const points = faultPoints();
    let killed = 0;
    for (let i = 0; i < points; i++) {
      // Throttled so the copy lasts a few seconds; the kill lands anywhere from start-up to the last chunks.
      const child = startCli(['full', '--config', env.configPath, '--max-rows-per-sec', '800', '--log-level', 'warn']);
      // From the moment the job exists (start-up time varies with the machine's load).
      await waitFor('the copy job', async () => child.proc.exitCode !== null || (await controlNumber(env.config, "SELECT COUNT(*) AS n FROM jobs WHERE kind = 'full'")) > 0);
      const interrupted = await killAfter(child, random() * 2500);
      // Finished before the kill landed (or just as it did): nothing left to interrupt.
      if (!interrupted || (await controlNumber(env.config, "SELECT COUNT(*) AS n FROM jobs WHERE kind = 'full' AND state = 'done'")) > 0) break;
      killed++;
    }
    // At least one kill left work undone, for the rerun below to finish.
    expect(killed).toBeGreaterThan(0);

    const final = await execCli(['full', '--config', env.configPath, '--json']);
    expect(final.code, final.stderr.slice(-2000)).toBe(0);
    expect(JSON.parse(final.stdout).result.state).toBe('done');
    expectConverged(await compare(), 'kill -9 full', killed, ROWS);
  }, faultTimeout(12_000));

  it('verify --repair killed at random points while repairing, rerun: the shards equal legacy again', async () => {
    const map = shardMapFromConfig(env.config);
    const points = faultPoints();
    let killed = 0;
    for (let i = 0; i < points; i++) {
      // Damage: rows deleted, values bent, and a stray copy in the wrong shard.
      await damageShards(env, map, random, 30);
      // A one-second re-check delay keeps each run busy for a few seconds; the kill lands anywhere
      // from planning, through checking and re-checking, to rewriting rows.
      const child = startCli(['verify', '--config', env.configPath, '--repair', '--log-level', 'info', '--workers', '1', '--recheck-after', '1']);
      await waitFor('the verify job', async () => child.proc.exitCode !== null || /verify job planned|joined a running verify job/.test(child.stderr));
      if (await killAfter(child, random() * 2500)) killed++;
    }
    expect(killed).toBeGreaterThan(0);

    const final = await execCli(['verify', '--config', env.configPath, '--repair', '--json']);
    // A run that joins a killed run's job counts each chunk's final result, so stale difference
    // records of the killed attempts do not make it end with differences.
    expect(final.code, final.stderr.slice(-2000)).toBe(0);
    // Each run joined the killed run's job and skipped the chunks it had finished, so damage made
    // between runs in a chunk already checked is for the next job: it finds and repairs it.
    const next = await execCli(['verify', '--config', env.configPath, '--repair', '--json']);
    expect(next.code, next.stderr.slice(-2000)).toBe(0);
    expectConverged(await compare(), 'kill -9 verify --repair', killed, ROWS);
    // A plain verify afterwards agrees: clean.
    const after = await execCli(['verify', '--config', env.configPath, '--json']);
    expect(after.code, after.stdout.slice(-2000)).toBe(0);
  }, faultTimeout(15_000));
});

/** Deletes, bends and misplaces `count` random member rows directly in the shards. */
async function damageShards(env: TestEnv, map: ReturnType<typeof shardMapFromConfig>, random: () => number, count: number): Promise<void> {
  for (let n = 0; n < count; n++) {
    const id = memberId(Math.floor(random() * ROWS));
    const shard = map.shardOf(id);
    const conn = await connectMysql(map.serverOf(shard).primary, { database: map.databaseOf(shard) });
    try {
      const kind = n % 3;
      if (kind === 0) await conn.query('DELETE FROM member WHERE member_id = ?', [id]);
      else if (kind === 1) await conn.query("UPDATE member SET note = CONCAT(COALESCE(note, ''), ' bent'), balance = 1.5 WHERE member_id = ?", [id]);
      else {
        const other = (shard + 1) % map.count;
        const [rows] = await conn.query('SELECT * FROM member WHERE member_id = ?', [id]);
        const row = (rows as Record<string, unknown>[])[0];
        if (row) {
          const stray = await connectMysql(map.serverOf(other).primary, { database: map.databaseOf(other) });
          await stray.query('REPLACE INTO member SET ?', [row]).finally(() => stray.end());
        }
      }
    } finally {
      await conn.end();
    }
  }
}
