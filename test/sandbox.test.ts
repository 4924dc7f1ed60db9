import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/index.js';
import { sandboxConfigYaml } from '../src/sandbox/index.js';
import { newClusterId } from '../src/sandbox/kafka.js';
import { runCli, spawnCli } from './support/cli.js';

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('membermig sandbox up | status | down', () => {
  const dir = mkdtempSync(join(tmpdir(), 'membermig-sandbox-'));
  afterAll(async () => {
    await runCli(['sandbox', 'down', '--dir', dir, '--purge']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('--no-kafka: starts four servers, writes a valid config, reuses them, stops only them by PID', async () => {
    const up = await runCli(['sandbox', 'up', '--no-kafka', '--dir', dir, '--json']);
    expect(up.code, up.stderr).toBe(0);
    const state = JSON.parse(up.stdout).result;
    expect(state.servers.map((s: { name: string }) => s.name)).toEqual(['legacy', 'control', 'shard-a', 'shard-b']);
    expect(state.kafka).toBeUndefined();
    const config = parseConfig(readFileSync(state.configPath, 'utf8'), state.configPath);
    expect(config.cdc).toBeUndefined();
    expect(config.shards.count).toBe(16);

    const again = JSON.parse((await runCli(['sandbox', 'up', '--no-kafka', '--dir', dir, '--json'])).stdout).result;
    expect(again.servers.map((s: { pid: number }) => s.pid)).toEqual(state.servers.map((s: { pid: number }) => s.pid));
    // Its next steps say the legacy table comes first: init on this sandbox as it is fails (no source table).
    const upText = (await runCli(['sandbox', 'up', '--no-kafka', '--dir', dir])).stdout;
    expect(upText).toContain('the config copies memberdb.member on the legacy server, which sandbox up does not create');
    expect(upText).toContain(`membermig sandbox demo --dir ${dir}`);

    const status = await runCli(['sandbox', 'status', '--dir', dir]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^legacy\s+\d+\s+\d+\s+yes/m);
    // status asks no server: after a demo the table is there, so it gives no such steps.
    expect(status.stdout).not.toContain('sandbox up does not create');
    const init = await runCli(['init', '--config', state.configPath, '--json']);
    expect([init.code, JSON.parse(init.stdout).error]).toEqual([2, expect.stringContaining('the source table does not exist')]);

    const down = await runCli(['sandbox', 'down', '--dir', dir, '--json']);
    expect(JSON.parse(down.stdout).result.stopped).toEqual(['legacy', 'control', 'shard-a', 'shard-b']);
    for (const s of state.servers as { pid: number }[]) expect(isAlive(s.pid)).toBe(false);
    expect((await runCli(['sandbox', 'status', '--dir', dir])).code).toBe(1);
  }, 90_000);

  it('down touches only what is its own: a folder that is no sandbox is not purged, a recorded PID now another program is not signalled', async () => {
    const other = mkdtempSync(join(tmpdir(), 'membermig-not-a-sandbox-'));
    writeFileSync(join(other, 'important.txt'), 'keep me');
    const purge = await runCli(['sandbox', 'down', '--dir', other, '--purge']);
    expect(purge.code).toBe(2);
    expect(purge.stderr).toContain('is not a sandbox (no sandbox.json): nothing stopped, nothing deleted');
    expect(readFileSync(join(other, 'important.txt'), 'utf8')).toBe('keep me');
    // A sandbox whose recorded PID now belongs to another program (after a reboot or a crash).
    const stranger = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const state = { dir: other, configPath: join(other, 'membermig.yaml'), servers: [{ name: 'legacy', port: 1, pid: stranger.pid, url: 'mysql://root@127.0.0.1:1/' }] };
      writeFileSync(join(other, 'sandbox.json'), JSON.stringify(state));
      const down = await runCli(['sandbox', 'down', '--dir', other, '--json']);
      expect(JSON.parse(down.stdout).result.stopped).toEqual([]);
      expect(isAlive(stranger.pid!)).toBe(true);
    } finally {
      stranger.kill();
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('sandbox up interrupted while its servers start: down finds and stops every server it started', async () => {
    const dir2 = mkdtempSync(join(tmpdir(), 'membermig-sandbox-int-'));
    try {
      const up = spawnCli(['sandbox', 'up', '--no-kafka', '--dir', dir2]);
      const exited = new Promise((resolve) => up.on('close', resolve));
      // As soon as one server is recorded (the others are still starting), Ctrl-C.
      for (let i = 0; i < 600 && !existsSync(join(dir2, 'sandbox.json')); i++) await new Promise((r) => setTimeout(r, 25));
      up.kill('SIGINT');
      await exited;
      const state = JSON.parse(readFileSync(join(dir2, 'sandbox.json'), 'utf8')) as { servers: { pid: number }[] };
      expect(state.servers.length).toBeGreaterThan(0);
      await runCli(['sandbox', 'down', '--dir', dir2]);
      // No server of this folder is left running (its recorded ones, and any started after the record was read).
      await new Promise((r) => setTimeout(r, 500));
      const left = readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir2);
          } catch {
            return false;
          }
        });
      expect(left).toEqual([]);
    } finally {
      await runCli(['sandbox', 'down', '--dir', dir2, '--purge']);
      rmSync(dir2, { recursive: true, force: true });
    }
  }, 60_000);

  it('--shards takes a shard count from 1 to 65536: anything else is refused (exit 2) before a server starts or a config is written', async () => {
    const other = mkdtempSync(join(tmpdir(), 'membermig-sandbox-'));
    try {
      for (const bad of ['0', 'abc', '-4', '2.5', '65537']) {
        const r = await runCli(['sandbox', 'up', '--no-kafka', '--shards', bad, '--dir', other, '--json']);
        expect(r.code, r.stderr).toBe(2);
        expect(JSON.parse(r.stdout)).toMatchObject({ command: 'sandbox up', ok: false, exitCode: 2, error: expect.stringContaining('--shards expects a positive integer up to 65536') });
      }
      expect(readdirSync(other)).toEqual([]);
    } finally {
      await runCli(['sandbox', 'down', '--dir', other]); // stops what a refusal that failed started
      rmSync(other, { recursive: true, force: true });
    }
    // An odd count or one shard makes a valid placement too.
    const servers = (['legacy', 'control', 'shard-a', 'shard-b'] as const).map((name, i) => ({ name, port: 4000 + i, pid: 1, url: '' }));
    expect(parseConfig(sandboxConfigYaml(servers, 5), 'membermig.yaml').shards.placement).toEqual([
      { shards: '0-2', server: 'shard-a' },
      { shards: '3-4', server: 'shard-b' },
    ]);
    expect(parseConfig(sandboxConfigYaml(servers, 1), 'membermig.yaml').shards.placement).toEqual([{ shards: '0-0', server: 'shard-a' }]);
  });

  it('the config written with Kafka points sync at the Debezium topic', () => {
    const servers = (['legacy', 'control', 'shard-a', 'shard-b'] as const).map((name, i) => ({ name, port: 4000 + i, pid: 1, url: '' }));
    const text = sandboxConfigYaml(servers, 16, { brokers: ['127.0.0.1:9999'], brokerPid: 1, connectUrl: 'http://127.0.0.1:8083', connectPid: 2, connector: 'c', topic: 'legacy.memberdb.member' });
    const config = parseConfig(text, 'membermig.yaml');
    expect(config.cdc?.kafka).toMatchObject({ brokers: ['127.0.0.1:9999'], topic: 'legacy.memberdb.member', group: 'membermig-sync' });
    expect(config.tables.member).toMatchObject({ source: 'memberdb.member', shard_key: 'member_id' });
    expect(config.source.url).toBe('mysql://root@127.0.0.1:4000/memberdb');
  });

  it('a KRaft cluster id is 16 bytes of base64url and never starts with "-" (the storage tool would take it for an option)', () => {
    for (let i = 0; i < 2000; i++) {
      const id = newClusterId();
      expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
      expect(Buffer.from(id, 'base64url')).toHaveLength(16);
    }
  });
});
