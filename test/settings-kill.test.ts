import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { runCli } from './support/cli.js';
import { memberAndAddressEnv, type TestEnv } from './support/env.js';
import { startCli, waitFor } from './support/faults.js';

/**
 * Settings changes (gray, shim) killed with SIGKILL part-way, and run again: a rerun of the same
 * command must end where one whole run would have.
 */
describe('gray and shim changes killed part-way', () => {
  let env: TestEnv;
  let db: Connection;
  const json = async (...args: string[]) => {
    const r = await runCli([...args, '--config', env.configPath, '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    return JSON.parse(r.stdout).result;
  };

  beforeAll(async () => {
    env = await memberAndAddressEnv(4);
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
    db = await connectMysql(env.config.control.url);
  });
  afterAll(async () => {
    await db?.end();
    await env?.cleanup();
  });

  /** Waits until a session on the control database waits for a row lock. */
  async function untilLockWait(): Promise<void> {
    await waitFor('a control-store session waiting for a row lock', async () => {
      const [rows] = await db.query(
        `SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
          WHERE t.trx_state = 'LOCK WAIT' AND p.DB = ?`,
        [`${env.prefix}_control`],
      );
      return Number((rows as { n: number }[])[0]!.n) > 0;
    }, 30_000);
  }

  it('gray rollback of every table, killed after the first table: the rerun rolls each table back once, not the first twice', async () => {
    for (const table of ['member', 'address']) {
      await json('gray', 'set', table, '--read', '1%', '--force', '--reason', 'first step');
      await json('gray', 'set', table, '--read', '5%', '--force', '--reason', 'second step');
    }
    // Hold the second table's gray row, so the rollback stops there: after the first table, before the second.
    const holder = await connectMysql(env.config.control.url);
    try {
      await holder.beginTransaction();
      await holder.query("SELECT value FROM settings WHERE table_name = 'address' AND kind = 'gray' FOR UPDATE");
      const child = startCli(['gray', 'rollback', '--reason', 'incident', '--config', env.configPath]);
      await untilLockWait();
      child.proc.kill('SIGKILL');
      expect((await child.exit).signal).toBe('SIGKILL');
      await holder.rollback();
    } finally {
      await holder.end();
    }
    // The operator runs the same command again.
    const again = await json('gray', 'rollback', '--reason', 'incident');
    expect(again.map((r: { table: string }) => r.table)).toEqual(['member', 'address']);
    const views = await json('gray', 'show');
    expect(views.map((v: { table: string; readBp: number }) => [v.table, v.readBp])).toEqual([
      ['member', 100],
      ['address', 100],
    ]);
    const history = await json('gray', 'history');
    expect(history.filter((h: { action: string }) => h.action === 'rollback').map((h: { table: string }) => h.table).sort()).toEqual(['address', 'member']);
  }, 120_000);
});
