import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { execCli, ROOT, runCli } from './support/cli.js';

/**
 * A config file whose every server is 127.0.0.1:9, where nothing listens: a command that refuses
 * with exit 2 tried no connection. `server` adds keys to shard server a; `on` puts the control store
 * or the legacy database (its table member) at URLs that answer.
 */
function configOnClosedPort(server = '', on: { control?: string; source?: string } = {}): string {
  const source = on.source ?? 'mysql://root@127.0.0.1:9/l';
  const file = join(mkdtempSync(join(tmpdir(), 'mm-cli-')), 'membermig.yaml');
  writeFileSync(
    file,
    `control: { url: "${on.control ?? 'mysql://root:hunter22@127.0.0.1:9/c'}" }
source: { kind: mysql, url: "${source}" }
servers: { a: { primary: "mysql://root@127.0.0.1:9"${server ? `, ${server}` : ''} } }
shards: { count: 4, function: crc32, database: "m_{shard}", placement: [{ shards: "0-3", server: a }] }
tables: { member: { source: ${new URL(source).pathname.slice(1)}.member, target: member, shard_key: id } }
`,
  );
  return file;
}

describe('command line contract', () => {
  it('--help lists every phase command and exits 0', async () => {
    const res = await runCli(['--help']);
    expect(res.code).toBe(0);
    for (const cmd of ['init', 'full', 'sync', 'verify', 'gray', 'shim', 'status']) expect(res.stdout).toMatch(new RegExp(`^  ${cmd}\\b`, 'm'));
  });

  it('--version prints the version of package.json and exits 0', async () => {
    const res = await runCli(['--version']);
    expect(res.code).toBe(0);
    expect(res.stdout.trim()).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  });

  it('each command explains itself in --help', async () => {
    const res = await runCli(['init', '--help']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('Privileges each account needs');
    expect(res.stdout).toContain('Exit codes');
  });

  it('bad usage exits 2', async () => {
    expect((await runCli(['no-such-command'])).code).toBe(2);
    expect((await runCli(['status', '--log-level', 'loud'])).code).toBe(2);
  });

  it('bad usage with --json still prints one JSON document (exit 2)', async () => {
    const r = await runCli(['init', '--json', '--nope']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ command: 'init', ok: false, exitCode: 2, error: expect.stringContaining("unknown option '--nope'") });
  });

  it('the JSON document of bad usage names the command typed, past options and their values', async () => {
    expect(JSON.parse((await runCli(['--log-level', 'bogus', 'status', '--json'])).stdout)).toMatchObject({ command: 'status', exitCode: 2 });
    expect(JSON.parse((await runCli(['gray', 'check', 'member', '--json'])).stdout)).toMatchObject({ command: 'gray check', exitCode: 2 });
    // An option's value named like a command is no command.
    expect(JSON.parse((await runCli(['--config', 'gray', 'status', '--nope', '--json'])).stdout)).toMatchObject({ command: 'status', exitCode: 2 });
    expect(JSON.parse((await runCli(['gray', 'set', '--reason', 'init', '--json'])).stdout)).toMatchObject({ command: 'gray set', exitCode: 2 });
    // No command (or no subcommand): commander only says "(outputHelp)".
    expect(JSON.parse((await runCli(['--json'])).stdout)).toMatchObject({ command: null, exitCode: 2, error: 'membermig needs a command: see --help' });
    expect(JSON.parse((await runCli(['gray', '--json'])).stdout)).toMatchObject({ command: 'gray', exitCode: 2, error: 'membermig gray needs a command: see --help' });
  });

  it('an unreachable control store is named, its password is not, and its stack is logged only at debug level', async () => {
    const file = configOnClosedPort();
    for (const command of [['verify'], ['gray', 'show'], ['shim', 'show']]) {
      const res = await runCli([...command, '--config', file, '--json']);
      expect(res.code).toBe(1);
      expect(JSON.parse(res.stdout).error).toMatch(/^cannot use the control store \(control\.url, database c\): connect ECONNREFUSED 127\.0\.0\.1:9/);
      expect(res.stderr).not.toContain('hunter22');
      expect(res.stderr).not.toMatch(/command failed|\n\s+at /);
    }
    const debug = await runCli(['shim', 'show', '--config', file, '--log-level', 'debug']);
    expect(debug.stderr).toMatch(/"level":20,.*"msg":"command failed"/);
    expect(debug.stderr).not.toContain('hunter22');
  });

  it('a value read through ${NAME} is printed nowhere: not in a config error, not in status', async () => {
    process.env.MM_CLI_TEST_PW = 'Hunter2Pass';
    try {
      const check = await runCli(['init', '--check', '--json', '--config', configOnClosedPort('max_connections: "${MM_CLI_TEST_PW}"')]);
      expect(check.code).toBe(2);
      expect(check.stdout + check.stderr).not.toContain('Hunter2Pass');

      // A password put under a key that is not a secret's (the dc): status shows the server, never the value.
      const inDc = configOnClosedPort('dc: "${MM_CLI_TEST_PW}"');
      const human = await runCli(['status', '--config', inDc]);
      expect(human.stdout).toMatch(/^a\s+\*\*\*\s+4/m);
      const json = await runCli(['status', '--json', '--config', inDc]);
      expect(JSON.parse(json.stdout).result.servers).toMatchObject([{ name: 'a', dc: '***' }]);
      for (const r of [human, json]) expect(r.stdout + r.stderr).not.toContain('Hunter2Pass');
    } finally {
      delete process.env.MM_CLI_TEST_PW;
    }
  });

  it('verify --sample takes a percentage with or without %, and refuses anything else with one message', async () => {
    const file = configOnClosedPort();
    for (const bad of ['0', '0%', '150%', 'abc', '5x', '-5%', '0.005']) {
      const r = await runCli(['verify', '--config', file, '--sample', bad]);
      expect([r.code, r.stderr]).toEqual([2, `membermig verify: --sample: expected a percentage from 0.01% to 100% in steps of 0.01%, got ${bad}\n`]);
    }
    // Accepted: verify goes on to connect (nothing listens, exit 1).
    for (const good of ['5%', '5', '0.5%', '100%']) {
      const r = await runCli(['verify', '--config', file, '--sample', good, '--json']);
      expect([r.code, JSON.parse(r.stdout).error]).toEqual([1, expect.stringContaining('control store')]);
    }
  });

  it('sync dead-letters --table refuses a table the config does not have (exit 2, before any connection)', async () => {
    const file = configOnClosedPort();
    const r = await runCli(['sync', 'dead-letters', '--table', 'nosuch', '--config', file, '--json']);
    expect(r.code, r.stderr).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ command: 'sync dead-letters', ok: false, exitCode: 2, error: 'unknown table "nosuch"; the config has: member' });
    // A configured table goes on to the control store (nothing listens, exit 1).
    expect((await runCli(['sync', 'dead-letters', '--table', 'member', '--config', file])).code).toBe(1);
  });

  it('an unreachable legacy source is named', async () => {
    // A dry run: full itself meets the control store (also on the closed port) first.
    const res = await runCli(['full', '--dry-run', '--json', '--config', configOnClosedPort()]);
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout).error).toMatch(/^legacy source \(source\.url\): connect ECONNREFUSED 127\.0\.0\.1:9/);
  });

  it('status before init says the control store is not initialised, not that it is unreachable', async () => {
    // The test server answers, but the control database has never been created.
    const control = Object.assign(new URL(inject('mysql').legacy), { pathname: '/mm_cli_never_initialised' }).toString();
    const file = configOnClosedPort('', { control });
    const human = await runCli(['status', '--config', file]);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/^control store mm_cli_never_initialised: not initialised \(run membermig init\)$/m);
    const json = await runCli(['status', '--json', '--config', file]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout).result.control).toEqual({ database: 'mm_cli_never_initialised', reachable: true, exists: false, appliedVersion: null, latestVersion: expect.any(Number), problems: [] });
  });

  it('full --dry-run without a readable control store says whether a job exists is unknown, and exits 1', async () => {
    // The legacy table answers; the control store (and the shard server) on the closed port do not.
    const legacy = await connectMysql(inject('mysql').legacy);
    const db = `mm_cli_dry_${randomBytes(3).toString('hex')}`;
    try {
      await legacy.query(`CREATE DATABASE ${db}`);
      await legacy.query(`CREATE TABLE ${db}.member (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(10) NULL)`);
      const file = configOnClosedPort('', { source: Object.assign(new URL(inject('mysql').legacy), { pathname: `/${db}` }).toString() });
      const human = await runCli(['full', '--dry-run', '--config', file]);
      expect(human.code, human.stderr).toBe(1);
      expect(human.stdout).toContain('Plan (--dry-run, nothing was changed)');
      expect(human.stdout).toContain('cannot read the control store (control.url, database c): connect ECONNREFUSED 127.0.0.1:9');
      expect(human.stdout).toContain('whether a job exists that a run would go on with is unknown');
      const json = await runCli(['full', '--dry-run', '--json', '--config', file]);
      expect(json.code).toBe(1);
      expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, exitCode: 1, result: { state: 'planned', plan: { controlError: expect.stringContaining('ECONNREFUSED') } } });
      expect(json.stdout + json.stderr).not.toContain('hunter22');
    } finally {
      await legacy.query(`DROP DATABASE IF EXISTS ${db}`);
      await legacy.end();
    }
  });

  it('a missing config file is refused with exit 2 and a JSON error document', async () => {
    const res = await runCli(['status', '--config', '/nonexistent/mm.yaml', '--json']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('/nonexistent/mm.yaml: config file not found');
    expect(JSON.parse(res.stdout)).toMatchObject({ command: 'status', ok: false, exitCode: 2 });
  });

  it('without --config the file is $MEMBERMIG_CONFIG, else ./membermig.yaml', async () => {
    const fromEnv = await execCli(['status', '--json'], { ...process.env, MEMBERMIG_CONFIG: '/nonexistent/from-env.yaml' });
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr).toContain('/nonexistent/from-env.yaml: config file not found');
    const { MEMBERMIG_CONFIG: _unset, ...env } = process.env;
    const cwd = mkdtempSync(join(tmpdir(), 'mm-cwd-'));
    // The closed-port config in the working directory: read (a connection refused, exit 1), not "not found".
    writeFileSync(join(cwd, 'membermig.yaml'), readFileSync(configOnClosedPort()));
    const fromCwd = await execCli(['status', '--json'], env, cwd);
    expect(fromCwd.stderr).not.toContain('config file not found');
    expect(JSON.parse(fromCwd.stdout)).toMatchObject({ command: 'status', exitCode: 1, result: { control: { database: 'c', reachable: false, error: 'connect ECONNREFUSED 127.0.0.1:9' } } });
  });

  it('a bad config is refused before any connection, with file:line:col and path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mm-cli-'));
    const file = join(dir, 'bad.yaml');
    // Port 9 on 127.0.0.1 would refuse a connection: exit 2 with a config message proves none was tried.
    writeFileSync(
      file,
      `control: { url: "mysql://root:hunter22@127.0.0.1:9/c" }
source: { kind: mysql, url: "mysql://root@127.0.0.1:9/l" }
servers: { a: { primary: "mysql://root@127.0.0.1:9" } }
shards: { count: 4, function: crc32, database: "m_{shard}", placement: [{ shards: "0-2", server: a }] }
tables: { member: { source: l.member, target: member, shard_key: id } }
`,
    );
    const res = await runCli(['init', '--config', file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`${file}:4:72 shards.placement: shards 3-3 are not placed on any server`);
    expect(res.stderr).not.toContain('hunter22');
  });
});
