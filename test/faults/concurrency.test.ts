import { afterAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../../src/mysql/connect.js';
import { readMigrations } from '../../src/store/migrate.js';
import { shardMapFromConfig } from '../../src/shard/map.js';
import { execCli, runCli } from '../support/cli.js';
import { copyTable } from '../support/copy-rows.js';
import { createTestEnv, type TestEnv } from '../support/env.js';
import { compareTable } from '../support/compare.js';
import { expectConverged } from '../support/faults.js';
import { createMemberTable, memberId } from '../support/nasty.js';

/**
 * Races between processes not covered elsewhere: two `init`s at once, two `verify --repair` at once.
 * (Two `full` workers on one job: test/full-resume.test.ts; two sync consumers in one group:
 * test/sync-failures.test.ts; racing `gray set`: test/gray.test.ts.)
 */
describe('racing processes', () => {
  const envs: TestEnv[] = [];
  afterAll(async () => {
    for (const env of envs) await env.cleanup().catch(() => {});
  });

  it('init run twice at once: both succeed, one schema (each migration once, each shard table once)', async () => {
    const env = await createTestEnv({ shardCount: 8 });
    envs.push(env);
    await createMemberTable(env.legacyUrl, 3);
    const [a, b] = await Promise.all([execCli(['init', '--config', env.configPath, '--json']), execCli(['init', '--config', env.configPath, '--json'])]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const control = await connectMysql(env.config.control.url);
    const [ledger] = await control.query('SELECT version FROM schema_migrations ORDER BY version');
    await control.end();
    expect((ledger as { version: number }[]).map((r) => Number(r.version))).toEqual(readMigrations().map((m) => m.version));
    // Between them the two runs applied each migration exactly once.
    const applied = [JSON.parse(a.stdout).result.control.applied, JSON.parse(b.stdout).result.control.applied].flat();
    expect(applied.length).toBe(readMigrations().length);
    const map = shardMapFromConfig(env.config);
    for (const server of map.servers()) {
      const conn = await connectMysql(server.primary);
      const [tables] = await conn.query("SELECT TABLE_SCHEMA AS db FROM information_schema.TABLES WHERE TABLE_SCHEMA LIKE ? AND TABLE_NAME = 'member'", [`${env.prefix}\\_s%`]);
      await conn.end();
      expect((tables as unknown[]).length).toBe(map.shardsOn(server.name).length);
    }
    const again = await runCli(['init', '--config', env.configPath]);
    expect(again.stdout).toContain('Nothing to do');
  }, 180_000);

  it('two verify --repair at once on damaged shards: both finish, the shards equal legacy', async () => {
    const env = await createTestEnv({ shardCount: 4, extra: { verify: { chunk_rows: 50, workers: 2, recheck_after_seconds: 0 }, copy: { lease_seconds: 3 } } });
    envs.push(env);
    await createMemberTable(env.legacyUrl, 600);
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
    await copyTable(env.config, 'member');
    const map = shardMapFromConfig(env.config);
    for (let i = 0; i < 600; i += 23) {
      const id = memberId(i);
      const shard = map.shardOf(id);
      const conn = await connectMysql(map.serverOf(shard).primary, { database: map.databaseOf(shard) });
      await conn.query(i % 2 ? 'DELETE FROM member WHERE member_id = ?' : "UPDATE member SET name = 'bent' WHERE member_id = ?", [id]);
      await conn.end();
    }
    const args = ['verify', '--config', env.configPath, '--repair', '--json', '--log-level', 'warn'];
    const [a, b] = await Promise.all([execCli(args), execCli(args)]);
    expect(a.code, a.stderr.slice(-2000) + a.stdout.slice(-2000)).toBe(0);
    expect(b.code, b.stderr.slice(-2000) + b.stdout.slice(-2000)).toBe(0);
    expectConverged(await compareTable(env.config, env.legacyUrl, 'member', 'member', ['member_id'], 'member_id'), 'two verify --repair racing', 1, 600);
  }, 240_000); // child processes are slow when the shared machine is busy
});
