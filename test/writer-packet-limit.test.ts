import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../src/config/schema.js';
import { connectMysql } from '../src/mysql/connect.js';
import { isTransient } from '../src/mysql/retry.js';
import type { Row, TableSpec } from '../src/rows/types.js';
import { startMariaDb, type MariaDbInstance } from '../src/sandbox/mariadb.js';
import { StatementTooLargeError } from '../src/mysql/packet.js';
import { createShardWriter, type ShardWriter } from '../src/target/writer.js';

const KB = 1024;

/**
 * The shard writer against a server whose max_allowed_packet is 1 MB (a private mariadbd): such a
 * server drops the connection of a statement over it, which reads as "server down" (ECONNRESET),
 * so sync parked that server's writes for ever. Statements are cut by the server's own limit; a
 * row that alone cannot fit is refused by name, as a refusal (never transient), and not sent.
 */
describe('the shard writer under a server max_allowed_packet of 1 MB', () => {
  let dir: string;
  let server: MariaDbInstance;
  let writer: ShardWriter;
  const spec: TableSpec = {
    name: 'doc',
    sourceSchema: 'legacy',
    sourceTable: 'doc',
    target: 'doc',
    primaryKey: ['id'],
    shardKey: 'id',
    updatedAt: 'changed',
    columns: [
      { source: 'id', target: 'id', sourceType: { dataType: 'varbinary' }, targetType: 'VARBINARY(3000)', nullable: false },
      { source: 'body', target: 'body', sourceType: { dataType: 'longtext' }, targetType: 'LONGTEXT', nullable: true },
      { source: 'changed', target: 'changed', sourceType: { dataType: 'datetime' }, targetType: 'DATETIME(6)', nullable: false },
    ],
  };
  const STAMP = '2026-11-29 10:00:00.123456';
  /** A key of 3,000 bytes (6,000 as hex in SQL): 500 of them in one statement would be 3 MB. */
  const wideKey = (i: number) => Buffer.concat([Buffer.from(String(i).padStart(8, '0')), Buffer.alloc(2992, i % 251)]);
  const rowsInServer = async (): Promise<RowDataPacket[]> => {
    const conn = await connectMysql(server.url);
    try {
      return (await conn.query<RowDataPacket[]>('SELECT id, body FROM s0.doc ORDER BY id'))[0];
    } finally {
      await conn.end();
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'membermig-packet-'));
    server = await startMariaDb({ dir, extraArgs: ['--max-allowed-packet=1M'] });
    const conn = await connectMysql(server.url);
    await conn.query('CREATE DATABASE s0');
    await conn.query('CREATE TABLE s0.doc (id VARBINARY(3000) NOT NULL PRIMARY KEY, body LONGTEXT CHARACTER SET utf8mb4 NULL, changed DATETIME(6) NOT NULL) ENGINE=InnoDB');
    await conn.end();
    const config: Pick<Config, 'servers' | 'shards'> = {
      servers: { a: { primary: server.url, replicas: [], max_connections: 2 } },
      shards: { count: 1, function: 'mod', database: 's{shard}', placement: [{ shards: '0', server: 'a' }] },
    } as Pick<Config, 'servers' | 'shards'>;
    writer = createShardWriter(config);
  });
  afterAll(async () => {
    await writer?.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    const conn = await connectMysql(server.url);
    await conn.query('DELETE FROM s0.doc');
    await conn.end();
  });

  it('writes rows each under the limit that together are over it (ten of 300 KB), and a row near it of 3-byte characters', async () => {
    const rows: Row[] = Array.from({ length: 10 }, (_v, i) => [Buffer.from(`r${i}`), `${i}`.repeat(300 * KB), STAMP]);
    const chinese = '张'.repeat(330 * KB); // 990 KB of UTF-8 in a statement of 1 MB at most
    rows.push([Buffer.from('zh'), chinese, STAMP]);
    await writer.upsertRows(0, spec, rows);
    const stored = await rowsInServer();
    expect(stored.map((r) => (r.id as Buffer).toString())).toEqual([...rows.map((r) => (r[0] as Buffer).toString())].sort());
    for (const row of rows) expect(stored.find((r) => (r.id as Buffer).equals(row[0] as Buffer))!.body === row[1]).toBe(true);
  });

  it('refuses a row whose statement alone is over the limit: named, not transient (sync dead-letters it), nothing of the call written', async () => {
    const big: Row = [Buffer.from('big'), 'x'.repeat(1100 * KB), STAMP];
    const error = await writer.upsertRows(0, spec, [[Buffer.from('small'), 'fine', STAMP], big]).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(StatementTooLargeError);
    expect(isTransient(error)).toBe(false);
    expect(error!.message).toMatch(/^the upsert of doc key 626967 takes \d+ bytes of SQL, over the server's max_allowed_packet of 1048576 bytes/);
    expect(await rowsInServer()).toEqual([]);
    // The writer's connections are still good.
    await writer.upsertRows(0, spec, [[Buffer.from('after'), 'ok', STAMP]]);
    expect((await rowsInServer()).map((r) => (r.id as Buffer).toString())).toContain('after');
  });

  it('cuts deletes and keep-newer look-ups of many wide keys by the limit (400 keys of 3,000 bytes: 2.4 MB as hex)', async () => {
    const keys = Array.from({ length: 400 }, (_v, i) => wideKey(i));
    await writer.upsertRows(0, spec, keys.map((k) => [k, null, STAMP]));
    expect((await rowsInServer()).length).toBe(400);
    const newer = await writer.keysKeptNewer(0, spec, keys.map((k) => [k]), keys.map(() => '2026-01-01 00:00:00'));
    expect(newer.length).toBe(400);
    expect(await writer.deleteKeys(0, spec, keys.map((k) => [k]), { notNewerThan: keys.map(() => '2027-01-01 00:00:00') })).toBe(400);
    expect(await rowsInServer()).toEqual([]);
  });
});
