import type { Connection, Pool, RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApplyRuntime, type ApplyRuntime } from '../src/cdc/runtime.js';
import { checkGates } from '../src/gray/gates.js';
import { silentLogger } from '../src/log.js';
import { connectMysql } from '../src/mysql/connect.js';
import { runCli, watchCli, type WatchedCli } from './support/cli.js';
import { createCopyEnv, memberTables } from './support/copy-env.js';
import type { TestEnv } from './support/env.js';
import { createMemberTable, createTagTable } from './support/nasty.js';

/**
 * Two `full` runs of different table sets started at once, as CI jobs start them. Each job name has
 * its own planning lock, so the refusals that compare one job's tables with the others' (a table in
 * two jobs; a --restart under another job's copy) must not be decided by both before either job
 * exists. The window between the check and the job's row (the CDC start positions are read there:
 * the source, Kafka) is held open here by a transaction that keeps cdc_start_positions locked.
 */
describe('full: runs of overlapping table sets started at once', () => {
  let env: TestEnv;
  let control: Connection;
  const q = async (sql: string, values: unknown[] = []) => (await control.query<RowDataPacket[]>(sql, values))[0];

  beforeAll(async () => {
    env = await createCopyEnv({ shardCount: 4, tables: memberTables, extra: { copy: { chunk_rows: 50, workers: 2 } } });
    await createMemberTable(env.legacyUrl, 200);
    await createTagTable(env.legacyUrl, 60);
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
    control = await connectMysql(env.config.control.url);
  });
  afterAll(async () => {
    await control?.end();
    await env?.cleanup();
  });

  /** Processes of this control store waiting: to record a job's start positions, or for a named lock. */
  const waiting = async () =>
    Number(
      (
        await q(
          `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()
            AND (INFO LIKE 'INSERT INTO cdc_start_positions%' OR (INFO LIKE 'SELECT GET_LOCK%' AND STATE = 'User lock'))`,
        )
      )[0]!.n,
    );
  const until = async (n: number) => {
    const deadline = Date.now() + 30_000;
    while ((await waiting()) < n) {
      if (Date.now() > deadline) throw new Error(`fewer than ${n} runs reached the job's creation`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  /** Runs `first`, then `second` once the first is about to create its job; both are let go together. */
  async function startedTogether(first: string[], second: string[]): Promise<[WatchedCli, WatchedCli]> {
    const holder = await connectMysql(env.config.control.url);
    try {
      await holder.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await holder.beginTransaction();
      await holder.query('SELECT * FROM cdc_start_positions FOR UPDATE'); // every gap: no start position can be recorded
      const a = watchCli(['full', '--config', env.configPath, '--json', ...first]);
      await until(1);
      const b = watchCli(['full', '--config', env.configPath, '--json', ...second]);
      await until(2);
      await holder.commit();
      return [a, b];
    } finally {
      await holder.end();
    }
  }

  const liveJobsOf = async (table: string) =>
    (await q("SELECT id, name, options FROM jobs WHERE kind = 'full' AND state IN ('planning', 'running', 'done')")).filter((j) =>
      (typeof j.options === 'string' ? JSON.parse(j.options) : j.options).tables.includes(table),
    );

  it('full --tables member and full (both tables): one job copies member, the other run is refused', async () => {
    const [one, all] = await startedTogether(['--tables', 'member'], []);
    const codes = [await one.closed, await all.closed];
    expect(codes, one.stderr + all.stderr).toEqual([0, 2]);
    expect(all.stderr).toContain('member is in full copy job');
    expect((await liveJobsOf('member')).map((j) => j.name)).toEqual(['member']);
  }, 120_000);

  it('full --restart --tables member while full of both tables starts: the restart never empties a table another job copies', async () => {
    await q("UPDATE jobs SET state = 'abandoned' WHERE kind = 'full'");
    const copied = await runCli(['full', '--config', env.configPath, '--tables', 'member']);
    expect(copied.code, copied.stderr).toBe(0);
    const [restart, all] = await startedTogether(['--tables', 'member', '--restart'], []);
    const codes = [await restart.closed, await all.closed];
    expect(codes, restart.stderr + all.stderr).toEqual([0, 2]);
    expect(all.stderr).toContain('member is in full copy job');
    expect((await liveJobsOf('member')).map((j) => j.name)).toEqual(['member']);
  }, 120_000);

  it('a verify run while a --restart waits to empty the shard tables does not vouch for the copy that replaces them', async () => {
    // A process of the old job elsewhere, still heartbeating: the restart waits for it before emptying.
    const [old] = await q("SELECT id FROM jobs WHERE kind = 'full' AND name = 'member' AND state = 'done'");
    await q("INSERT INTO workers (id, job_id, command, host, pid, heartbeat_at) VALUES ('elsewhere:1:v', ?, 'full', 'elsewhere', 1, NOW(6))", [old!.id]);
    const restart = watchCli(['full', '--config', env.configPath, '--json', '--tables', 'member', '--restart']);
    try {
      await restart.untilLogged('waiting for the processes still copying the earlier job to stop');
      // The old copy is still in the shards: clean.
      const verify = await runCli(['verify', '--config', env.configPath, '--tables', 'member']);
      expect(verify.code, verify.stdout).toBe(0);
    } finally {
      await q("DELETE FROM workers WHERE id = 'elsewhere:1:v'");
    }
    expect(await restart.closed, restart.stderr).toBe(0);
    expect(restart.stderr).toContain('--restart: emptying the shard tables before copying again');
    // Those rows were emptied after the run checked them: the run vouches for nothing now.
    const gate = (await checkGates(control as unknown as Pool, env.config, 'member')).find((g) => g.gate === 'verify')!;
    expect(gate.ok, gate.message).toBe(false);
    expect(gate.message).toMatch(/full copy job \d+ of member/);
  }, 120_000);

  it('sync starting while a full starts: sync waits for the job and is refused; a sync running (not yet reporting) refuses full', async () => {
    const holder = await connectMysql(env.config.control.url);
    let restart: WatchedCli;
    let sync: Promise<ApplyRuntime>;
    try {
      await holder.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await holder.beginTransaction();
      await holder.query('SELECT * FROM cdc_start_positions FOR UPDATE');
      restart = watchCli(['full', '--config', env.configPath, '--json', '--tables', 'member', '--restart']);
      await until(1); // past its checks, its job not yet created
      sync = openApplyRuntime(env.config, silentLogger, () => false);
      const passed = sync.then(() => 'sync passed its check while a full was starting');
      // It waits for full's start lock; alone, its check ran before the job existed and it went on.
      expect(await Promise.race([until(2).then(() => 'waiting'), passed.catch(() => 'refused')])).toBe('waiting');
      await holder.commit();
    } finally {
      await holder.end();
    }
    await expect(sync).rejects.toThrow(/sync while full copy job \d+ \(member\) has work left/);
    expect(await restart.closed, restart.stderr).toBe(0);

    // A sync that has started but reported nothing yet is seen by full.
    const running = await openApplyRuntime(env.config, silentLogger, () => false);
    try {
      const refused = await runCli(['full', '--config', env.configPath, '--tables', 'member', '--restart']);
      expect(refused.code, refused.stderr).toBe(2);
      expect(refused.stderr).toMatch(/full --restart while sync runs \(sync process [^ ]+ seen \d+ s ago\)/);
    } finally {
      await running.close();
    }
    expect((await runCli(['full', '--config', env.configPath, '--tables', 'member', '--restart'])).code).toBe(0);
  }, 120_000);
});
