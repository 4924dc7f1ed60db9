import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { rowsQuery } from '../src/mysql/pool.js';
import { readMysqlRowsByKey } from '../src/source/mysql/keys.js';
import { MysqlSourceReader } from '../src/source/mysql/reader.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * A DOUBLE primary key column (the catalog's advice for a FLOAT one) on a MySQL legacy side: its
 * values must come back as the server holds them. mysql2 parsed them digit by digit, and these three
 * all read as 9592.180569541111: chunk bounds repeated for ever, and rows by key were not found (a
 * difference verify never saw).
 */
describe('a DOUBLE primary key', () => {
  let env: TestEnv;
  let reader: MysqlSourceReader;
  beforeAll(async () => {
    env = await createTestEnv({
      tables: { d: { source: 'legacy.d', target: 'd', shard_key: 'sk' } },
      legacySql: ['CREATE TABLE d (sk INT NOT NULL, x DOUBLE NOT NULL, v INT, PRIMARY KEY (sk, x))', 'INSERT INTO d VALUES (1, 9592.180569541113, 1), (1, 9592.180569541115, 2), (1, 9592.18056954112, 3)'],
    });
    reader = new MysqlSourceReader(env.config, silentLogger);
  });
  afterAll(async () => {
    await reader?.close();
    await env?.cleanup();
  });

  it('pages by the keys the server holds, each once', async () => {
    const spec = await reader.describeTable('d', env.config.tables.d!);
    const bounds: string[][] = [];
    for await (const b of reader.chunkBoundaries(spec, 1)) {
      bounds.push(b);
      if (bounds.length >= 5) break; // a bound below its row repeats it for ever
    }
    const [exact] = await reader.pool.query('SELECT CAST(sk AS CHAR) AS sk, CAST(x AS CHAR) AS x FROM d ORDER BY sk, x');
    expect(bounds).toEqual((exact as { sk: string; x: string }[]).map((r) => [r.sk, r.x]));
  });

  it('reads each row back by the key read from the server', async () => {
    const spec = await reader.describeTable('d', env.config.tables.d!);
    const [raw] = await reader.pool.query({ sql: 'SELECT sk, x FROM d ORDER BY sk, x', rowsAsArray: true });
    const keys = (raw as unknown[][]).map((r) => r.map((v) => String(v)));
    expect(keys.map((k) => k[1])).toEqual(['9592.180569541113', '9592.180569541115', '9592.18056954112']);
    const { rows } = await readMysqlRowsByKey(rowsQuery(reader.pool), spec, keys);
    expect(rows.length).toBe(3);
  });
});
