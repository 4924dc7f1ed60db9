import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openJob } from '../src/copy/job.js';
import { silentLogger } from '../src/log.js';
import { connectMysql } from '../src/mysql/connect.js';
import { createSourceReader, describeTables } from '../src/source/index.js';
import { openControlStore } from '../src/store/control.js';
import type { Row } from '../src/rows/types.js';
import { createShardWriter, type ShardWriter } from '../src/target/writer.js';
import { execCli, runCli, spawnCli } from './support/cli.js';
import { createCopyEnv } from './support/copy-env.js';
import type { TestEnv } from './support/env.js';
import { createMemberTable, memberRow } from './support/nasty.js';
import { readShards } from './support/shards.js';

const ROWS = 1500;
const CHUNK = 60;

const asRow = (values: unknown[]): Row => values.map((v) => (v === null || v === undefined || Buffer.isBuffer(v) ? (v ?? null) : String(v))) as Row;

async function expectEveryRowOnce(writer: ShardWriter): Promise<void> {
  const back = await readShards(writer, 'member'); // also fails on a key found twice or in the wrong shard
  expect(back.size).toBe(ROWS);
  for (let i = 0; i < ROWS; i++) {
    const expected = asRow(memberRow(i));
    expect(back.get(expected[0] as string), `member ${i}`).toEqual(expected);
  }
}

async function controlValue(env: TestEnv, sql: string, values: unknown[] = []): Promise<number> {
  const conn = await connectMysql(env.config.control.url);
  try {
    const [rows] = await conn.query(sql, values);
    return Number((rows as { n: number | string | null }[])[0]?.n ?? 0);
  } catch {
    return 0; // not created yet
  } finally {
    await conn.end();
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.on('exit', (code) => resolve(code))));
}

describe('membermig full resumes after kill -9 and shares a job between processes', () => {
  let env: TestEnv;
  let writer: ShardWriter;
  beforeAll(async () => {
    env = await createCopyEnv({
      shardCount: 8,
      tables: (db) => ({ member: { source: `${db}.member`, target: 'member', shard_key: 'member_id' } }),
      extra: { copy: { chunk_rows: CHUNK, batch_rows: 50, workers: 2, lease_seconds: 30 } },
    });
    await createMemberTable(env.legacyUrl, ROWS);
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
    writer = createShardWriter(env.config);
  });
  afterAll(async () => {
    await writer?.close();
    await env?.cleanup();
  });

  it('kill -9 at several points (planning, early, mid-copy), then a rerun: every row exactly once, byte-identical', async () => {
    const doneChunks = () => controlValue(env, "SELECT COUNT(*) AS n FROM chunks WHERE state = 'done'");
    const killPoints: [string, () => Promise<boolean>][] = [
      ['the job row exists (planning)', async () => (await controlValue(env, 'SELECT COUNT(*) AS n FROM jobs')) > 0],
      ['3 chunks done', async () => (await doneChunks()) >= 3],
      ['12 chunks done', async () => (await doneChunks()) >= 12],
    ];
    for (const [point, reached] of killPoints) {
      // Paced so that each kill point comes well before the end: rows are written (and chunks done) every ~2 s,
      // when batched lines have waited their longest (src/copy/batcher.ts). At 300 rows/s one such write could
      // finish 15 chunks at once and end the copy before the last kill (seen once in CI); at 120, 4 chunks.
      const child = spawnCli(['full', '--config', env.configPath, '--max-rows-per-sec', '120', '--log-level', 'warn']);
      await waitFor(point, reached);
      child.kill('SIGKILL');
      expect(await exited(child)).toBe(null);
    }
    expect(await doneChunks()).toBeLessThan(ROWS / CHUNK);

    const final = await execCli(['full', '--config', env.configPath, '--json']);
    expect(final.code, final.stderr).toBe(0);
    const r = JSON.parse(final.stdout).result;
    expect(r.state).toBe('done');
    expect(r.tables[0].rows).toBe(ROWS); // each chunk's rows counted once
    // Chunks leased by the killed workers were taken over at once (their process is gone), not after the 30 s lease.
    expect(await controlValue(env, 'SELECT MAX(attempts) AS n FROM chunks')).toBeGreaterThan(1);
    expect(r.seconds).toBeLessThan(15);
    expect(await controlValue(env, 'SELECT COUNT(*) AS n FROM workers')).toBe(0);
    expect(await controlValue(env, 'SELECT COUNT(*) AS n FROM cdc_start_positions')).toBe(1);
    await expectEveryRowOnce(writer);
  }, 150_000); // child processes and server restarts are slow on a busy 2-core machine

  it('a planner killed mid-way: its chunks (copied ones too) are kept and planning goes on after the last one', async () => {
    const control = await connectMysql(env.config.control.url);
    try {
      await control.query("UPDATE jobs SET state = 'abandoned' WHERE kind = 'full'");
      const child = spawnCli(['full', '--config', env.configPath, '--max-rows-per-sec', '200', '--log-level', 'warn']);
      await waitFor('2 chunks done', async () => (await controlValue(env, "SELECT COUNT(*) AS n FROM chunks c JOIN jobs j ON j.id = c.job_id WHERE j.state <> 'abandoned' AND c.state = 'done'")) >= 2);
      child.kill('SIGKILL');
      await exited(child);
      // As the planner would have left the job had it died after planning chunks 0-5.
      const [[job]] = (await control.query("SELECT id FROM jobs WHERE kind = 'full' AND state <> 'abandoned'")) as unknown as [{ id: number }[]];
      await control.query("UPDATE jobs SET state = 'planning' WHERE id = ?", [job!.id]);
      await control.query('DELETE FROM chunks WHERE job_id = ? AND chunk_no > 5', [job!.id]);
      const [kept] = await control.query('SELECT chunk_no, upper_key, state, attempts FROM chunks WHERE job_id = ? ORDER BY chunk_no', [job!.id]);
      expect((kept as { state: string }[]).filter((c) => c.state === 'done').length).toBeGreaterThanOrEqual(2);

      const rerun = await execCli(['full', '--config', env.configPath, '--json']);
      expect(rerun.code, rerun.stderr).toBe(0);
      const r = JSON.parse(rerun.stdout).result;
      expect(r.jobId).toBe(Number(job!.id));
      expect(r.state).toBe('done');
      const [after] = await control.query('SELECT chunk_no, lower_key, upper_key, state, attempts FROM chunks WHERE job_id = ? ORDER BY chunk_no', [job!.id]);
      const chunks = after as { chunk_no: number; lower_key: unknown; upper_key: unknown; state: string; attempts: number }[];
      // Numbered on from the kept ones, each starting where the one before ends, the last open-ended, all done.
      expect(chunks.length).toBeGreaterThan((kept as unknown[]).length);
      expect(chunks.map((c) => c.chunk_no)).toEqual(chunks.map((_c, i) => i));
      chunks.forEach((c, i) => expect(c.lower_key).toEqual(i === 0 ? null : chunks[i - 1]!.upper_key));
      expect(chunks.at(-1)!.upper_key).toBe(null);
      expect(chunks.every((c) => c.state === 'done')).toBe(true);
      // The kept chunks were not planned again, and those copied before the kill were not copied again.
      for (const k of kept as typeof chunks) {
        const now = chunks[k.chunk_no]!;
        expect(now.upper_key).toEqual(k.upper_key);
        if (k.state === 'done') expect(now.attempts).toBe(k.attempts);
      }
      expect(r.rowsThisRun).toBeLessThan(ROWS);
      await expectEveryRowOnce(writer);
    } finally {
      await control.end();
    }
  }, 150_000);

  it('planning stopped by a failed run leaves the job planning; the next run plans it to the end', async () => {
    const store = openControlStore(env.config, 2);
    const reader = createSourceReader(env.config, silentLogger);
    try {
      await store.pool.query("UPDATE jobs SET state = 'abandoned' WHERE kind = 'full'");
      const specs = await describeTables(reader, env.config, ['member']);
      const stopped = new AbortController();
      stopped.abort();
      const first = (await openJob(store, reader, specs, { restart: false, chunkRows: CHUNK, logger: silentLogger, signal: stopped.signal }))!;
      await first.planning;
      const [[job]] = (await store.pool.query('SELECT state, (SELECT COUNT(*) FROM chunks c WHERE c.job_id = j.id) AS chunks FROM jobs j WHERE id = ?', [first.id])) as unknown as [{ state: string; chunks: number }[]];
      expect(job).toMatchObject({ state: 'planning' });
      expect(Number(job!.chunks)).toBeLessThan(ROWS / CHUNK + 1);
      // The lock was let go: the next run takes the job over and plans every chunk.
      const second = (await openJob(store, reader, specs, { restart: false, chunkRows: CHUNK, logger: silentLogger }))!;
      expect(second.id).toBe(first.id);
      await second.planning;
      const [[after]] = (await store.pool.query('SELECT state, (SELECT COUNT(*) FROM chunks c WHERE c.job_id = j.id) AS chunks FROM jobs j WHERE id = ?', [first.id])) as unknown as [{ state: string; chunks: number }[]];
      expect(after).toMatchObject({ state: 'running' });
      expect(Number(after!.chunks)).toBeGreaterThan(Number(job!.chunks));
      const [planned] = await store.pool.query('SELECT lower_key, upper_key FROM chunks WHERE job_id = ? ORDER BY chunk_no', [first.id]);
      const chunks = planned as { lower_key: unknown; upper_key: unknown }[];
      chunks.forEach((c, i) => expect(c.lower_key).toEqual(i === 0 ? null : chunks[i - 1]!.upper_key));
      expect(chunks.at(-1)!.upper_key).toBe(null);
    } finally {
      await reader.close();
      await store.close();
    }
  });

  it('the first chunks are there for workers as soon as each is planned, not a batch later', async () => {
    const store = openControlStore(env.config, 2);
    const reader = createSourceReader(env.config, silentLogger);
    try {
      await store.pool.query("UPDATE jobs SET state = 'abandoned' WHERE kind = 'full'");
      const specs = await describeTables(reader, env.config, ['member']);
      // The real reader, watched: each time the planner asks for its next bound, count the chunks workers can claim.
      const claimable: number[] = [];
      const watched = Object.create(reader, {
        chunkBoundaries: {
          value: async function* (...args: Parameters<typeof reader.chunkBoundaries>) {
            for await (const upper of reader.chunkBoundaries(...args)) {
              yield upper;
              const [[row]] = (await store.pool.query(
                "SELECT COUNT(*) AS n FROM chunks c JOIN jobs j ON j.id = c.job_id WHERE j.kind = 'full' AND j.state = 'planning'",
              )) as unknown as [{ n: number }[]];
              claimable.push(Number(row!.n));
            }
          },
        },
      }) as typeof reader;
      const job = (await openJob(store, watched, specs, { restart: false, chunkRows: CHUNK, logger: silentLogger }))!;
      await job.planning;
      // Held back for the planner's 200 ms batches, chunks 1, 2, 3 waited with only chunk 0 claimable.
      expect(claimable.slice(0, 4)).toEqual([1, 2, 3, 4]);
    } finally {
      await reader.close();
      await store.close();
    }
  });

  it('two processes at once share one job: each copies some chunks, none twice', async () => {
    // Drop the previous run's job first, so both processes find the same fresh job; then start them together.
    const control = await connectMysql(env.config.control.url);
    await control.query("UPDATE jobs SET state = 'abandoned' WHERE kind = 'full'");
    await control.end();
    const args = ['full', '--config', env.configPath, '--json', '--max-rows-per-sec', '250', '--log-level', 'warn'];
    const [one, second] = await Promise.all([execCli(args), execCli(args)]);
    expect(one.code, one.stderr).toBe(0);
    expect(second.code, second.stderr).toBe(0);
    const [a, b] = [JSON.parse(one.stdout).result, JSON.parse(second.stdout).result];
    expect(a.jobId).toBe(b.jobId);
    expect(a.chunksThisRun).toBeGreaterThan(0);
    expect(b.chunksThisRun).toBeGreaterThan(0);
    expect(a.chunksThisRun + b.chunksThisRun).toBe(await controlValue(env, 'SELECT COUNT(*) AS n FROM chunks WHERE job_id = ?', [a.jobId]));
    expect(a.rowsThisRun + b.rowsThisRun).toBe(ROWS);
    await expectEveryRowOnce(writer);
  }, 150_000); // child processes and server restarts are slow on a busy 2-core machine

  it('SIGINT: no new chunk is taken, those in hand are finished and recorded, the result says what is left; a rerun finishes', async () => {
    const control = await connectMysql(env.config.control.url);
    try {
      await control.query("UPDATE jobs SET state = 'abandoned' WHERE kind = 'full'");
      const child = spawnCli(['full', '--config', env.configPath, '--json', '--max-rows-per-sec', '200', '--log-level', 'warn']);
      let stdout = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr!.resume();
      const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
      await waitFor('2 chunks done', async () => (await controlValue(env, "SELECT COUNT(*) AS n FROM chunks c JOIN jobs j ON j.id = c.job_id WHERE j.state <> 'abandoned' AND c.state = 'done'")) >= 2);
      // While it runs, status counts its worker: the job is not shown as stopped.
      const live = JSON.parse((await runCli(['status', '--config', env.configPath, '--json'])).stdout).result;
      expect(live.perTable[0].fullCopy).toMatchObject({ state: 'running', stopped: false });
      child.kill('SIGINT');
      expect(await closed).toBe(1);
      const r = JSON.parse(stdout).result;
      // Afterwards the job is still 'running' in the store, but status says no process works on it.
      const after = await runCli(['status', '--config', env.configPath, '--json']);
      const shown = JSON.parse(after.stdout).result;
      expect(shown.perTable[0].fullCopy).toMatchObject({ jobId: r.jobId, state: 'running', stopped: true });
      expect(shown.fullCopy.jobs[0]).toMatchObject({ id: r.jobId, stopped: true });
      expect(shown.jobs.find((j: { id: number }) => j.id === r.jobId)).toMatchObject({ liveWorkers: 0, stopped: true });
      expect((await runCli(['status', '--config', env.configPath])).stdout).toContain(`job ${r.jobId} (member): running but stopped (no process works on it; membermig full goes on)`);
      expect(r.state).not.toBe('done');
      expect(r.errors.join('\n')).toContain('stopped on request');
      expect(r.left.length).toBeGreaterThan(0);
      // Nothing stays leased by the stopped process, and it left the workers table.
      expect(await controlValue(env, `SELECT COUNT(*) AS n FROM chunks WHERE job_id = ${Number(r.jobId)} AND state = 'leased'`)).toBe(0);
      expect(await controlValue(env, 'SELECT COUNT(*) AS n FROM workers')).toBe(0);
      // --dry-run shows the job a rerun goes on with, and what --restart would drop.
      const done = await controlValue(env, `SELECT COUNT(*) AS n FROM chunks WHERE job_id = ${Number(r.jobId)} AND state = 'done'`);
      for (const [extra, action] of [[[], 'resume'], [['--restart'], 'restart']] as const) {
        const dry = await execCli(['full', '--config', env.configPath, '--json', '--dry-run', ...extra]);
        expect(dry.code, dry.stderr).toBe(0);
        const planned = JSON.parse(dry.stdout).result;
        expect(planned.jobId).toBe(r.jobId);
        expect(planned.plan.job).toMatchObject({ id: r.jobId, chunksDone: done, action });
        expect(planned.tables.reduce((n: number, t: { chunksDone: number }) => n + t.chunksDone, 0)).toBe(done);
      }
      const people = await execCli(['full', '--config', env.configPath, '--dry-run']);
      expect(people.stdout).toContain(`job ${r.jobId} (running, ${done}/`);
      expect(people.stdout).toContain('a run goes on from there');
      const rerun = await execCli(['full', '--config', env.configPath, '--json']);
      expect(rerun.code, rerun.stderr).toBe(0);
      expect(JSON.parse(rerun.stdout).result).toMatchObject({ state: 'done', jobId: r.jobId });
      await expectEveryRowOnce(writer);
    } finally {
      await control.end();
    }
  }, 150_000);

  it('a job restarted by another process (--restart) gets no more writes from the process still copying it', async () => {
    const control = await connectMysql(env.config.control.url);
    const shardRows = async () => {
      let n = 0;
      for (let shard = 0; shard < writer.map.count; shard++) {
        const [rows] = await writer.poolOf(writer.map.serverOf(shard).name).query(`SELECT COUNT(*) AS n FROM \`${writer.map.databaseOf(shard)}\`.member`);
        n += Number((rows as { n: number }[])[0]!.n);
      }
      return n;
    };
    try {
      await control.query("UPDATE jobs SET state = 'abandoned' WHERE kind = 'full'");
      for (let shard = 0; shard < writer.map.count; shard++) {
        await writer.poolOf(writer.map.serverOf(shard).name).query(`TRUNCATE TABLE \`${writer.map.databaseOf(shard)}\`.member`);
      }
      // Paced: writes every ~2 s; the heartbeat (lease_seconds 30) would notice only every 10 s.
      const child = spawnCli(['full', '--config', env.configPath, '--json', '--max-rows-per-sec', '200', '--log-level', 'warn']);
      let stdout = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr!.resume();
      const closed = new Promise((r) => child.on('close', r));
      await waitFor('2 chunks done', async () => (await controlValue(env, "SELECT COUNT(*) AS n FROM chunks c JOIN jobs j ON j.id = c.job_id WHERE j.state <> 'abandoned' AND c.state = 'done'")) >= 2);
      await control.query("UPDATE jobs SET state = 'abandoned' WHERE kind = 'full' AND state <> 'abandoned'"); // what --restart does to it
      await new Promise((r) => setTimeout(r, 1000)); // a write already past its fence ends
      const atRestart = await shardRows();
      expect(await exited(child)).toBe(1);
      expect(await shardRows()).toBe(atRestart);
      expect(atRestart).toBeLessThan(ROWS);
      await closed;
      const r = JSON.parse(stdout).result;
      expect(r.errors.join('\n')).toContain('restarted by another process');
      expect(r.left.filter((c: { error?: string }) => c.error?.includes('writes no more of it')).length).toBeGreaterThan(0);
    } finally {
      await control.end();
    }
  }, 150_000);

  it('a chunk leased to this process without its knowing (a claim whose reply was lost) is taken up at lease expiry; the run finishes', async () => {
    const control = await connectMysql(env.config.control.url);
    try {
      await control.query("UPDATE jobs SET state = 'abandoned' WHERE kind = 'full'");
      // Short leases, renewed every second: the planted one would be renewed with them if renewal went by owner.
      const raw = env.raw as { copy: Record<string, unknown> };
      const config = join(dirname(env.configPath), 'short-leases.yaml');
      writeFileSync(config, stringify({ ...raw, copy: { ...raw.copy, lease_seconds: 3 } }));
      const child = spawnCli(['full', '--config', config, '--json', '--max-rows-per-sec', '300', '--log-level', 'warn']);
      let stdout = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr!.resume();
      const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
      const live = "SELECT COUNT(*) AS n FROM chunks c JOIN jobs j ON j.id = c.job_id WHERE j.state <> 'abandoned'";
      await waitFor('planning done and a chunk copied', async () => (await controlValue(env, `${live} AND c.state = 'done'`)) >= 1 && (await controlValue(env, `${live} AND c.upper_key IS NULL`)) === 1);
      // What a claim whose commit went through and whose reply was lost leaves: the last pending chunk leased to the process.
      const [res] = await control.query(
        `UPDATE chunks c JOIN jobs j ON j.id = c.job_id JOIN workers w ON w.job_id = j.id
            SET c.state = 'leased', c.lease_owner = w.id, c.lease_until = NOW(6) + INTERVAL 3 SECOND, c.attempts = c.attempts + 1
          WHERE j.state IN ('planning', 'running') AND j.kind = 'full' AND c.state = 'pending' AND c.upper_key IS NULL`,
      );
      expect((res as { affectedRows: number }).affectedRows).toBe(1);
      expect(await closed).toBe(0);
      const r = JSON.parse(stdout).result;
      expect(r).toMatchObject({ state: 'done', left: [] });
      expect(await controlValue(env, `${live} AND c.state <> 'done'`)).toBe(0);
      await expectEveryRowOnce(writer);
    } finally {
      await control.end();
    }
  }, 150_000);
});
