import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RowDataPacket } from 'mysql2/promise';
import { connectMysql } from '../src/mysql/connect.js';
import { execCli, runCli, signalledAtStart, watchCli } from './support/cli.js';
import { waitFor } from './support/faults.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { createMemberTable } from './support/nasty.js';

describe('a SIGINT/SIGTERM while the process starts, before the command runs', () => {
  let env: TestEnv;
  const ROWS = 200;

  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 4, extra: { copy: { chunk_rows: 50 } } });
    await createMemberTable(env.legacyUrl, ROWS);
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
  });
  afterAll(async () => env?.cleanup());

  it('full starts stopped and says so (exit 1, its JSON result) instead of dying with 130; a rerun copies everything', async () => {
    const stopped = await signalledAtStart(['full', '--config', env.configPath, '--json'], 'SIGTERM');
    expect(stopped.signal, stopped.stderr).toBeNull();
    expect(stopped.code, stopped.stderr).toBe(1);
    const r = JSON.parse(stopped.stdout).result;
    expect(r.errors.join('\n')).toContain('stopped on request');
    expect(r.rowsThisRun).toBe(0);
    expect(stopped.stderr).toContain('stopping');
    const rerun = await execCli(['full', '--config', env.configPath, '--json']);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(JSON.parse(rerun.stdout).result.rowsThisRun).toBe(ROWS);
  });

  it('verify starts stopped too: state stopped, exit 1, no chunk left leased', async () => {
    const stopped = await signalledAtStart(['verify', '--config', env.configPath, '--json'], 'SIGINT');
    expect(stopped.code, stopped.stderr).toBe(1);
    expect(JSON.parse(stopped.stdout).result.state).toBe('stopped');
    const control = await connectMysql(env.config.control.url);
    const [leased] = await control.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM chunks WHERE state = 'leased'");
    await control.end();
    expect(Number(leased[0]!.n)).toBe(0);
    const rerun = await execCli(['verify', '--config', env.configPath, '--json']);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(JSON.parse(rerun.stdout).result.state).toBe('clean');
  });

  it('a command that does not stop on signals dies of it, as Node would have it (no output)', async () => {
    const killed = await signalledAtStart(['status', '--config', env.configPath, '--json'], 'SIGTERM');
    expect([killed.code, killed.signal, killed.stdout]).toEqual([null, 'SIGTERM', '']);
  });
});

describe('a second SIGINT while full stops', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 4, extra: { copy: { chunk_rows: 50 } } });
    await createMemberTable(env.legacyUrl, 400);
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
  });
  afterAll(async () => env?.cleanup());

  it('quits at once with 130, and with --json still prints its one JSON document', async () => {
    // 20 rows a second: the chunks in hand (50 rows each) take seconds to finish after the first signal.
    const full = watchCli(['full', '--config', env.configPath, '--json', '--max-rows-per-sec', '20']);
    const control = await connectMysql(env.config.control.url);
    try {
      await waitFor('a chunk being copied', async () => {
        const [rows] = await control.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM chunks WHERE state IN ('leased', 'done')");
        return Number(rows[0]!.n) > 0;
      });
    } finally {
      await control.end();
    }
    full.child.kill('SIGINT');
    await full.untilLogged('stopping');
    full.child.kill('SIGINT');
    expect(await full.closed, full.stderr).toBe(130);
    expect(JSON.parse(full.stdout)).toEqual({ command: 'full', ok: false, exitCode: 130, error: expect.stringContaining('quit at once on a second SIGINT') });
    expect(full.stderr).toContain('membermig full: quit at once on a second SIGINT');
  });
});
