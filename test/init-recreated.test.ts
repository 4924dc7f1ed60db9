import type { Pool, RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkGates } from '../src/gray/gates.js';
import { connectMysql } from '../src/mysql/connect.js';
import type { ShardWriter } from '../src/target/writer.js';
import { runCli, spawnCli } from './support/cli.js';
import { copiedMemberEnv, writeConfig } from './support/copy-env.js';
import type { TestEnv } from './support/env.js';
import { waitFor } from './support/faults.js';
import { startFreezingProxy } from './support/freezing-proxy.js';
import { memberId } from './support/nasty.js';
import { readShards } from './support/shards.js';

const ROWS = 60;

/**
 * `init` re-creating a shard table dropped after its table was copied warned once (exit 1), from
 * memory: the next init said "Nothing to do: everything was already in place" (exit 0), status was
 * clean, and a kill between the CREATE TABLE and the warning lost it too. The fact is recorded in
 * the control store before the table is created, and said by init and status until a clean verify
 * of the table begins after it.
 */
describe('init: shard tables re-created after a copy', () => {
  let env: TestEnv;
  let writer: ShardWriter;

  beforeAll(async () => {
    ({ env, writer } = await copiedMemberEnv(ROWS, { chunk_rows: 20 }));
  });
  afterAll(async () => {
    await writer?.close();
    await env?.cleanup();
  });

  /** Drops the shard table holding member `n`; returns its database. */
  async function dropShardTableOf(n: number): Promise<{ db: string; server: string }> {
    const shard = writer.map.shardOf(memberId(n));
    const db = writer.map.databaseOf(shard);
    const server = writer.map.serverOf(shard);
    const conn = await connectMysql(server.primary);
    await conn.query(`DROP TABLE \`${db}\`.member`);
    await conn.end();
    return { db, server: server.name };
  }

  async function status(): Promise<{ code: number; problems: string[] }> {
    const r = await runCli(['status', '--config', env.configPath, '--json']);
    return { code: r.code, problems: JSON.parse(r.stdout).result.problems };
  }

  const warning = (db: string) => new RegExp(`warning: 1 shard table of member \\(${db}\\) was created at \\S+Z, but its full copy \\(job \\d+, done\\) put rows in it before: it is empty\\. Run membermig verify --repair --tables member`);

  it('every init and status say so (exit 1) until a clean verify of the table begun after it', async () => {
    const { db } = await dropShardTableOf(3);
    const first = await runCli(['init', '--config', env.configPath]);
    expect(first.code, first.stdout + first.stderr).toBe(1);
    expect(first.stdout).toMatch(warning(db));
    // Nothing is created the second time, but the table is still empty: still 1, still said.
    const second = await runCli(['init', '--config', env.configPath]);
    expect(second.code, second.stdout + second.stderr).toBe(1);
    expect(second.stdout).toMatch(warning(db));
    expect(second.stdout).not.toContain('Nothing to do: everything was already in place');
    const json = JSON.parse((await runCli(['init', '--config', env.configPath, '--json'])).stdout).result;
    expect(json.createdAfterCopy).toMatchObject([{ table: 'member', shardTables: 1, databases: [db], state: 'done' }]);
    let s = await status();
    expect(s.code).toBe(1);
    expect(s.problems.join('\n')).toMatch(new RegExp(`1 shard table of member \\(${db}\\) was created at .* it is empty`));

    // full has nothing left to do (its chunks are done), and a verify that finds the missing rows does not close it.
    expect((await runCli(['full', '--config', env.configPath])).code).toBe(0);
    expect((await readShards(writer, 'member')).has(memberId(3))).toBe(false);
    expect((await runCli(['verify', '--config', env.configPath, '--tables', 'member'])).code).toBe(1);
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(1);

    // The repair puts the rows back; its run is clean (every difference repaired) and began after the record.
    const repair = await runCli(['verify', '--repair', '--config', env.configPath, '--tables', 'member']);
    expect(repair.code, repair.stdout + repair.stderr).toBe(0);
    expect((await readShards(writer, 'member')).size).toBe(ROWS);
    expect((await runCli(['verify', '--config', env.configPath])).code).toBe(0);
    const after = await runCli(['init', '--config', env.configPath]);
    expect(after.code, after.stdout + after.stderr).toBe(0);
    expect(after.stdout).toContain('Nothing to do: everything was already in place');
    s = await status();
    expect(s).toEqual({ code: 0, problems: [] });
  }, 120_000);

  it('a kill after the CREATE TABLE reached the server, before the warning: the next init still says it', async () => {
    const { db, server } = await dropShardTableOf(5);
    const raw = env.raw as { servers: Record<string, { primary: string }> };
    const url = new URL(raw.servers[server]!.primary);
    const proxy = await startFreezingProxy(Number(url.port));
    const direct = await connectMysql(url.toString());
    try {
      // The same shard map on a proxy that sends the CREATE TABLE on and never answers it.
      url.port = String(proxy.port);
      const proxied = structuredClone(env.raw) as typeof raw;
      proxied.servers[server]!.primary = url.toString();
      const configPath = writeConfig({ ...env, raw: proxied }, env.configPath.replace(/\.yaml$/, '-proxied.yaml'));
      proxy.hangAt((bytes) => bytes.includes('CREATE TABLE IF NOT EXISTS'));
      const child = spawnCli(['init', '--config', configPath]);
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      await waitFor('the shard table created', async () => {
        const [rows] = await direct.query<RowDataPacket[]>('SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [db, 'member']);
        return rows.length > 0;
      });
      child.kill('SIGKILL');
      await exited;
      expect(out).not.toContain('warning');
    } finally {
      direct.destroy();
      await proxy.close();
    }
    // The table is there now, so this init creates nothing: it knows from the control store.
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stdout + init.stderr).toBe(1);
    expect(init.stdout).toMatch(warning(db));
    expect((await status()).code).toBe(1);
    expect((await runCli(['verify', '--repair', '--config', env.configPath, '--tables', 'member'])).code).toBe(0);
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
  }, 120_000);

  it("shuts gray's verify gate, whatever clean verify came before the table was emptied", async () => {
    expect((await runCli(['verify', '--config', env.configPath, '--tables', 'member'])).code).toBe(0);
    const control = await connectMysql(env.config.control.url);
    const verifyGate = async () => (await checkGates(control as unknown as Pool, env.config, 'member')).find((g) => g.gate === 'verify')!;
    try {
      expect(await verifyGate()).toMatchObject({ ok: true });
      const { db } = await dropShardTableOf(7);
      expect((await runCli(['init', '--config', env.configPath])).code).toBe(1);
      // The clean run is minutes old at most, but it checked rows the new table no longer holds.
      expect(await verifyGate()).toMatchObject({ ok: false, message: expect.stringMatching(new RegExp(`^1 shard table of member \\(${db}\\) was created at .* it is empty`)) });
      expect((await runCli(['verify', '--repair', '--config', env.configPath, '--tables', 'member'])).code).toBe(0);
      expect(await verifyGate()).toMatchObject({ ok: true });
    } finally {
      await control.end();
    }
  }, 120_000);
});
