import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { execCli, runCli, spawnCli, watchCli } from './support/cli.js';
import { copyTable } from './support/copy-rows.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { createMemberTable, memberId } from './support/nasty.js';

/** verify as real processes: killed with -9 while holding a lease, and --watch stopped by SIGTERM. */
describe('verify processes', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv({
      shardCount: 4,
      extra: { verify: { chunk_rows: 50, workers: 2, recheck_after_seconds: 0 }, copy: { lease_seconds: 2 } },
    });
    await createMemberTable(env.legacyUrl, 200);
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
    await copyTable(env.config, 'member');
  });
  afterAll(async () => env?.cleanup());

  /** Changes member n's name on its shard; returns its id. */
  const damage = async (n: number, name: string): Promise<string> => {
    const map = shardMapFromConfig(env.config);
    const id = memberId(n);
    const shard = map.shardOf(id);
    const conn = await connectMysql(map.serverOf(shard).primary, { database: map.databaseOf(shard) });
    await conn.query('UPDATE member SET name = ? WHERE member_id = ?', [name, id]);
    await conn.end();
    return id;
  };

  /** Starts a verifier that finds a difference and waits 60 s to re-check it (holding its chunk's lease), and kills it with -9 there. */
  const killVerifierHoldingALease = async (config: string, extra: string[] = []): Promise<void> => {
    const verifier = watchCli(['verify', '--config', config, ...extra, '--recheck-after', '60', '--log-level', 'info']);
    await verifier.untilLogged('re-checking after the delay');
    verifier.child.kill('SIGKILL');
    await verifier.closed;
  };

  it('a verifier killed with -9 mid-run: the rerun joins its job, takes over the expired lease and finishes it', async () => {
    const id = await damage(42, 'changed');
    await killVerifierHoldingALease(env.configPath);

    const rerun = await execCli(['verify', '--config', env.configPath, '--json', '--recheck-after', '0']);
    expect(rerun.code, rerun.stderr).toBe(1);
    const r = JSON.parse(rerun.stdout).result;
    expect(r.differences.map((d: { key: string[]; kind: string; columns: string[] }) => [d.key[0], d.kind, d.columns])).toEqual([[id, 'different', ['name']]]);
    expect(r.tables[0]).toMatchObject({ state: 'differences', rowsSource: 200, rowsTarget: 200 });
    expect(r.tables[0].chunksChecked).toBe(r.tables[0].chunksTotal);
    const control = await connectMysql(env.config.control.url);
    const [runs] = await control.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM verify_runs');
    const [jobs] = await control.query<RowDataPacket[]>("SELECT COUNT(*) AS n, MAX(state) AS state FROM jobs WHERE kind = 'verify'");
    const [attempts] = await control.query<RowDataPacket[]>('SELECT MAX(attempts) AS a FROM chunks');
    await control.end();
    // One job, one run: the rerun joined the killed verifier's job; the chunk it held was checked twice.
    expect(Number(runs[0]!.n)).toBe(1);
    expect(Number(jobs[0]!.n)).toBe(1);
    expect(jobs[0]!.state).toBe('done');
    expect(Number(attempts[0]!.a)).toBe(2);

    expect((await runCli(['verify', '--config', env.configPath, '--repair'])).code).toBe(0);
  });

  it('a verifier killed with -9 under a 10-minute lease: the rerun on the same host takes its chunks at once (the process is gone), not at lease expiry', async () => {
    const id = await damage(44, 'held');
    const raw = env.raw as { copy: Record<string, unknown> };
    const config = join(dirname(env.configPath), 'long-leases.yaml');
    writeFileSync(config, stringify({ ...raw, copy: { ...raw.copy, lease_seconds: 600 } }));
    await killVerifierHoldingALease(config, ['--restart']);

    // Waiting out the lease would take 10 minutes: the rerun is given 60 s.
    const rerun = spawnCli(['verify', '--config', config, '--json', '--recheck-after', '0', '--log-level', 'debug']);
    let stdout = '';
    let log = '';
    rerun.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    rerun.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const tooLong = setTimeout(() => rerun.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>((resolve) => rerun.on('close', resolve));
    clearTimeout(tooLong);
    expect(code, log).toBe(1);
    expect(log, log).toContain('took over the chunks of a dead worker on this host');
    const r = JSON.parse(stdout).result;
    expect(r.differences.map((d: { key: string[] }) => d.key[0])).toEqual([id]);
    expect(r.tables[0].chunksChecked).toBe(r.tables[0].chunksTotal);
    expect((await runCli(['verify', '--config', env.configPath, '--repair'])).code).toBe(0);
  }, 120_000);

  it('--restart abandons a killed verifier\'s job and checks every chunk again', async () => {
    // A difference keeps the first verifier waiting for its re-check (60 s): it cannot finish its job before the kill.
    const map = shardMapFromConfig(env.config);
    const id = memberId(43);
    const shard = map.shardOf(id);
    const conn = await connectMysql(map.serverOf(shard).primary, { database: map.databaseOf(shard) });
    const [before] = await conn.query<RowDataPacket[]>('SELECT name FROM member WHERE member_id = ?', [id]);
    await conn.query("UPDATE member SET name = 'changed' WHERE member_id = ?", [id]);
    const child = spawnCli(['verify', '--config', env.configPath, '--recheck-after', '60', '--log-level', 'info']);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const deadline = Date.now() + 30_000;
    while (!stderr.includes('re-checking after the delay') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    await conn.query('UPDATE member SET name = ? WHERE member_id = ?', [before[0]!.name, id]);
    await conn.end();

    expect(stderr).toContain('verify job planned');
    expect(stderr).toContain('re-checking after the delay');
    const fresh = await execCli(['verify', '--config', env.configPath, '--json', '--restart']);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(JSON.parse(fresh.stdout).result.tables[0]).toMatchObject({ state: 'clean', rowsSource: 200, rowsTarget: 200 });
    const control = await connectMysql(env.config.control.url);
    const [jobs] = await control.query<RowDataPacket[]>("SELECT state FROM jobs WHERE kind = 'verify' ORDER BY id DESC LIMIT 2");
    const [runs] = await control.query<RowDataPacket[]>('SELECT state FROM verify_runs ORDER BY id DESC LIMIT 2');
    await control.end();
    expect(jobs.map((j) => j.state)).toEqual(['done', 'abandoned']);
    expect(runs.map((r) => r.state)).toEqual(['clean', 'abandoned']);
  });

  it('--watch prints each pass as it ends (one JSON document per line) until SIGTERM, and exits 0 when clean', async () => {
    const child = spawnCli(['verify', '--config', env.configPath, '--watch', '0.2', '--json', '--log-level', 'debug']);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const deadline = Date.now() + 30_000;
    // The passes show on stdout while it runs, not only once it is stopped.
    while (stdout.split('\n').filter(Boolean).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGTERM');
    const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
    expect(code, stderr).toBe(0);
    const docs = stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line));
    expect(docs.length).toBeGreaterThanOrEqual(2);
    expect(docs.map((d) => d.result.passes)).toEqual(docs.map((_d, i) => i + 1));
    expect(docs.every((d) => d.result.state === 'clean' && d.exitCode === 0)).toBe(true);
  });

  it('a chunk leased to the verifier without its knowing (a claim whose reply was lost) runs out and is checked again; the job finishes', async () => {
    const map = shardMapFromConfig(env.config);
    const id = memberId(7);
    const shard = map.shardOf(id);
    const conn = await connectMysql(map.serverOf(shard).primary, { database: map.databaseOf(shard) });
    await conn.query("UPDATE member SET name = 'orphan' WHERE member_id = ?", [id]);
    await conn.end();
    // The difference holds the verifier for its 3 s re-check delay: long enough to plant a lease in its name.
    const child = spawnCli(['verify', '--config', env.configPath, '--json', '--restart', '--recheck-after', '3', '--log-level', 'info']);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    const control = await connectMysql(env.config.control.url);
    try {
      // A chunk it already recorded, leased to it again as a claim whose reply was lost would leave it.
      const recorded = async () =>
        (
          await control.query<RowDataPacket[]>(
            `SELECT c.job_id, c.table_name, c.chunk_no, w.id AS worker FROM chunks c JOIN jobs j ON j.id = c.job_id JOIN workers w ON w.job_id = j.id
              WHERE j.kind = 'verify' AND j.state = 'running' AND c.state = 'done' ORDER BY c.chunk_no DESC LIMIT 1`,
          )
        )[0][0];
      const deadline = Date.now() + 30_000;
      while (!(await recorded()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const c = (await recorded())!;
      const [res] = await control.query(
        "UPDATE chunks SET state = 'leased', lease_owner = ?, lease_until = NOW(6) + INTERVAL 1 SECOND, attempts = attempts + 1 WHERE job_id = ? AND table_name = ? AND chunk_no = ? AND state = 'done'",
        [c.worker, c.job_id, c.table_name, c.chunk_no],
      );
      expect((res as { affectedRows: number }).affectedRows).toBe(1);
      // Renewing every lease in its name kept that chunk out of reach, and the verifier waited for it forever.
      expect(await closed, stderr).toBe(1);
      const r = JSON.parse(stdout).result;
      expect(r.tables[0]).toMatchObject({ state: 'differences', rowsSource: 200, rowsTarget: 200 });
      expect(r.tables[0].chunksChecked).toBe(r.tables[0].chunksTotal);
      const [left] = await control.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM chunks c JOIN jobs j ON j.id = c.job_id WHERE j.kind = 'verify' AND j.state <> 'abandoned' AND c.state <> 'done'");
      expect(Number(left[0]!.n)).toBe(0);
    } finally {
      await control.end();
      child.kill('SIGKILL');
    }
    expect((await runCli(['verify', '--config', env.configPath, '--repair'])).code).toBe(0);
  }, 60_000);

  it('SIGINT during a one-pass verify: chunks in hand are left for the next run at once, one JSON document, exit 1; the rerun finishes', async () => {
    const map = shardMapFromConfig(env.config);
    const id = memberId(99);
    const shard = map.shardOf(id);
    const conn = await connectMysql(map.serverOf(shard).primary, { database: map.databaseOf(shard) });
    await conn.query("UPDATE member SET name = 'interrupted' WHERE member_id = ?", [id]);
    await conn.end();
    // The difference holds its chunk for a 60 s re-check: the stop must not wait for it.
    const child = spawnCli(['verify', '--config', env.configPath, '--json', '--restart', '--recheck-after', '60', '--log-level', 'debug']);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    const deadline = Date.now() + 30_000;
    while (!stderr.includes('re-checking after the delay') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(stderr).toContain('re-checking after the delay');
    const asked = Date.now();
    child.kill('SIGINT');
    expect(await closed, stderr).toBe(1);
    expect(Date.now() - asked).toBeLessThan(15_000);
    const doc = JSON.parse(stdout);
    expect(doc).toMatchObject({ ok: false, exitCode: 1, result: { state: 'stopped' } });
    expect(doc.result.tables[0].state).toBe('running');
    const control = await connectMysql(env.config.control.url);
    const [leased] = await control.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM chunks WHERE job_id = ? AND state = 'leased'", [doc.result.jobId]);
    const [pending] = await control.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM chunks WHERE job_id = ? AND state = 'pending'", [doc.result.jobId]);
    await control.end();
    expect(Number(leased[0]!.n)).toBe(0);
    expect(Number(pending[0]!.n)).toBeGreaterThanOrEqual(1);

    const rerun = await execCli(['verify', '--config', env.configPath, '--json', '--recheck-after', '0']);
    expect(rerun.code, rerun.stderr).toBe(1);
    const r = JSON.parse(rerun.stdout).result;
    expect(r.jobId).toBe(doc.result.jobId);
    expect(r.differences.map((d: { key: string[] }) => d.key[0])).toEqual([id]);
    expect(r.tables[0].chunksChecked).toBe(r.tables[0].chunksTotal);
    expect((await runCli(['verify', '--config', env.configPath, '--repair'])).code).toBe(0);
  }, 90_000);
});
