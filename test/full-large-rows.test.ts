import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { runCli } from './support/cli.js';
import { createCopyEnv } from './support/copy-env.js';
import type { TestEnv } from './support/env.js';

const MB = 1024 * 1024;

/**
 * Rows whose LOAD DATA line outgrows max_allowed_packet (16 MB on the test servers) and values
 * of every length-encoding size: the line path joins a row's columns in Node from the result's
 * packets (src/rows/tsv.ts), so no server-side CONCAT limits a row's size.
 */
describe('membermig full: large rows', () => {
  let env: TestEnv;
  const text = (n: number) => 'ab\\\t\n张'.repeat(Math.ceil(n / 8)).slice(0, n);
  const rows: [number, string | null, Buffer | null][] = [
    [1, text(6 * MB), Buffer.alloc(5 * MB, 0x5c)],
    [2, text(250), null],
    [3, text(251), Buffer.from([0x09, 0x0a, 0x00])],
    [4, null, Buffer.alloc(70_000, 0xff)],
    [5, text(65_536), Buffer.alloc(0)],
  ];

  beforeAll(async () => {
    env = await createCopyEnv({
      shardCount: 2,
      tables: (db) => ({ doc: { source: `${db}.doc`, target: 'doc', shard_key: 'id' } }),
    });
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query('CREATE TABLE doc (id BIGINT NOT NULL PRIMARY KEY, body LONGTEXT CHARACTER SET utf8mb4 NULL, photo LONGBLOB NULL) ENGINE=InnoDB');
    // One value per statement: a statement carries a blob as hex text, twice its size.
    for (const [id, body, photo] of rows) {
      await legacy.query('INSERT INTO doc VALUES (?, ?, NULL)', [id, body]);
      await legacy.query('UPDATE doc SET photo = ? WHERE id = ?', [photo, id]);
    }
    await legacy.end();
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
  });
  afterAll(async () => env?.cleanup());

  it('copies each row byte for byte', async () => {
    const res = await runCli(['full', '--config', env.configPath, '--json']);
    expect(res.code, res.stderr).toBe(0);
    const map = shardMapFromConfig(env.config);
    for (const [id, body, photo] of rows) {
      const at = map.locate(String(id));
      const shard = await connectMysql(at.server.primary);
      const [found] = await shard.query(`SELECT body, photo FROM \`${at.database}\`.doc WHERE id = ?`, [id]);
      await shard.end();
      const row = (found as { body: string | null; photo: Buffer | null }[])[0];
      expect(row, `row ${id}`).toBeDefined();
      expect(row!.body === body, `body of row ${id}`).toBe(true);
      expect(photo === null ? row!.photo === null : Buffer.compare(row!.photo!, photo) === 0, `photo of row ${id}`).toBe(true);
    }
  });
});
