import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { createLogger, silentLogger } from '../src/log.js';
import { connectMysql } from '../src/mysql/connect.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { runVerify } from '../src/verify/index.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { onShardOf } from './support/shards.js';
import { cliPeakRss } from './support/peak-rss.js';

const MB = 1024 * 1024;

/**
 * Rows whose canonical bytes outgrow max_allowed_packet (16 MB on the test servers): HEX() of a
 * row of two 5 MB blobs is 20 MB of hex, which the server turns into NULL with a warning. Their differences must
 * still be found.
 */
describe('verify: rows larger than max_allowed_packet', () => {
  let env: TestEnv;
  const photo = Buffer.alloc(5 * MB, 0x5a);

  beforeAll(async () => {
    env = await createTestEnv({
      shardCount: 2,
      tables: { doc: { source: 'legacy.doc', target: 'doc', shard_key: 'id' } },
      legacySql: ['CREATE TABLE doc (id BIGINT NOT NULL PRIMARY KEY, photo LONGBLOB NULL, body LONGBLOB NOT NULL) ENGINE=InnoDB'],
    });
    const legacy = await connectMysql(env.legacyUrl);
    // One value per statement: a statement carries its blob as hex text, twice its size.
    await legacy.query("INSERT INTO doc VALUES (1, ?, '')", [photo]);
    await legacy.query('UPDATE doc SET body = ? WHERE id = 1', [photo]);
    await legacy.query('INSERT INTO doc VALUES (2, NULL, ?)', [Buffer.from('small')]);
    await legacy.end();
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
    // The copy refuses such a row (its statement would outgrow the packet too); services writing
    // the shards, or a server with a larger packet, can put one there: written here the same way.
    const map = shardMapFromConfig(env.config);
    for (const id of ['1', '2']) {
      const at = map.locate(id);
      const shard = await connectMysql(at.server.primary);
      try {
        if (id === '1') {
          await shard.query(`INSERT INTO \`${at.database}\`.doc VALUES (1, ?, '')`, [photo]);
          await shard.query(`UPDATE \`${at.database}\`.doc SET body = ? WHERE id = 1`, [photo]);
        } else {
          await shard.query(`INSERT INTO \`${at.database}\`.doc VALUES (2, NULL, 'small')`);
        }
      } finally {
        await shard.end();
      }
    }
  }, 180_000);

  afterAll(async () => {
    await env?.cleanup();
  });

  it('a copy equal to legacy is clean; a large value lost or changed on the shard is a difference', async () => {
    for (const hash of ['crc32', 'md5'] as const) expect((await runVerify(env.config, { logger: silentLogger, hash, recheckAfterSeconds: 0 })).state).toBe('clean');
    const at = shardMapFromConfig(env.config).locate('1');
    const shard = await connectMysql(at.server.primary);
    try {
      const other = Buffer.from(photo);
      other[3 * MB] = 0x41;
      await shard.query(`UPDATE \`${at.database}\`.doc SET photo = NULL WHERE id = 1`);
      await shard.query(`UPDATE \`${at.database}\`.doc SET body = ? WHERE id = 1`, [other]);
    } finally {
      await shard.end();
    }
    for (const hash of ['crc32', 'md5'] as const) {
      const r = await runVerify(env.config, { logger: silentLogger, hash, recheckAfterSeconds: 0 });
      expect(r.state, hash).toBe('differences');
      expect(r.differences.map((d) => [d.key[0], d.kind, d.columns])).toEqual([['1', 'different', ['photo', 'body']]]);
    }
  }, 120_000);
});

/**
 * Values whose canonical or converted form outgrows max_allowed_packet (16 MB here) while the row
 * itself does not: HEX() of 9 MB of bytes, 9 MB of latin1 é in utf8mb4. The server makes such a
 * result NULL with a warning only: verify hashed the value as NULL (a changed byte passed), and the
 * re-check read the latin1 text as NULL, so --repair wrote NULL over it.
 */
describe('verify: single values past max_allowed_packet', () => {
  let env: TestEnv;
  const NINE_MB = 9 * MB;

  beforeAll(async () => {
    env = await createTestEnv({
      shardCount: 2,
      tables: {
        photo: { source: 'legacy.photo', target: 'photo', shard_key: 'id' },
        note: { source: 'legacy.note', target: 'note', shard_key: 'id' },
      },
      legacySql: [
        'CREATE TABLE photo (id BIGINT NOT NULL PRIMARY KEY, bl LONGBLOB NULL, tag VARCHAR(10) NULL) ENGINE=InnoDB',
        "INSERT INTO photo VALUES (1, NULL, 'a'), (2, X'00', 'b'), (3, NULL, NULL)",
        `UPDATE photo SET bl = REPEAT(X'AB', ${NINE_MB}) WHERE id = 1`,
        'CREATE TABLE note (id BIGINT NOT NULL PRIMARY KEY, body LONGTEXT CHARACTER SET latin1 NULL) ENGINE=InnoDB',
        "INSERT INTO note VALUES (1, NULL), (2, 'small')",
        `UPDATE note SET body = REPEAT(X'E9', ${NINE_MB}) WHERE id = 1`,
      ],
    });
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
    // The same rows on the shards: photo's built by the server (its 9 MB value would be an 18 MB
    // statement, which the copy refuses), note's copied (the line path sends the converted text).
    await onShardOf(env.config, '1', (shard, db) => shard.query(`INSERT INTO \`${db}\`.photo VALUES (1, REPEAT(X'AB', ${NINE_MB}), 'a')`));
    await onShardOf(env.config, '2', (shard, db) => shard.query(`INSERT INTO \`${db}\`.photo VALUES (2, X'00', 'b')`));
    await onShardOf(env.config, '3', (shard, db) => shard.query(`INSERT INTO \`${db}\`.photo VALUES (3, NULL, NULL)`));
    const copy = await runCli(['full', '--config', env.configPath, '--tables', 'note']);
    expect(copy.code, copy.stderr).toBe(0);
  }, 180_000);

  afterAll(async () => {
    await env?.cleanup();
  });

  it('bytes whose hex outgrows the packet: equal is clean, one byte changed is a difference', async () => {
    for (const hash of ['crc32', 'md5'] as const) {
      expect((await runVerify(env.config, { logger: silentLogger, hash, tables: ['photo'], recheckAfterSeconds: 0 })).state, hash).toBe('clean');
    }
    await onShardOf(env.config, '1', (shard, db) => shard.query(`UPDATE \`${db}\`.photo SET bl = INSERT(bl, 100, 1, X'AC') WHERE id = 1`));
    for (const hash of ['crc32', 'md5'] as const) {
      const r = await runVerify(env.config, { logger: silentLogger, hash, tables: ['photo'], recheckAfterSeconds: 0 });
      expect(r.differences.map((d) => [d.key[0], d.kind, d.columns]), hash).toEqual([['1', 'different', ['bl']]]);
    }
  }, 120_000);

  it('latin1 text whose utf8mb4 form outgrows the packet: verify says so, and --repair never writes NULL over it', async () => {
    const shardBody = () => onShardOf(env.config, '1', async (shard, db) => ((await shard.query(`SELECT MD5(body) AS m FROM \`${db}\`.note WHERE id = 1`)) as unknown as [{ m: string | null }[]])[0][0]!.m);
    const before = await shardBody();
    expect(before).not.toBeNull();
    const out = new PassThrough();
    let logs = '';
    out.on('data', (d: Buffer) => (logs += d.toString()));
    const r = await runVerify(env.config, { logger: createLogger('warn', out), tables: ['note'], repair: true, recheckAfterSeconds: 0 });
    expect(r.state).toBe('failed');
    expect(logs).toMatch(/table note, row \[\\"1\\"\]: column body of table note: the source server could not convert the value to utf8mb4/);
    expect(await shardBody()).toBe(before);
  }, 120_000);
});

/**
 * A chunk whose every row differs (here: every shard copy lost) with rows of ~1 MB: the re-check
 * read the full rows of all its keys on both sides at once, and repair read them again, all of them
 * held together (372 MB peak RSS for verify, 701 MB for verify --repair with 101 such rows missing,
 * growing with the rows). Keys are now re-checked and repaired in groups of about 8 MB of rows.
 */
describe('verify --repair: a chunk of wide rows all missing', () => {
  let env: TestEnv;
  const ROWS = 160;
  const HALF = 512 * 1024;

  beforeAll(async () => {
    env = await createTestEnv({
      shardCount: 4,
      tables: { doc: { source: 'legacy.doc', target: 'doc', shard_key: 'id' } },
      legacySql: ['CREATE TABLE doc (id BIGINT NOT NULL PRIMARY KEY, body LONGTEXT CHARACTER SET utf8mb4 NULL, photo LONGBLOB NULL) ENGINE=InnoDB'],
      extra: { verify: { recheck_after_seconds: 0 } },
    });
    const legacy = await connectMysql(env.legacyUrl);
    for (let from = 1; from <= ROWS; from += 10) {
      await legacy.query(
        `INSERT INTO doc SELECT seq, CONCAT(seq, REPEAT('ab\\\\c\\tdefgh', ${HALF / 10})), REPEAT(CHAR(seq % 256, 7, 92), ${Math.floor(HALF / 3)}) FROM seq_${from}_to_${from + 9}`,
      );
    }
    await legacy.end();
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
  }, 180_000);
  afterAll(async () => env?.cleanup());

  it('repairs them holding a few MB of rows at a time', async () => {
    const res = await cliPeakRss(['verify', '--config', env.configPath, '--repair', '--json']);
    expect(res.code, res.stderr.slice(-2000)).toBe(0);
    // All 160 rows (~160 MB of values, ~320 MB as hex) read at once, twice, took well over 600 MB.
    expect(res.peakMb).toBeLessThan(400);
    const again = await runCli(['verify', '--config', env.configPath, '--json']);
    expect(again.code, again.stderr).toBe(0);
    const map = shardMapFromConfig(env.config);
    let rows = 0;
    for (let s = 0; s < map.count; s++) {
      const conn = await connectMysql(map.serverOf(s).primary);
      const [[n]] = (await conn.query(`SELECT COUNT(*) AS n FROM \`${map.databaseOf(s)}\`.doc`)) as unknown as [{ n: number }[]];
      rows += Number(n!.n);
      await conn.end();
    }
    expect(rows).toBe(ROWS);
  }, 240_000);
});
