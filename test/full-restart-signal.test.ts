import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import type { ShardWriter } from '../src/target/writer.js';
import { runCli, signalledAtStart, watchCli } from './support/cli.js';
import { copiedMemberEnv } from './support/copy-env.js';
import type { TestEnv } from './support/env.js';
import { memberId } from './support/nasty.js';
import { readShards } from './support/shards.js';

/**
 * A SIGINT while `full --restart` starts: the README promises it starts stopped. It used to drop
 * the job's progress and empty the shard tables anyway (found by an operator review: Ctrl-C 0.2 s
 * after the start, 300,000 rows to 0), and status then showed the abandoned job's rows.
 */
describe('a stop while full --restart starts', () => {
  const ROWS = 120;
  let env: TestEnv;
  let writer: ShardWriter;

  const fullJobs = async () => {
    const control = await connectMysql(env.config.control.url);
    try {
      const [rows] = await control.query<RowDataPacket[]>("SELECT id, state FROM jobs WHERE kind = 'full' ORDER BY id");
      return rows.map((r) => ({ id: Number(r.id), state: String(r.state) }));
    } finally {
      await control.end();
    }
  };
  const memberStatus = async () => {
    const status = await runCli(['status', '--config', env.configPath, '--json']);
    return JSON.parse(status.stdout).result.perTable.find((t: { table: string }) => t.table === 'member').fullCopy;
  };

  beforeAll(async () => {
    // Leases of 10 s: a process of the old job looks alive for that long after its last heartbeat.
    ({ env, writer } = await copiedMemberEnv(ROWS, { chunk_rows: 40, lease_seconds: 10 }));
  });
  afterAll(async () => {
    await writer?.close();
    await env?.cleanup();
  });

  it('a signal before the job is opened: no progress dropped, nothing emptied, exit 1; status still shows the copy', async () => {
    const before = await fullJobs();
    const stopped = await signalledAtStart(['full', '--config', env.configPath, '--restart', '--json'], 'SIGINT');
    expect((await readShards(writer, 'member')).size).toBe(ROWS);
    expect(stopped.code, stopped.stderr).toBe(1);
    expect(JSON.parse(stopped.stdout).result.errors.join('\n')).toContain('stopped on request before the restart: no progress was dropped');
    expect(stopped.stderr).not.toContain('progress of this job was dropped');
    expect(await fullJobs()).toEqual(before);
    expect(await memberStatus()).toMatchObject({ jobId: before.at(-1)!.id, state: 'done', rows: ROWS });
  });

  it('a signal after the progress was dropped, before emptying: nothing emptied, status shows the new job, the next full empties and copies', async () => {
    // A finished copy to restart (whatever the test before left).
    expect((await runCli(['full', '--config', env.configPath, '--restart'])).code).toBe(0);
    const old = (await fullJobs()).at(-1)!;
    expect(old.state).toBe('done');
    // A process still copying the old job (another host, fresh heartbeat): the restart waits for it before emptying.
    const control = await connectMysql(env.config.control.url);
    await control.query("INSERT INTO workers (id, job_id, command, host, pid) VALUES ('another-host.example:1:old', ?, 'full', 'another-host.example', 1)", [old.id]);
    try {
      const restart = watchCli(['full', '--config', env.configPath, '--restart', '--json']);
      await restart.untilLogged('waiting for the processes still copying the earlier job to stop');
      restart.child.kill('SIGINT');
      expect(await restart.closed, restart.stderr).toBe(1);
      expect((await readShards(writer, 'member')).size).toBe(ROWS);
    } finally {
      await control.query("DELETE FROM workers WHERE id = 'another-host.example:1:old'");
      await control.end();
    }
    // The old job's progress is gone: status shows the new job (nothing copied yet), not the abandoned one.
    const jobs = await fullJobs();
    expect(jobs.find((j) => j.id === old.id)!.state).toBe('abandoned');
    const current = jobs.at(-1)!;
    expect(current.id).toBeGreaterThan(old.id);
    expect(await memberStatus()).toMatchObject({ jobId: current.id, state: 'planning', stopped: true, chunksDone: 0, rows: 0 });
    // The next full finishes the restart: it empties the shard tables first, so a row deleted on the legacy side goes.
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query('DELETE FROM member WHERE member_id = ?', [memberId(5)]);
    await legacy.end();
    const rerun = await runCli(['full', '--config', env.configPath, '--json']);
    expect(rerun.code, rerun.stderr).toBe(0);
    const rows = await readShards(writer, 'member');
    expect(rows.has(memberId(5))).toBe(false);
    expect(rows.size).toBe(ROWS - 1);
  }, 90_000);
});
