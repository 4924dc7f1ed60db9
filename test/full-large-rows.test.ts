import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { runCli } from './support/cli.js';
import { createCopyEnv, writeConfig } from './support/copy-env.js';
import { cliPeakRss } from './support/peak-rss.js';
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

/**
 * Values whose transformed form outgrows the source server's max_allowed_packet (16 MB here):
 * HEX() of 9 MB of bytes (18 MB) and 9 MB of latin1 é in utf8mb4 (18 MB). The server makes such a
 * result NULL with a warning only; the copy took that NULL for the value's and wrote NULL.
 */
describe('membermig full: values the source server cannot transform within max_allowed_packet', () => {
  let env: TestEnv;
  const NINE_MB = 9 * MB;

  beforeAll(async () => {
    env = await createCopyEnv({
      shardCount: 2,
      tables: (db) => ({
        photo: { source: `${db}.photo`, target: 'photo', shard_key: 'id' },
        note: { source: `${db}.note`, target: 'note', shard_key: 'id' },
      }),
    });
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query('CREATE TABLE photo (id BIGINT NOT NULL PRIMARY KEY, bl LONGBLOB NULL, tag VARCHAR(10) NULL) ENGINE=InnoDB');
    await legacy.query("INSERT INTO photo VALUES (1, NULL, 'a'), (2, X'00', 'b'), (3, NULL, NULL)");
    await legacy.query(`UPDATE photo SET bl = REPEAT(X'AB', ${NINE_MB}) WHERE id = 1`);
    await legacy.query('CREATE TABLE note (id BIGINT NOT NULL PRIMARY KEY, body LONGTEXT CHARACTER SET latin1 NULL) ENGINE=InnoDB');
    await legacy.query("INSERT INTO note VALUES (1, NULL), (2, 'small é')");
    await legacy.query(`UPDATE note SET body = REPEAT(X'E9', ${NINE_MB}) WHERE id = 1`);
    await legacy.end();
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
  }, 120_000);
  afterAll(async () => env?.cleanup());

  /** The row as the shard holds it: [id, LENGTH(column)] (null when NULL), or undefined when absent. */
  async function shardValueLength(table: string, column: string, id: number): Promise<number | null | undefined> {
    const at = shardMapFromConfig(env.config).locate(String(id));
    const shard = await connectMysql(at.server.primary);
    try {
      const [rows] = await shard.query(`SELECT LENGTH(${column}) AS n FROM \`${at.database}\`.${table} WHERE id = ?`, [id]);
      const row = (rows as { n: number | null }[])[0];
      return row === undefined ? undefined : row.n === null ? null : Number(row.n);
    } finally {
      await shard.end();
    }
  }

  it('bytes past the server HEX(): the chunk takes the row path instead of writing NULL', async () => {
    const res = await runCli(['full', '--config', env.configPath, '--tables', 'photo', '--json']);
    // 9 MB of bytes is an 18 MB statement on the row path: over the shard server's limit, refused by name, not bent.
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toMatch(/"table":"photo".*the upsert of photo key 1 takes \d+ bytes of SQL, over the server's max_allowed_packet of 16777216 bytes: it was not written \(raise max_allowed_packet on that server\)/);
    expect(await shardValueLength('photo', 'bl', 1)).toBeUndefined();
  }, 120_000);

  it('text the source cannot convert within max_allowed_packet: the line path copies it exactly; the row path refuses it, naming table, row and column', async () => {
    // The line path sends CONVERT(body USING utf8mb4) as a column, which the server does not cut.
    const lines = await runCli(['full', '--config', env.configPath, '--tables', 'note', '--json']);
    expect(lines.code, lines.stderr).toBe(0);
    const legacy = await connectMysql(env.legacyUrl);
    const [[want]] = (await legacy.query('SELECT MD5(CONVERT(body USING utf8mb4)) AS md5 FROM note WHERE id = 1')) as unknown as [{ md5: string }[]];
    await legacy.end();
    const at = shardMapFromConfig(env.config).locate('1');
    const shard = await connectMysql(at.server.primary);
    const [[got]] = (await shard.query(`SELECT MD5(body) AS md5, LENGTH(body) AS n FROM \`${at.database}\`.note WHERE id = 1`)) as unknown as [{ md5: string; n: number }[]];
    await shard.query(`DELETE FROM \`${at.database}\`.note`);
    await shard.end();
    expect([got!.md5, Number(got!.n)]).toEqual([want!.md5, 2 * NINE_MB]);
    // The row path (and verify's re-check, repair, sync's re-copy) reads it through CONCAT, which the server makes NULL.
    env.raw = { ...env.raw, copy: { ...(env.raw.copy as object), method: 'insert' } };
    writeConfig(env);
    const rows = await runCli(['full', '--config', env.configPath, '--tables', 'note', '--restart', '--json']);
    expect(rows.code, rows.stderr).toBe(1);
    expect(rows.stderr).toMatch(/table note, row \[\\"1\\"\]: column body of table note: the source server could not convert the value to utf8mb4 within its max_allowed_packet/);
    expect(await shardValueLength('note', 'body', 1)).toBeUndefined();
  }, 120_000);
});

/**
 * Wide rows on the LOAD DATA path: a chunk's lines were built whole before any went to the
 * batcher (and its memory budget), so memory grew as chunk_rows x the row width: 160 rows of
 * ~1 MB in one chunk (the default 50,000 rows) held ~260 MB of lines, 488 MB peak RSS for 200
 * such rows. Parts of a chunk now go to the batcher as they are read, the read paused meanwhile.
 */
describe('membermig full: wide rows keep memory bounded', () => {
  let env: TestEnv;
  const ROWS = 160;
  const HALF = 512 * 1024;

  beforeAll(async () => {
    env = await createCopyEnv({
      shardCount: 4,
      tables: (db) => ({ doc: { source: `${db}.doc`, target: 'doc', shard_key: 'id' } }),
      extra: { copy: { workers: 1, buffer_mb: 16 } },
    });
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query('CREATE TABLE doc (id BIGINT NOT NULL PRIMARY KEY, body LONGTEXT CHARACTER SET utf8mb4 NULL, photo LONGBLOB NULL) ENGINE=InnoDB');
    // ~0.5 MB of text with tabs and backslashes to escape and ~0.5 MB of bytes (hex on the wire) a row.
    for (let from = 1; from <= ROWS; from += 10) {
      await legacy.query(
        `INSERT INTO doc SELECT seq, CONCAT(seq, REPEAT('ab\\\\c\\tdefgh', ${HALF / 10})), REPEAT(CHAR(seq % 256, 7, 92), ${Math.floor(HALF / 3)}) FROM seq_${from}_to_${from + 9}`,
      );
    }
    await legacy.end();
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
  }, 180_000);
  afterAll(async () => env?.cleanup());

  /** The copied rows on every shard against the legacy table: count and a checksum of every value. */
  async function expectAllCopied(): Promise<void> {
    const map = shardMapFromConfig(env.config);
    const sum = 'SELECT COUNT(*) AS n, SUM(CRC32(CONCAT(id, MD5(body), MD5(photo)))) AS crc FROM';
    const legacy = await connectMysql(env.legacyUrl);
    const [[want]] = (await legacy.query(`${sum} doc`)) as unknown as [{ n: number; crc: string }[]];
    await legacy.end();
    let copied = 0;
    let crc = 0n;
    for (const server of Object.keys(env.config.servers)) {
      const shard = await connectMysql(env.config.servers[server]!.primary);
      for (let s = 0; s < map.count; s++) {
        if (map.serverOf(s).name !== server) continue;
        const [[row]] = (await shard.query(`${sum} \`${map.databaseOf(s)}\`.doc`)) as unknown as [{ n: number; crc: string | null }[]];
        copied += Number(row!.n);
        crc += BigInt(row!.crc ?? 0);
      }
      await shard.end();
    }
    expect(Number(want!.n)).toBe(ROWS);
    expect([copied, crc]).toEqual([ROWS, BigInt(want!.crc)]);
  }

  it('copies a chunk of ~160 MB of rows in well under the chunk size of memory', async () => {
    const { code, stderr, peakMb } = await cliPeakRss(['full', '--config', env.configPath, '--json']);
    expect(code, stderr).toBe(0);
    // Lines of the whole chunk alone were ~260 MB; the process with tsx is ~120-150 MB at rest.
    expect(peakMb).toBeLessThan(250);
    await expectAllCopied();
  }, 180_000);

  /**
   * The row path read batch_rows (5,000) rows a page and wrote a shard's rows of a page in
   * statements of up to 1,000 rows: all 160 rows held at once (1.16 GB peak RSS for 100 such rows,
   * the statement strings several times the rows), and a statement of ~240 MB, which the shard
   * servers' max_allowed_packet (16 MB here) refused. Batches and statements are cut by bytes too.
   */
  it('the row path holds and sends a few MB of rows at a time, not batch_rows of them', async () => {
    env.raw = { ...env.raw, copy: { ...(env.raw.copy as object), method: 'insert' } };
    writeConfig(env);
    const { code, stderr, peakMb } = await cliPeakRss(['full', '--config', env.configPath, '--json', '--restart']);
    expect(code, stderr.slice(-2000)).toBe(0);
    // Values parsed into strings and statements built from them leave more garbage than lines: ~300 MB
    // seen, flat from 100 to 200 such rows (231 and 259 MB without tsx), where holding them all took 1.16 GB for 100.
    expect(peakMb).toBeLessThan(400);
    await expectAllCopied();
  }, 180_000);
});
