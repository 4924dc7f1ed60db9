import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql, serverUrl } from '../mysql/connect.js';
import { isoTime } from '../mysql/iso-time.js';
import { startMariaDb, type MariaDbInstance } from '../sandbox/mariadb.js';
import { connectControl, openControlStore, setupControlStore, type ControlStore } from './control.js';
import { ensureDatabase, migrate, readMigrations } from './migrate.js';
import { pinShardMap } from './shard-map.js';

/**
 * Control-store times are UTC whatever the control server's time zone: a private MariaDB running on
 * +08:00 (as a control server kept on Asia/Shanghai) holds a control store, and what membermig
 * records there by NOW(6) and column defaults reads back as now in UTC, not eight hours ahead.
 * The store is first migrated as an earlier membermig did (to 120, sessions in the server's zone)
 * and written to, so migration 130 has local times to move to UTC.
 */

let dir: string;
let server: MariaDbInstance;
let store: ControlStore;
const config = () => ({ control: { url: `${server.url.replace(/\/[^/]*$/, '')}/membermig_tz_control` } });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'membermig-tz-'));
  server = await startMariaDb({ dir, extraArgs: ['--default-time-zone=+08:00'] });
  const admin = await connectMysql(serverUrl(config().control.url));
  await ensureDatabase(admin, 'membermig_tz_control');
  await admin.end();
  const before = await connectMysql(config().control.url, { multipleStatements: true });
  await migrate(before, readMigrations().filter((m) => m.version <= 120));
  await before.query("INSERT INTO jobs (kind, name, state, finished_at) VALUES ('full', 'before-utc', 'done', NOW(6))");
  await before.end();
  await setupControlStore(config());
  store = openControlStore(config());
});

afterAll(async () => {
  await store?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Seconds between an ISO 8601 UTC time and now. */
const secondsFromNow = (iso: string) => Math.abs(Date.parse(iso) - Date.now()) / 1000;

describe('control-store times on a server in another time zone', () => {
  it('the server really is on +08:00 for a plain session', async () => {
    const [rows] = await store.pool.query<RowDataPacket[]>('SELECT @@global.time_zone AS tz');
    expect(rows[0]!.tz).toBe('+08:00');
  });

  it("migration 130 moved the times written in the server's zone before it to UTC, once", async () => {
    const times = async () => {
      const [rows] = await store.pool.query<RowDataPacket[]>(`SELECT ${isoTime('created_at')}, ${isoTime('finished_at')} FROM jobs WHERE name = 'before-utc'`);
      return rows[0]!;
    };
    const moved = await times();
    expect(secondsFromNow(moved.created_at as string)).toBeLessThan(120);
    expect(secondsFromNow(moved.finished_at as string)).toBeLessThan(120);
    // A crash after its statements, before its ledger row: the rerun applies it again and moves nothing more.
    await store.pool.query('DELETE FROM schema_migrations WHERE version = 130');
    await setupControlStore(config());
    expect(await times()).toEqual(moved);
    const [shift] = await store.pool.query<RowDataPacket[]>('SELECT seconds FROM control_utc_shift');
    expect(shift.map((r) => r.seconds)).toEqual([8 * 3600]);
  });

  it('a time filled by a column default, through the pool, reads back as now in UTC', async () => {
    await store.pool.query("INSERT INTO jobs (kind, name, state) VALUES ('full', 'tz', 'done')");
    const [rows] = await store.pool.query<RowDataPacket[]>(`SELECT ${isoTime('created_at')} FROM jobs WHERE name = 'tz'`);
    expect(secondsFromNow(rows[0]!.created_at as string)).toBeLessThan(120);
  });

  it('one control connection (migrations, the shim) runs in UTC too', async () => {
    const conn = await connectControl(config());
    try {
      const [rows] = await conn.query<RowDataPacket[]>(`SELECT ${isoTime('NOW(6)', 'now')}`);
      expect(secondsFromNow(rows[0]!.now as string)).toBeLessThan(120);
    } finally {
      await conn.end();
    }
  });

  it("the shard map's refusal gives the time it was recorded in UTC", async () => {
    await pinShardMap(store, { count: 8, function: 'crc32', database: 'tz_s{shard}' });
    const refusal = await pinShardMap(store, { count: 16, function: 'crc32', database: 'tz_s{shard}' }).then(
      () => null,
      (e: Error) => e.message,
    );
    const recorded = /recorded (\S+)\)/.exec(refusal ?? '')?.[1];
    expect(recorded, refusal ?? 'not refused').toMatch(/Z$/);
    expect(secondsFromNow(recorded!)).toBeLessThan(120);
  });
});
