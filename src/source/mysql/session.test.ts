import type { RowDataPacket } from 'mysql2/promise';
import { describe, expect, inject, it } from 'vitest';
import { connectMysql } from '../../mysql/connect.js';
import { SESSION_SETUP } from './reader.js';

/**
 * The MySQL source's session setup against a real server whose own sql_mode has the two modes it
 * takes out (set here on the session, as a server's global default would give it).
 */
describe('MySQL source session setup', () => {
  it('takes PAD_CHAR_TO_FULL_LENGTH and NO_BACKSLASH_ESCAPES out of the server sql_mode, keeps the rest: CHAR reads and hashes unpadded', async () => {
    const conn = await connectMysql(inject('mysql').legacy);
    try {
      await conn.query('CREATE DATABASE IF NOT EXISTS mm_session_test');
      await conn.query("SET SESSION sql_mode = 'STRICT_TRANS_TABLES,PAD_CHAR_TO_FULL_LENGTH,NO_BACKSLASH_ESCAPES,ERROR_FOR_DIVISION_BY_ZERO'");
      await conn.query('CREATE TEMPORARY TABLE mm_session_test.padded (k CHAR(8) NOT NULL)');
      await conn.query("INSERT INTO mm_session_test.padded VALUES ('ab')");
      const read = async () => (await conn.query<RowDataPacket[]>('SELECT k, CRC32(k) AS h, @@session.sql_mode AS mode FROM mm_session_test.padded'))[0][0]!;
      expect((await read()).k).toBe('ab      '); // the mode does pad on this server
      await conn.query(SESSION_SETUP);
      const row = await read();
      expect(row.k).toBe('ab');
      expect(Number(row.h)).toBe(2659403885); // CRC32('ab')
      expect(String(row.mode).split(',').sort()).toEqual(['ERROR_FOR_DIVISION_BY_ZERO', 'STRICT_TRANS_TABLES']);
      expect((await conn.query<RowDataPacket[]>("SELECT @@session.time_zone AS tz"))[0][0]!.tz).toBe('+00:00');
    } finally {
      await conn.query('DROP DATABASE IF EXISTS mm_session_test');
      await conn.end();
    }
  });
});
