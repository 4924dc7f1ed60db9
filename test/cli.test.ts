import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli } from './support/cli.js';

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
  });

  it('an unreachable control store is named, its password is not, and no stack is logged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mm-cli-'));
    const file = join(dir, 'down.yaml');
    writeFileSync(
      file,
      `control: { url: "mysql://root:hunter22@127.0.0.1:9/c" }
source: { kind: mysql, url: "mysql://root@127.0.0.1:9/l" }
servers: { a: { primary: "mysql://root@127.0.0.1:9" } }
shards: { count: 4, function: crc32, database: "m_{shard}", placement: [{ shards: "0-3", server: a }] }
tables: { member: { source: l.member, target: member, shard_key: id } }
`,
    );
    const res = await runCli(['gray', 'show', '--config', file, '--json']);
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout).error).toMatch(/^cannot use the control store \(control\.url, database c\): connect ECONNREFUSED 127\.0\.0\.1:9/);
    expect(res.stderr).not.toContain('hunter22');
    expect(res.stderr).not.toMatch(/\n\s+at /);
  });

  it('a missing config file is refused with exit 2 and a JSON error document', async () => {
    const res = await runCli(['status', '--config', '/nonexistent/mm.yaml', '--json']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('/nonexistent/mm.yaml: config file not found');
    expect(JSON.parse(res.stdout)).toMatchObject({ command: 'status', ok: false, exitCode: 2 });
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
