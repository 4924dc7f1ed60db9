import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { connectMysql } from '../src/mysql/connect.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { runVerify } from '../src/verify/index.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';

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
