import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Row } from '../src/rows/types.js';
import { connectMysql } from '../src/mysql/connect.js';
import { startMariaDb, type MariaDbInstance } from '../src/sandbox/mariadb.js';
import { createShardWriter, type ShardWriter } from '../src/target/writer.js';
import { runCli, watchCli } from './support/cli.js';
import { createCopyEnv, writeConfig } from './support/copy-env.js';
import type { TestEnv } from './support/env.js';
import { createMemberTable, memberRow } from './support/nasty.js';
import { readShards } from './support/shards.js';

const ROWS = 400;
const asRow = (values: unknown[]): Row => values.map((v) => (v === null || v === undefined || Buffer.isBuffer(v) ? (v ?? null) : String(v))) as Row;

describe('membermig full with a shard server down, then back', () => {
  let env: TestEnv;
  let dir: string;
  let server: MariaDbInstance;
  let writer: ShardWriter;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'membermig-down-'));
    server = await startMariaDb({ dir });
    env = await createCopyEnv({
      shardCount: 8,
      tables: (db) => ({ member: { source: `${db}.member`, target: 'member', shard_key: 'member_id' } }),
      extra: { copy: { chunk_rows: 100, workers: 2, retries: 1, retry_base_ms: 100 } },
    });
    // shard-b is a private server this test can stop and start.
    env.raw = { ...env.raw, servers: { ...(env.raw.servers as object), 'shard-b': { primary: server.url, dc: 'dc2' } } };
    writeConfig(env);
    await createMemberTable(env.legacyUrl, ROWS);
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
    writer = createShardWriter(env.config);
  });
  afterAll(async () => {
    await writer?.close();
    await server?.stop();
    await env?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('copies the other servers shards, lists what is left (exit 1); a rerun finishes once the server is back', async () => {
    await server.stop();
    // The rehearsal fails where the run will (it exited 0 with a warning in the log only).
    const rehearsal = await runCli(['full', '--dry-run', '--config', env.configPath, '--log-level', 'error']);
    expect(rehearsal.code, rehearsal.stderr).toBe(1);
    expect(rehearsal.stdout).toContain('shard server shard-b did not answer: a run now would leave the chunks of its shards undone (exit 1)');
    const down = await runCli(['full', '--config', env.configPath, '--json', '--log-level', 'error']);
    expect(down.code, down.stderr).toBe(1);
    const r = JSON.parse(down.stdout).result;
    expect(r.state).toBe('incomplete');
    expect(r.left.length).toBe(ROWS / 100); // every chunk with rows; the open-ended last one is empty
    expect(r.left[0].error).toContain('on server shard-b');

    // shard-a got its rows even though no chunk could finish.
    const expected = Array.from({ length: ROWS }, (_, i) => asRow(memberRow(i)));
    const onA = expected.filter((row) => writer.map.serverOf(writer.map.shardOf(row[0] as string)).name === 'shard-a');
    const pool = writer.poolOf('shard-a');
    let countA = 0;
    for (const shard of writer.map.shardsOn('shard-a')) {
      const [rows] = await pool.query(`SELECT COUNT(*) AS n FROM \`${writer.map.databaseOf(shard)}\`.member`);
      countA += Number((rows as { n: number }[])[0]!.n);
    }
    expect(countA).toBe(onA.length);

    // The rerun starts while the server is still down and backs off until it is back.
    env.raw = { ...env.raw, copy: { chunk_rows: 100, workers: 2, retries: 8, retry_base_ms: 250 } };
    writeConfig(env);
    const rerun = runCli(['full', '--config', env.configPath, '--json', '--log-level', 'error']);
    await new Promise((r) => setTimeout(r, 800));
    server = await startMariaDb({ dir, port: server.port });
    const done = await rerun;
    expect(done.code, done.stderr).toBe(0);
    expect(JSON.parse(done.stdout).result.state).toBe('done');

    const back = await readShards(writer, 'member');
    expect(back.size).toBe(ROWS);
    for (const row of expected) expect(back.get(row[0] as string)).toEqual(row);
  }, 150_000); // child processes and server restarts are slow on a busy 2-core machine

  it('a server down at the start whose shard table is missing once it is back: its first write is refused with "run membermig init", not the unrepresentable-value advice', async () => {
    const victim = writer.map.shardsOn('shard-b')[0]!;
    const conn = await connectMysql(server.url);
    await conn.query(`DROP TABLE \`${writer.map.databaseOf(victim)}\`.member`);
    await conn.end();
    await server.stop();
    env.raw = { ...env.raw, copy: { chunk_rows: 100, workers: 2, retries: 8, retry_base_ms: 250 } };
    writeConfig(env);
    // A new job without --restart (which would have to empty shard-b's tables first).
    const control = await connectMysql(env.config.control.url);
    await control.query("UPDATE jobs SET state = 'abandoned' WHERE kind = 'full'");
    await control.end();
    const full = watchCli(['full', '--config', env.configPath, '--json', '--log-level', 'warn']);
    await full.untilLogged('its tables are checked before its first write');
    server = await startMariaDb({ dir, port: server.port });
    expect(await full.closed, full.stderr).toBe(1); // not 2: the other server took writes
    const errors: string[] = JSON.parse(full.stdout).result.errors;
    expect(errors.join('\n')).toContain(`shard table ${writer.map.databaseOf(victim)}.member does not exist on server shard-b: run membermig init`);
    expect(errors.join('\n')).not.toContain('on_unrepresentable');

    // 1: the table it creates belongs to a copy under way, whose chunks done so far put no row in it (init says so).
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(1);
    const rerun = await runCli(['full', '--config', env.configPath, '--json', '--log-level', 'error']);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect((await readShards(writer, 'member')).size).toBe(ROWS);
  }, 150_000);

  it('full --restart with a server down cannot empty its tables: exit 1 naming it; the next run empties them first, and a row deleted since is gone', async () => {
    // A row on shard-b deleted on the legacy side after the copy: only emptying its table removes it.
    const i = Array.from({ length: ROWS }, (_, n) => n).find((n) => writer.map.serverOf(writer.map.shardOf(String(memberRow(n)[0]))).name === 'shard-b')!;
    const gone = String(memberRow(i)[0]);
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query('DELETE FROM member WHERE member_id = ?', [gone]);
    await legacy.end();
    await server.stop();
    const refused = await runCli(['full', '--config', env.configPath, '--restart', '--json', '--log-level', 'error']);
    expect(refused.code, refused.stderr).toBe(1);
    expect(JSON.parse(refused.stdout).error ?? refused.stdout).toContain('emptying the shard tables on server shard-b');
    server = await startMariaDb({ dir, port: server.port });
    const rerun = await runCli(['full', '--config', env.configPath, '--json', '--log-level', 'error']);
    expect(rerun.code, rerun.stderr).toBe(0);
    const back = await readShards(writer, 'member');
    expect(back.has(gone)).toBe(false);
    expect(back.size).toBe(ROWS - 1);
    const restore = await connectMysql(env.legacyUrl);
    await restore.query('INSERT INTO member VALUES ?', [[memberRow(i)]]);
    await restore.end();
  }, 150_000);

  it('a shard server with local_infile off: method auto copies with upserts, method load is refused', async () => {
    const conn = await connectMysql(server.url);
    await conn.query('SET GLOBAL local_infile = 0');
    await conn.end();
    const auto = await runCli(['full', '--config', env.configPath, '--restart', '--json', '--log-level', 'error']);
    expect(auto.code, auto.stderr).toBe(0);
    expect(JSON.parse(auto.stdout).result).toMatchObject({ method: 'insert', state: 'done', rowsThisRun: ROWS });
    expect((await readShards(writer, 'member')).size).toBe(ROWS);

    env.raw = { ...env.raw, copy: { chunk_rows: 100, method: 'load' } };
    writeConfig(env);
    const load = await runCli(['full', '--config', env.configPath, '--restart']);
    expect(load.code).toBe(2);
    expect(load.stderr).toContain('shard server shard-b has local_infile off');
  }, 150_000); // child processes and server restarts are slow on a busy 2-core machine

  it('a server that accepts connections and never answers (hung) at the start: its writes share one timed-out check instead of each waiting out its own; exit 1 with what is left', async () => {
    let connections = 0;
    const hung = createServer((socket) => {
      connections++;
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const saved = env.raw;
    try {
      const servers = env.raw.servers as Record<string, { primary: string }>;
      const url = new URL(servers['shard-b']!.primary);
      url.port = String((hung.address() as AddressInfo).port);
      env.raw = { ...env.raw, servers: { ...servers, 'shard-b': { ...servers['shard-b']!, primary: url.toString() } }, copy: { chunk_rows: 100, workers: 2, retries: 2, retry_base_ms: 100 } };
      writeConfig(env);
      const control = await connectMysql(env.config.control.url);
      await control.query("UPDATE jobs SET state = 'abandoned' WHERE kind = 'full'");
      await control.end();
      const res = await runCli(['full', '--config', env.configPath, '--json', '--log-level', 'error']);
      expect(res.code, res.stderr).toBe(1);
      const r = JSON.parse(res.stdout).result;
      expect(r.left.length).toBeGreaterThan(0);
      expect(r.left[0].error).toMatch(/shard-b.*ETIMEDOUT|ETIMEDOUT.*shard-b/);
      // The start's check, then one late check for all the writes and their retries (each write asked anew before: 3 per write).
      expect(connections).toBeLessThanOrEqual(3);
    } finally {
      hung.close();
      env.raw = saved;
      writeConfig(env);
    }
  }, 120_000);
});
