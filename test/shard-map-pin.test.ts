import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { createShim } from '../src/shim/index.js';
import { routingDifferences } from '../src/store/shard-map.js';
import { runCli } from './support/cli.js';
import { copyTable } from './support/copy-rows.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { createMemberTable } from './support/nasty.js';
import { rewriteConfig } from './services/kafka-env.js';

/**
 * The control store pins the shard map's routing (count, function, database pattern) the first
 * time it is used. A config changed afterwards (here crc32 → murmur3 after a copy) was taken by
 * every command: full said "done" over the old copy and verify found nearly every row misplaced.
 */
describe('the shard map is pinned in the control store', () => {
  let env: TestEnv;
  let pinned: Record<string, unknown>;

  beforeAll(async () => {
    // Kafka on a closed port: sync must refuse before it tries to reach it.
    env = await createTestEnv({ shardCount: 4, extra: { cdc: { kafka: { brokers: ['127.0.0.1:9'], topic: 'unused', group: 'unused' } } } });
    await createMemberTable(env.legacyUrl, 50);
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
    await copyTable(env.config, 'member');
    pinned = env.raw;
  });
  afterAll(async () => env?.cleanup());

  it('every command refuses another shard function or count (exit 2, before any write), naming both', async () => {
    const shards = pinned.shards as Record<string, unknown>;
    for (const [change, message] of [
      [{ function: 'murmur3' }, 'shards.function is murmur3, recorded crc32'],
      [{ count: 8, placement: [{ shards: '0-7', server: Object.keys(pinned.servers as object)[0] }] }, 'shards.count is 8, recorded 4'],
    ] as const) {
      rewriteConfig(env, { ...pinned, shards: { ...shards, ...change } });
      // A dry run of another count, whose shard tables do not exist, too: it used to say "run membermig init first",
      // which init then refused (found by an operator review).
      // Moves toward MySQL route by the map; a rollback or a view does not (test/gray.test.ts: never blocked).
      const towardMysql = [['gray', 'set', 'member', '--read', '1%', '--force', '--reason', 'test'], ['shim', 'set', 'member', 'dual_legacy_primary', '--force', '--reason', 'test']];
      for (const args of [['full', '--dry-run'], ['init'], ['init', '--check'], ['full'], ['verify'], ['sync', '--until-caught-up'], ...towardMysql]) {
        const r = await runCli([...args, '--config', env.configPath]);
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
        expect(r.stderr, args.join(' ')).toContain(message);
        expect(r.stderr).toContain('is not the one the control store');
      }
      await expect(createShim({ config: env.configPath })).rejects.toThrow(message);
      // status answers, saying why (exit 1), rather than showing the config's map as the one in use.
      const status = await runCli(['status', '--config', env.configPath]);
      expect(status.code).toBe(1);
      expect(status.stdout).toContain(message);
    }
  });

  it('a database pattern naming the same databases, or shards moved to another server, are the same map', async () => {
    const shards = pinned.shards as { database: string; placement: { shards: string; server: string }[] };
    expect(shards.database).toMatch(/\{shard:03\}$/);
    const servers = Object.keys(pinned.servers as object);
    rewriteConfig(env, { ...pinned, shards: { ...shards, database: shards.database.replace('{shard:03}', '{shard:003}'), placement: [{ shards: '0-3', server: servers[0] }] } });
    const r = await runCli(['init', '--check', '--config', env.configPath]);
    expect(r.code, r.stderr).toBe(0);
    rewriteConfig(env, pinned);
    expect((await runCli(['verify', '--config', env.configPath])).code).toBe(0);
  });

  it('a new control store does not take a copy over: init refuses while the shard tables hold rows (a changed map would go unnoticed)', async () => {
    const shards = pinned.shards as Record<string, unknown>;
    const control = pinned.control as { url: string };
    const fresh = { ...pinned, control: { url: control.url.replace(/\/([^/]+)$/, '/$1_fresh') }, shards: { ...shards, function: 'murmur3' } };
    rewriteConfig(env, fresh);
    // --check refuses as init does (it passed, and the init the runbook then ran refused), and init creates nothing first.
    for (const args of [['init', '--check'], ['init']]) {
      const r = await runCli([...args, '--config', env.configPath]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/shard table \S+\.member on server \S+ already holds rows, but the control store \S+_fresh has no record of a copy nor of the shard map/);
    }
    rewriteConfig(env, pinned);
    const conn = await connectMysql(env.legacyUrl);
    const [dbs] = await conn.query<RowDataPacket[]>('SHOW DATABASES LIKE ?', [new URL(fresh.control.url).pathname.slice(1)]);
    expect(dbs).toEqual([]); // refused before the control store was created
    await conn.query(`DROP DATABASE IF EXISTS \`${new URL(fresh.control.url).pathname.slice(1)}\``);
    await conn.end();
  });

  it('routingDifferences compares what each pattern names, not its text', () => {
    const base = { count: 16, function: 'crc32' as const, database: 'member_{shard:02}' };
    expect(routingDifferences(base, { ...base, database: 'member_{shard:2}' })).toEqual([]);
    expect(routingDifferences(base, { ...base, database: 'member_{shard}' })).toEqual(['shards.database is "member_{shard}", recorded "member_{shard:02}"']);
    expect(routingDifferences(base, { ...base, function: 'mod', count: 32 })).toEqual(['shards.count is 32, recorded 16', 'shards.function is mod, recorded crc32']);
    expect(routingDifferences(base, { ...base, count: 8, database: 'm_{shard}' })).toEqual(['shards.count is 8, recorded 16', 'shards.database is "m_{shard}", recorded "member_{shard:02}"']);
  });
});

describe('a control store from before the shard map was pinned (migration 110)', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 4 });
    await createMemberTable(env.legacyUrl, 50);
  });
  afterAll(async () => env?.cleanup());

  it('init migrates it though its copy holds rows: its jobs are the record of that copy; the map is pinned then', async () => {
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
    const full = await runCli(['full', '--config', env.configPath]);
    expect(full.code, full.stderr).toBe(0);
    // As a membermig before 110 left it: no shard_map table, no ledger row for 110 or later.
    const conn = await connectMysql(env.config.control.url);
    try {
      await conn.query('DELETE FROM schema_migrations WHERE version >= 110');
      await conn.query('DROP TABLE shard_map');
      const r = await runCli(['init', '--config', env.configPath, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).result.control.applied).toContain('110_shard_map');
      const [pinned] = await conn.query<RowDataPacket[]>('SELECT shard_count, shard_function FROM shard_map');
      expect(pinned).toEqual([{ shard_count: 4, shard_function: 'crc32' }]);
    } finally {
      await conn.end();
    }
  });
});
