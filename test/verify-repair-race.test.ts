import type { Connection, RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { silentLogger } from '../src/log.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { runVerify } from '../src/verify/index.js';
import { runCli } from './support/cli.js';
import { copyTable } from './support/copy-rows.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * verify --repair reads the legacy rows, then writes them: a newer row reaching the shard in
 * between (sync applying legacy's next change, or a member's MySQL-primary write whose legacy half
 * failed, queued after this run read the queue) was overwritten by the older one; in the second case
 * for good. Repairs now write keep-newer, as sync does. The window is held open with a row lock:
 * the repair's upsert waits on it while the lock holder writes the newer row.
 */
describe('verify --repair racing a newer write of the same row', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv({
      shardCount: 4,
      tables: { member: { source: 'legacy.member', target: 'member', shard_key: 'member_id', updated_at: 'updated_at' } },
      legacySql: [
        'CREATE TABLE member (member_id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL, updated_at DATETIME(6) NOT NULL)',
        `INSERT INTO member VALUES ${Array.from({ length: 20 }, (_, i) => `(${i + 1}, 'n${i}', '2024-01-01 00:00:00')`).join(', ')}`,
      ],
      extra: { verify: { recheck_after_seconds: 0 } },
    });
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
    await copyTable(env.config, 'member');
  }, 120_000);
  afterAll(async () => env?.cleanup());

  it('does not put an older row over the newer one sync wrote meanwhile', async () => {
    const map = shardMapFromConfig(env.config);
    const shard = map.shardOf('5');
    const shardConn = await connectMysql(map.serverOf(shard).primary, { database: map.databaseOf(shard) });
    const legacy = await connectMysql(env.legacyUrl);
    try {
      // v1 on legacy (a change sync has not applied yet): the shard's copy differs.
      await legacy.query("UPDATE member SET name = 'v1', updated_at = '2024-02-01 00:00:00' WHERE member_id = 5");
      // "sync" holds the shard row while it is about to apply an event.
      await shardConn.query('BEGIN');
      await shardConn.query('SELECT * FROM member WHERE member_id = 5 FOR UPDATE');

      const verifying = runVerify(env.config, { logger: silentLogger, repair: true });
      // Wait until the repair's upsert waits for the row (it has read legacy's v1 by then).
      expect(await untilWaiting(shardConn, 'INSERT INTO%member%ON DUPLICATE KEY UPDATE%')).toBe(true);
      // Legacy moves on to v2 and sync applies it to the shard (with keepNewer, as sync does).
      await legacy.query("UPDATE member SET name = 'v2', updated_at = '2024-03-01 00:00:00' WHERE member_id = 5");
      await shardConn.query("UPDATE member SET name = 'v2', updated_at = '2024-03-01 00:00:00' WHERE member_id = 5");
      await shardConn.query('COMMIT');

      const result = await verifying;
      const [after] = await shardConn.query<RowDataPacket[]>('SELECT name, updated_at FROM member WHERE member_id = 5');
      expect(after[0]!.name).toBe('v2');
      // The repair's re-check saw the newer row, equal to legacy's now: the difference is repaired.
      expect(result.differences.map((d) => [d.key.join(), d.kind])).toEqual([['5', 'different']]);
    } finally {
      await shardConn.end().catch(() => {});
      await legacy.end();
    }
  }, 120_000);

  it("does not delete a row the member wrote in MySQL after the re-check found the key extra", async () => {
    const map = shardMapFromConfig(env.config);
    const shard = map.shardOf('7');
    const shardConn = await connectMysql(map.serverOf(shard).primary, { database: map.databaseOf(shard) });
    const legacy = await connectMysql(env.legacyUrl);
    try {
      // Legacy deleted member 7 (sync has not applied it): the shard's copy is extra.
      await legacy.query('DELETE FROM member WHERE member_id = 7');
      await shardConn.query('BEGIN');
      await shardConn.query('SELECT * FROM member WHERE member_id = 7 FOR UPDATE');
      const verifying = runVerify(env.config, { logger: silentLogger, repair: true });
      expect(await untilWaiting(shardConn, 'DELETE FROM%member%')).toBe(true);
      // Meanwhile the member is created again, MySQL first (its legacy write still to come).
      await shardConn.query("UPDATE member SET name = 'created again', updated_at = '2024-04-01 00:00:00' WHERE member_id = 7");
      await shardConn.query('COMMIT');
      await verifying;
      const [after] = await shardConn.query<RowDataPacket[]>('SELECT name FROM member WHERE member_id = 7');
      expect(after.map((r) => r.name)).toEqual(['created again']);
    } finally {
      await shardConn.end().catch(() => {});
      await legacy.end();
    }
  }, 120_000);
});

/** Whether a statement like `pattern` shows up on the server (waiting for the row lock held) within 30 s. */
async function untilWaiting(conn: Connection, pattern: string): Promise<boolean> {
  for (let i = 0; i < 300; i++) {
    const [rows] = await conn.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE ?', [pattern]);
    if (Number(rows[0]!.n) > 0) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
