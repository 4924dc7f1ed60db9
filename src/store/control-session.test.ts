import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../mysql/connect.js';
import { startMariaDb, type MariaDbInstance } from '../sandbox/mariadb.js';
import { connectControl, openControlStore, setupControlStore, type ControlStore } from './control.js';

/**
 * A control server whose default is autocommit=0 (a private MariaDB started so): membermig's
 * sessions commit each statement all the same. Before, the shim's repair_queue entry was reported
 * queued and never committed, and its long-lived polling connection kept reading its first snapshot
 * (a gray rollback was never acted on).
 */
let dir: string;
let server: MariaDbInstance;
let store: ControlStore;
const config = () => ({ control: { url: `${server.url.replace(/\/[^/]*$/, '')}/membermig_session_control` } });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'membermig-session-'));
  server = await startMariaDb({ dir, extraArgs: ['--autocommit=0', '--default-time-zone=+00:00'] });
  await setupControlStore(config());
  store = openControlStore(config());
}, 120_000);

afterAll(async () => {
  await store?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('control-store sessions on a server with autocommit=0 by default', () => {
  it('the server really defaults to autocommit=0', async () => {
    const plain = await connectMysql(config().control.url);
    const [rows] = await plain.query<RowDataPacket[]>('SELECT @@autocommit AS a');
    await plain.end();
    expect(Number(rows[0]!.a)).toBe(0);
  });

  it("a pool statement outside a transaction is committed (another session sees it)", async () => {
    await store.pool.query("INSERT INTO repair_queue (table_name, pk, reason, origin, behind) VALUES ('member', '[\"1\"]', 'test', 'shim', 'mysql')");
    const other = await connectMysql(config().control.url);
    const [rows] = await other.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM repair_queue');
    await other.end();
    expect(Number(rows[0]!.n)).toBe(1);
  });

  it('a long-lived control connection sees what others commit after its first read (no frozen snapshot)', async () => {
    const polling = await connectControl(config());
    const version = async () => Number((await polling.query<RowDataPacket[]>('SELECT version FROM settings_version WHERE id = 1'))[0][0]!.version);
    try {
      const before = await version();
      await store.pool.query('UPDATE settings_version SET version = version + 1 WHERE id = 1');
      expect(await version()).toBe(before + 1);
    } finally {
      await polling.end();
    }
  });
});
