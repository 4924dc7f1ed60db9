import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { runCli, spawnCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { createMemberTable } from './support/nasty.js';

describe('membermig init and status on real servers', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 8 });
    await createMemberTable(env.legacyUrl, 3);
  });
  afterAll(async () => env?.cleanup());

  it('creates the control store and every shard database, then a second init changes nothing', async () => {
    const first = await runCli(['init', '--config', env.configPath, '--json']);
    expect(first.code, first.stderr).toBe(0);
    const r1 = JSON.parse(first.stdout).result;
    expect(r1.control.databaseCreated).toBe(true);
    expect(r1.control.applied).toContain('001_core');
    expect(r1.shardDatabases).toEqual([
      { server: 'shard-a', created: 4, existing: 0 },
      { server: 'shard-b', created: 4, existing: 0 },
    ]);

    const a = await connectMysql(env.urls.shardA);
    const [dbs] = await a.query('SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ? ORDER BY 1', [`${env.prefix}\\_s%`]);
    await a.end();
    expect((dbs as { n: string }[]).map((d) => d.n)).toEqual([0, 1, 2, 3].map((s) => `${env.prefix}_s00${s}`));

    const second = await runCli(['init', '--config', env.configPath]);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('Nothing to do: everything was already in place.');
  });

  it('status reports the shard map and the migrated control store', async () => {
    const res = await runCli(['status', '--config', env.configPath, '--json']);
    expect(res.code, res.stderr).toBe(0);
    const s = JSON.parse(res.stdout).result;
    expect(s.control).toMatchObject({ reachable: true, exists: true });
    expect(s.control.appliedVersion).toBe(s.control.latestVersion);
    expect(s.servers).toEqual([
      { name: 'shard-a', dc: 'dc1', shards: 4, replicas: 0 },
      { name: 'shard-b', dc: 'dc2', shards: 4, replicas: 0 },
    ]);
  });

  it('a migration that a crash left applied but not recorded (or half applied) is finished by the next init', async () => {
    const conn = await connectMysql(env.config.control.url);
    // As a kill after the DDL (which commits by itself) and before the ledger row would leave them.
    const [rows] = await conn.query('SELECT version FROM schema_migrations WHERE version >= 60 ORDER BY version');
    const versions = (rows as { version: number }[]).map((r) => r.version);
    expect(versions.length).toBeGreaterThanOrEqual(3);
    await conn.query('DELETE FROM schema_migrations WHERE version >= 60');
    await conn.query('ALTER TABLE verify_diffs DROP COLUMN reason'); // 090 half applied: its first statement undone
    const res = await runCli(['init', '--config', env.configPath, '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).result.control.applied).toHaveLength(versions.length);
    const [after] = await conn.query('SELECT version FROM schema_migrations WHERE version >= 60 ORDER BY version');
    const [reason] = await conn.query("SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'verify_diffs' AND COLUMN_NAME = 'reason'");
    await conn.end();
    expect((after as { version: number }[]).map((r) => r.version)).toEqual(versions);
    expect(Number((reason as { n: number }[])[0]!.n)).toBe(1);
  });

  it('a migration recorded as applied whose table or column is gone: init, status and every command say which, and what to do', async () => {
    const conn = await connectMysql(env.config.control.url);
    try {
      // A control store restored in part, or a table dropped by hand: the ledger still lists 110 and 140.
      await conn.query('DROP TABLE shard_map');
      await conn.query('ALTER TABLE verify_diffs DROP COLUMN chunk_no');
      const shardMap = 'migration 110_shard_map is recorded as applied but table shard_map is missing';
      const chunkNo = 'migration 140_verify_diffs_chunk is recorded as applied but column verify_diffs.chunk_no is missing';
      for (const args of [['init', '--check'], ['init'], ['gray', 'show'], ['full']]) {
        const r = await runCli([...args, '--config', env.configPath]);
        expect([r.code, args.join(' ')]).toEqual([2, args.join(' ')]);
        expect(r.stdout + r.stderr).toContain(shardMap);
        expect(r.stdout + r.stderr).toContain(chunkNo);
        expect(r.stdout + r.stderr).toContain('DELETE FROM schema_migrations WHERE version IN (110, 140)');
      }
      const status = await runCli(['status', '--config', env.configPath]);
      expect(status.code).toBe(1);
      expect(status.stdout).toContain(shardMap);
      // What the message says to do: forget those ledger rows, and init applies them again.
      await conn.query('DELETE FROM schema_migrations WHERE version IN (110, 140)');
      const res = await runCli(['init', '--config', env.configPath, '--json']);
      expect(res.code, res.stderr).toBe(0);
      expect(JSON.parse(res.stdout).result.control.applied).toEqual(['110_shard_map', '140_verify_diffs_chunk']);
      expect((await runCli(['gray', 'show', '--config', env.configPath])).code).toBe(0);
    } finally {
      await conn.end();
    }
  });

  it('status --watch --json prints one JSON document per line, each parseable', async () => {
    const child = spawnCli(['status', '--config', env.configPath, '--json', '--watch', '0.2']);
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.resume();
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    while (stdout.split('\n').filter(Boolean).length < 3) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    await closed;
    const lines = stdout.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThanOrEqual(3);
    for (const line of lines) expect(JSON.parse(line)).toMatchObject({ command: 'status', result: { control: { reachable: true } } });
  });

  it('commands other than init refuse (exit 2) a control store init has not set up, its database missing or empty', async () => {
    const { writeConfig } = await import('./support/copy-env.js');
    const control = new URL(env.config.control.url);
    for (const db of [`${env.prefix}_no_such_control`, `${env.prefix}_empty_control`]) {
      if (db.endsWith('_empty_control')) {
        const admin = await connectMysql(env.urls.legacy);
        await admin.query(`CREATE DATABASE IF NOT EXISTS \`${db}\``);
        await admin.end();
      }
      const path = writeConfig({ ...env, raw: { ...env.raw, control: { url: Object.assign(new URL(control.toString()), { pathname: `/${db}` }).toString() } } } as TestEnv, `${env.configPath}.${db}.yaml`);
      for (const args of [['verify'], ['gray', 'show'], ['shim', 'show'], ['full']]) {
        const r = await runCli([...args, '--config', path]);
        expect([r.code, args.join(' ')]).toEqual([2, args.join(' ')]);
        expect(r.stderr).toMatch(new RegExp(`control store('s database)? ${db} (does not exist|is not set up)`));
        expect(r.stderr).toContain('run membermig init first');
      }
    }
  });

  it('a control store migrated by a newer membermig: init --check refuses it too, and no command advises "run membermig init"', async () => {
    const conn = await connectMysql(env.config.control.url);
    await conn.query("INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'future', REPEAT('f', 64))");
    try {
      const unknown = 'migration 999_future is applied in the control store but unknown to this membermig';
      for (const args of [['init', '--check'], ['init']]) {
        const r = await runCli([...args, '--config', env.configPath]);
        expect([r.code, args.join(' ')]).toEqual([2, args.join(' ')]);
        expect(r.stdout + r.stderr).toContain(unknown);
        expect(r.stdout).toContain('Preflight found errors; nothing was changed.');
      }
      for (const args of [['verify'], ['full'], ['gray', 'show']]) {
        const r = await runCli([...args, '--config', env.configPath]);
        expect([r.code, args.join(' ')]).toEqual([2, args.join(' ')]);
        expect(r.stderr).toContain(`the control store ${env.prefix}_control cannot be used by this membermig: ${unknown}`);
        expect(r.stderr).not.toContain('run membermig init');
      }
      const status = await runCli(['status', '--config', env.configPath]);
      expect(status.code).toBe(1);
      expect(status.stdout).toContain('cannot be used by this membermig');
      expect(status.stdout).not.toContain('run membermig init');
    } finally {
      await conn.query('DELETE FROM schema_migrations WHERE version = 999');
      await conn.end();
    }
  });

  it('refuses a control store whose applied migration was changed, in init --check as in init', async () => {
    const conn = await connectMysql(env.config.control.url);
    await conn.query("UPDATE schema_migrations SET checksum = REPEAT('0', 64) WHERE version = 1");
    await conn.end();
    for (const args of [['init', '--check'], ['init']]) {
      const res = await runCli([...args, '--config', env.configPath]);
      expect(res.code).toBe(2);
      expect(res.stdout + res.stderr).toContain('migration 1_core was changed after it was applied');
    }
  });
});
