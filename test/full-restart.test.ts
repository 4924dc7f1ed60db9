import type { Pool, RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { startJobs, supersededJobs } from '../src/copy/job.js';
import type { ShardWriter } from '../src/target/writer.js';
import { runCli } from './support/cli.js';
import { copiedMemberEnv } from './support/copy-env.js';
import type { TestEnv } from './support/env.js';
import { memberId } from './support/nasty.js';
import { readShards } from './support/shards.js';

/**
 * `full --restart` copies into emptied shard tables. It used to copy over the earlier copy: a row
 * deleted on the legacy side since stayed on its shard, and sync, starting from the new job's
 * position, never deleted it (found by an operator review: restart exit 0, verify: extra).
 */
describe('full --restart', () => {
  let env: TestEnv;
  let writer: ShardWriter;

  beforeAll(async () => {
    ({ env, writer } = await copiedMemberEnv(120, { chunk_rows: 40 }));
  });
  afterAll(async () => {
    await writer?.close();
    await env?.cleanup();
  });

  it('a row deleted on the legacy side since the first copy is gone after the restart; verify is clean', async () => {
    const gone = memberId(17);
    expect((await readShards(writer, 'member')).has(gone)).toBe(true);
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query('DELETE FROM member WHERE member_id = ?', [gone]);
    await legacy.end();
    const restart = await runCli(['full', '--config', env.configPath, '--restart', '--json']);
    expect(restart.code, restart.stderr).toBe(0);
    const rows = await readShards(writer, 'member');
    expect(rows.has(gone)).toBe(false);
    expect(rows.size).toBe(119);
    const verify = await runCli(['verify', '--config', env.configPath, '--json']);
    expect(verify.code, verify.stdout).toBe(0);
    // The restarted job says it copied into emptied tables: sync's start positions from the job before no longer count.
    const control = await connectMysql(env.config.control.url);
    try {
      const jobs = await startJobs(control as unknown as Pool);
      const newest = jobs.reduce((a, b) => (b.id > a.id ? b : a));
      expect(newest).toMatchObject({ tables: ['member'], emptied: true });
      expect([...supersededJobs(jobs)]).toEqual(jobs.filter((j) => j.id < newest.id).map((j) => j.id));
    } finally {
      await control.end();
    }
  });

  it('is refused while MySQL serves the table (gray reads): nothing emptied; allowed again after the rollback', async () => {
    const set = await runCli(['gray', 'set', 'member', '--read', '1', '--force', '--reason', 'restart test', '--config', env.configPath]);
    expect(set.code, set.stderr).toBe(0);
    const refused = await runCli(['full', '--config', env.configPath, '--restart']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('table member: full --restart empties its shard tables, but MySQL serves it now (gray read 1%)');
    // The dry run is refused the same way; it promised a restart the run then refused (a runbook rehearsal passed).
    const rehearsal = await runCli(['full', '--config', env.configPath, '--restart', '--dry-run']);
    expect([rehearsal.code, rehearsal.stderr]).toEqual([2, refused.stderr]);
    expect((await readShards(writer, 'member')).size).toBe(119);
    expect((await runCli(['gray', 'rollback', 'member', '--to', '0', '--reason', 'restart test', '--config', env.configPath])).code).toBe(0);
    const restart = await runCli(['full', '--config', env.configPath, '--restart']);
    expect(restart.code, restart.stderr).toBe(0);
    expect((await readShards(writer, 'member')).size).toBe(119);
  });

  it('is allowed back in legacy_only after a shim rollback (its write percentage then means nothing), refused while a sync reports', async () => {
    const cli = async (...args: string[]) => {
      const r = await runCli([...args, '--config', env.configPath, '--force', '--reason', 'restart test']);
      expect(r.code, r.stderr).toBe(0);
    };
    await cli('shim', 'set', 'member', 'dual_legacy_primary');
    await cli('shim', 'set', 'member', 'legacy_only');
    const control = await connectMysql(env.config.control.url);
    try {
      const [gray] = await control.query<RowDataPacket[]>("SELECT value FROM settings WHERE table_name = 'member' AND kind = 'gray'");
      expect(JSON.parse(String(gray[0]!.value)).write_bp).toBe(10000); // what the rollback to legacy_only leaves
      // A sync that reported a moment ago (its offset mirror row), then one silent for a minute.
      await control.query("INSERT INTO cdc_offsets (consumer_group, topic, partition_no, next_offset) VALUES ('restart-test', 't', 0, 5)");
      const refused = await runCli(['full', '--config', env.configPath, '--restart']);
      expect(refused.code, refused.stderr).toBe(2);
      expect(refused.stderr).toMatch(/full --restart while sync runs \(consumer group restart-test reported \d+ s ago\) .*one that has stopped counts as running until 30 s after its last report/);
      const rehearsal = await runCli(['full', '--config', env.configPath, '--restart', '--dry-run']);
      expect([rehearsal.code, rehearsal.stderr]).toEqual([2, refused.stderr]);
      // The refused restart left the job it would have replaced as it was.
      const [jobs] = await control.query<RowDataPacket[]>("SELECT state FROM jobs WHERE kind = 'full' ORDER BY id DESC LIMIT 1");
      expect(jobs[0]!.state).toBe('done');
      await control.query("UPDATE cdc_offsets SET updated_at = NOW(6) - INTERVAL 60 SECOND WHERE consumer_group = 'restart-test'");
      const restart = await runCli(['full', '--config', env.configPath, '--restart']);
      expect(restart.code, restart.stderr).toBe(0);
    } finally {
      await control.query("DELETE FROM cdc_offsets WHERE consumer_group = 'restart-test'");
      await control.end();
    }
    expect((await readShards(writer, 'member')).size).toBe(119);
  });

  it('is refused while another job still copies the table (its workers would write into the emptied tables); dry run alike', async () => {
    const control = await connectMysql(env.config.control.url);
    const [res] = await control.query("INSERT INTO jobs (kind, name, state, options) VALUES ('full', 'address,member', 'running', '{\"tables\":[\"address\",\"member\"]}')");
    const other = (res as { insertId: number }).insertId;
    try {
      const message = `member is being copied by full copy job ${other} (address,member, running): a --restart of member would empty it while that job still writes; let it finish first (full --tables address,member), or restart that job itself (--tables address,member --restart); either needs every table of that job in the config: put back one taken out since`;
      for (const args of [['--restart'], ['--restart', '--dry-run']]) {
        const refused = await runCli(['full', '--config', env.configPath, ...args]);
        expect(refused.code).toBe(2);
        expect(refused.stderr).toContain(message);
      }
      expect((await readShards(writer, 'member')).size).toBeGreaterThan(0);
    } finally {
      await control.query('DELETE FROM jobs WHERE id = ?', [other]);
      await control.end();
    }
  });

  it('init re-creating a dropped shard table of a copied table says it is empty (exit 1); verify --repair fills it', async () => {
    const shard = writer.map.shardOf(memberId(3));
    const db = writer.map.databaseOf(shard);
    const server = writer.map.serverOf(shard);
    const conn = await connectMysql(server.primary);
    await conn.query(`DROP TABLE \`${db}\`.member`);
    await conn.end();
    // verify refuses it up front, as full does (it retried every chunk of it, then said: run again).
    const verify = await runCli(['verify', '--config', env.configPath]);
    expect(verify.code).toBe(2);
    expect(verify.stderr).toContain(`shard table ${db}.member does not exist (1 missing): run membermig init first`);
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stdout + init.stderr).toBe(1);
    expect(init.stdout).toMatch(/warning: 1 shard table of member \(\S+\) was created at \S+, but its full copy \(job \d+, done\) put rows in it before: it is empty/);
    const json = await runCli(['init', '--config', env.configPath, '--json']);
    expect(json.code).toBe(1); // created once, but still empty: said again (test/init-recreated.test.ts)
    expect((await readShards(writer, 'member')).has(memberId(3))).toBe(false);
    expect((await runCli(['verify', '--config', env.configPath, '--repair', '--tables', 'member'])).code).toBe(0);
    expect((await readShards(writer, 'member')).size).toBe(119);
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
  });
});
