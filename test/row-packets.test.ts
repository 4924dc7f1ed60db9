import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pool } from 'mysql2/promise';
import { createMysqlPool } from '../src/mysql/connect.js';
import { ColumnCursor, forEachRowBytes } from '../src/mysql/row-packets.js';
import { freePort } from '../src/sandbox/mariadb.js';
import { testUrls } from './support/env.js';

/** The copy's line path reads rows as packet bytes (src/mysql/row-packets.ts), against a real server. */
describe('forEachRowBytes', () => {
  let pool: Pool;
  beforeAll(() => {
    // The sequence engine's seq_1_to_N tables need a current database: any will do.
    pool = createMysqlPool(`${testUrls().legacy.replace(/\/?$/, '/')}mysql`, { connectionLimit: 1 });
  });
  afterAll(() => pool.end());

  const texts = async (sql: string): Promise<(string | null)[][]> => {
    const rows: (string | null)[][] = [];
    const c = new ColumnCursor();
    await forEachRowBytes(pool, sql, (buffer, start, end) => {
      const row: (string | null)[] = [];
      c.reset(buffer, start);
      while (c.at < end) {
        c.next();
        row.push(c.text());
      }
      rows.push(row);
    });
    return rows;
  };

  it('gives every row of a result, columns of any length and NULL included', async () => {
    const rows = await texts("SELECT seq, IF(seq % 3 = 0, NULL, REPEAT('é', seq * 40)), REPEAT('x', 70000) FROM seq_1_to_50");
    expect(rows).toHaveLength(50);
    for (const [i, row] of rows.entries()) {
      const n = i + 1;
      expect(row).toEqual([String(n), n % 3 === 0 ? null : 'é'.repeat(n * 40), 'x'.repeat(70000)]);
    }
    expect(await texts('SELECT 1 FROM seq_1_to_5 WHERE seq > 5')).toEqual([]);
  });

  it("rejects with the callback's first error after draining the result, and the connection serves the next query", async () => {
    let seen = 0;
    const failing = forEachRowBytes(pool, 'SELECT seq FROM seq_1_to_1000', () => {
      seen++;
      throw new Error(`bad row ${seen}`);
    });
    await expect(failing).rejects.toThrow('bad row 1');
    expect(seen).toBe(1);
    expect(await texts('SELECT 7')).toEqual([['7']]);
  });

  it("rejects with the server's error, also one that comes after rows", async () => {
    await expect(forEachRowBytes(pool, 'SELECT * FROM no_such_table_here', () => {})).rejects.toThrow(/no_such_table_here/);
    let seen = 0;
    const midway = forEachRowBytes(pool, 'SELECT seq FROM seq_1_to_1000 WHERE IF(seq = 500, (SELECT 1 UNION SELECT 2), 1)', () => void seen++);
    await expect(midway).rejects.toThrow(/more than 1 row/);
    expect(seen).toBe(499);
    expect(await texts('SELECT 8')).toEqual([['8']]);
  });
});

describe('forEachRowBytes without a server', () => {
  it('rejects when the pool cannot connect (no hang)', async () => {
    const port = await freePort();
    const pool = createMysqlPool(`mysql://root@127.0.0.1:${port}/`, { connectionLimit: 1 });
    try {
      await expect(forEachRowBytes(pool, 'SELECT 1', () => {})).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      await pool.end();
    }
  });
});
