import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { createLogger, silentLogger } from '../src/log.js';
import { connectMysql } from '../src/mysql/connect.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { runVerify } from '../src/verify/index.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { onShardOf } from './support/shards.js';

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
