import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connectMysql, quoteId } from '../../src/mysql/connect.js';
import { shardMapFromConfig } from '../../src/shard/map.js';
import { startMariaDb, type MariaDbInstance } from '../../src/sandbox/mariadb.js';
import { execCli, runCli } from '../support/cli.js';
import { createCopyEnv, writeConfig } from '../support/copy-env.js';
import { withDatabase, type TestEnv } from '../support/env.js';
import { compareTable } from '../support/compare.js';
import { controlNumber, exitWithin, faultPoints, faultTimeout, expectConverged, seededRandom, sleep, startCli, waitFor, type Child } from '../support/faults.js';
import { createMemberTable } from '../support/nasty.js';

/**
 * Servers failing under a running `full` (a real child process): a shard server stopped and
 * restarted, the control store stopped and restarted, the writer's connection killed mid-batch.
 * Each ends with the shards equal to the legacy table row by row, and the outage in the logs.
 * (A shard server down before the copy: test/full-server-down.test.ts; mid-sync: the shard-server
 * case in test/sync-failures.test.ts.)
 */

const ROWS = 1500;
const random = seededRandom(Number(process.env.FAULTS_SEED ?? 7));

interface Private {
  server: MariaDbInstance;
  dir: string;
}

async function privateServer(): Promise<Private> {
  const dir = mkdtempSync(join(tmpdir(), 'membermig-fault-'));
  return { dir, server: await startMariaDb({ dir }) };
}

async function restart(p: Private, downMs: number): Promise<void> {
  await p.server.stop();
  await sleep(downMs);
  p.server = await startMariaDb({ dir: p.dir, port: p.server.port });
}

/** A copy env whose shard-b (and, if asked, control store) live on private servers this test can stop. */
async function faultEnv(options: { shardB?: Private; control?: Private; chunkRows?: number }): Promise<TestEnv> {
  const env = await createCopyEnv({
    shardCount: 8,
    tables: (db) => ({ member: { source: `${db}.member`, target: 'member', shard_key: 'member_id' } }),
    // Many quick retries: a few seconds of outage are ridden out inside the run.
    extra: { copy: { chunk_rows: options.chunkRows ?? 100, batch_rows: 50, workers: 2, lease_seconds: 3, retries: 10, retry_base_ms: 200 } },
  });
  const raw = env.raw as { servers: Record<string, unknown>; control: { url: string } };
  if (options.shardB) env.raw = { ...env.raw, servers: { ...raw.servers, 'shard-b': { primary: options.shardB.server.url, dc: 'dc2' } } };
  if (options.control) env.raw = { ...env.raw, control: { url: withDatabase(options.control.server.url, `${env.prefix}_control`) } };
  writeConfig(env);
  await createMemberTable(env.legacyUrl, ROWS);
  const init = await runCli(['init', '--config', env.configPath]);
  expect(init.code, init.stderr).toBe(0);
  return env;
}

/**
 * Waits for a child that may have given up during the outage (for `windowMs`: a paced copy may
 * have more left than 60 s of it); reruns `full` until done (at most twice).
 */
async function finish(env: TestEnv, child: Child, windowMs = 60_000): Promise<{ rodeItOut: boolean; logs: string }> {
  const { code, hung } = await exitWithin(child, windowMs);
  let logs = child.stderr;
  expect(hung, `full did not end within ${windowMs / 1000} s of the outage; its log:\n${child.stderr.slice(-3000)}`).toBe(false);
  if (code === 0) return { rodeItOut: true, logs };
  const rerun = await execCli(['full', '--config', env.configPath, '--json', '--log-level', 'warn']);
  logs += rerun.stderr;
  expect(rerun.code, rerun.stderr.slice(-2000)).toBe(0);
  return { rodeItOut: false, logs };
}

async function expectShardsEqualLegacy(env: TestEnv, scenario: string, faults: number): Promise<void> {
  expectConverged(await compareTable(env.config, env.legacyUrl, 'member', 'member', ['member_id'], 'member_id'), scenario, faults, ROWS);
}

/** Copies here are paced (200 rows/s, ~7 s) so an outage lands mid-copy: chunks are done in bursts, when batched lines have waited ~2 s (src/copy/batcher.ts). */
const doneChunks = (env: TestEnv) => controlNumber(env.config, "SELECT COUNT(*) AS n FROM chunks WHERE state = 'done'");

describe('servers failing mid-copy', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });
  const track = (p: Private): Private => {
    cleanups.push(async () => {
      await p.server.stop();
      rmSync(p.dir, { recursive: true, force: true });
    });
    return p;
  };

  it('a shard server stopped and restarted mid-copy: the run backs off, rides it out, converges', async () => {
    const shardB = track(await privateServer());
    const env = await faultEnv({ shardB });
    cleanups.push(() => env.cleanup());
    const child = startCli(['full', '--config', env.configPath, '--json', '--max-rows-per-sec', '200', '--log-level', 'warn']);
    await waitFor('a few chunks done', async () => (await doneChunks(env)) >= 2);
    // Longer than a shard's write cycle at this pace (the batches' 2 s wait, the age check every 0.5 s and up to
    // a chunk's 0.5 s of pacing): at 2.5-3.5 s a restart once fell between two writes and met none.
    await restart(shardB, 4000 + random() * 1000);
    const { logs, rodeItOut } = await finish(env, child);
    expect(rodeItOut, logs.slice(-2000)).toBe(true);
    expect(logs).toMatch(/transient failure, retrying/);
    await expectShardsEqualLegacy(env, 'shard server restart mid-copy', 1);
  }, 150_000);

  it('the control store stopped and restarted mid-copy: the run rides it out, converges, the outage is logged', async () => {
    const control = track(await privateServer());
    const env = await faultEnv({ control });
    cleanups.push(() => env.cleanup());
    const child = startCli(['full', '--config', env.configPath, '--json', '--max-rows-per-sec', '200', '--log-level', 'warn']);
    await waitFor('a few chunks done', async () => (await doneChunks(env)) >= 2);
    await control.server.stop();
    // status shows the outage while it lasts.
    const during = await runCli(['status', '--config', env.configPath, '--json']);
    expect(JSON.parse(during.stdout).result.control.reachable).toBe(false);
    await sleep(1500 + random() * 1000); // longer than a heartbeat's interval and the batches' 2 s wait
    control.server = await startMariaDb({ dir: control.dir, port: control.server.port });
    const { logs, rodeItOut } = await finish(env, child);
    // The run rides the outage out (its claims and completions are retried) and says so in its log.
    expect(rodeItOut, logs.slice(-2000)).toBe(true);
    expect(logs).toMatch(/heartbeat failed|transient failure, retrying/);
    await expectShardsEqualLegacy(env, 'control store restart mid-copy', 1);
  }, 150_000);

  it("the writer's shard connection killed mid-batch (KILL from another session), again and again: converges", async () => {
    const shardB = track(await privateServer());
    // Small chunks: a kill needs a write to come, and writes come as chunks arrive (then wait ~2 s in
    // their batch); 100-row chunks paced for 20 points gave one write to a shard every 10 s.
    const env = await faultEnv({ shardB, chunkRows: 25 });
    cleanups.push(() => env.cleanup());
    // About 5 s of copying per kill point (1,500 rows; a kill waits for the next write to its shard and
    // the retry backs off): with 1-2.5 s per point the copy ended after 15-17 of 20 kills under the soak.
    const rowsPerSec = Math.max(10, Math.round(300 / faultPoints()));
    const child = startCli(['full', '--config', env.configPath, '--json', '--max-rows-per-sec', String(rowsPerSec), '--log-level', 'warn']);
    const points = faultPoints();
    let killed = 0;
    await waitFor('a chunk done', async () => child.proc.exitCode !== null || (await doneChunks(env)) >= 1);
    expect(child.proc.exitCode, `full ended early: ${child.stderr.slice(-1500)}`).toBeNull();
    const map = shardMapFromConfig(env.config);
    const onB = map.shardsOn('shard-b');
    for (let i = 0; killed < points && child.proc.exitCode === null && i < points * 10; i++) {
      const shard = onB[Math.floor(random() * onB.length)]!;
      if (await killWriterMidBatch(shardB.server.url, map.databaseOf(shard))) killed++;
    }
    // The kills can come faster than the paced copy: up to all of it (100 s under the soak) may be left.
    const { logs, rodeItOut } = await finish(env, child, Math.max(60_000, (ROWS / rowsPerSec) * 1000 + 30_000));
    expect(rodeItOut, logs.slice(-2000)).toBe(true);
    expect(killed).toBe(points);
    expect(logs).toMatch(/transient failure, retrying/);
    await expectShardsEqualLegacy(env, 'writer connection KILLed mid-batch', killed);
  }, faultTimeout(8_000, 90_000));
});

/**
 * Cuts the writer's connection in the middle of a batch: a table lock taken from another session
 * holds the writer's next statement on that shard table (so it is certainly mid-batch), then that
 * session (found in information_schema.PROCESSLIST) is KILLed and the lock released. Returns false
 * if no write came within a few seconds (the copy is past this shard's writes).
 */
async function killWriterMidBatch(url: string, database: string): Promise<boolean> {
  const locker = await connectMysql(url);
  const killer = await connectMysql(url);
  try {
    await locker.query(`LOCK TABLES ${quoteId(database)}.member WRITE`);
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const [rows] = await killer.query(
        "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE COMMAND = 'Query' AND ID NOT IN (CONNECTION_ID(), ?) AND INFO LIKE ?",
        [locker.threadId, `%${database}%`],
      );
      const id = (rows as { id: string }[])[0]?.id;
      if (id !== undefined) {
        await killer.query(`KILL CONNECTION ${Number(id)}`);
        return true;
      }
      await sleep(50);
    }
    return false;
  } finally {
    await locker.query('UNLOCK TABLES').catch(() => {});
    await locker.end();
    await killer.end();
  }
}
