import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { rowsQuery } from '../src/mysql/pool.js';
import { silentLogger } from '../src/log.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { createSourceReader, MysqlSourceReader } from '../src/source/index.js';
import { createShardWriter } from '../src/target/writer.js';
import { compareRange } from '../src/verify/drill.js';
import { MysqlLegacySide, ShardSide, StreamingLegacySide, sinceText } from '../src/verify/sides.js';
import type { RowFilter } from '../src/verify/sql.js';
import { parseSince } from '../src/cli/commands/verify.js';
import { runCli } from './support/cli.js';
import { copyTable } from './support/copy-rows.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * --since on the Node-hashed legacy side (what a SQL Server legacy uses for every --since run)
 * compared the row's text with --since's: a DATETIME(0) value equal to it is a shorter text, so
 * "less", and was left out on that side only; a lost copy of that row was never found. An integer
 * updated_at was compared as a time by neither side (MySQL takes the text as the number 2024): refused.
 */
describe('verify --since', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv({
      shardCount: 4,
      tables: {
        member: { source: 'legacy.member', target: 'member', shard_key: 'member_id', updated_at: 'updated_at' },
        stamped: { source: 'legacy.stamped', target: 'stamped', shard_key: 'id', updated_at: 'stamp' },
      },
      legacySql: [
        'CREATE TABLE member (member_id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL, updated_at DATETIME NOT NULL)',
        `INSERT INTO member VALUES ${Array.from({ length: 10 }, (_, i) => `(${i + 1}, 'n${i}', '${i + 1 === 5 ? '2024-06-01 00:00:00' : i + 1 === 6 ? '2024-07-01 00:00:00' : '2024-01-01 00:00:00'}')`).join(', ')}`,
        'CREATE TABLE stamped (id BIGINT NOT NULL PRIMARY KEY, stamp BIGINT NOT NULL)',
        'INSERT INTO stamped VALUES (1, 1717200000)',
      ],
      extra: { verify: { recheck_after_seconds: 0 } },
    });
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
    await copyTable(env.config, 'member');
    // Member 5's copy is lost; its updated_at is exactly --since.
    const map = shardMapFromConfig(env.config);
    const shard = map.shardOf('5');
    const conn = await connectMysql(map.serverOf(shard).primary, { database: map.databaseOf(shard) });
    await conn.query('DELETE FROM member WHERE member_id = 5');
    await conn.end();
  }, 120_000);
  afterAll(async () => env?.cleanup());

  it('selects the same rows on both legacy sides, a time equal to --since included, and finds the lost copy', async () => {
    const reader = createSourceReader(env.config, silentLogger);
    const writer = createShardWriter(env.config);
    try {
      const spec = await reader.describeTable('member', env.config.tables.member!);
      const map = shardMapFromConfig(env.config);
      const filter: RowFilter = { since: { legacyColumn: 'updated_at', shardColumn: 'updated_at', value: parseSince('2024-06-01T00:00:00Z') } };
      const shards = new ShardSide((s) => rowsQuery(writer.poolOf(s), 60_000), spec, 'crc32', map, [0, 1, 2, 3]);
      const base = { spec, hash: 'crc32' as const, map, shards, filter, leafRows: 100, fanout: 4 };
      const all = { lower: null, upper: null };
      const bySql = await compareRange({ ...base, legacy: new MysqlLegacySide(reader as MysqlSourceReader, spec, 'crc32', map, 60_000) }, all);
      const byNode = await compareRange({ ...base, legacy: new StreamingLegacySide(reader, spec, 'crc32', map) }, all);
      expect([bySql.legacy.count, byNode.legacy.count]).toEqual([2, 2]);
      for (const r of [bySql, byNode]) expect(r.candidates.map((c) => [c.key.join(), c.kind])).toEqual([['5', 'missing']]);
    } finally {
      await reader.close();
      await writer.close();
    }
  });

  it('puts date and time texts of any precision in --since form (text order is then time order)', () => {
    expect(sinceText('2024-06-01 00:00:00')).toBe('2024-06-01 00:00:00.000000');
    expect(sinceText('2024-06-01')).toBe('2024-06-01 00:00:00.000000');
    expect(sinceText('2024-06-01 12:00:00.5')).toBe('2024-06-01 12:00:00.500000');
    expect(sinceText('2024-06-01 12:00:00.1234567 +08:00')).toBe('2024-06-01 12:00:00.123456 +08:00');
    expect(sinceText('not a time')).toBe('not a time');
  });

  it('is refused (exit 2, naming the column) for an integer updated_at, before any write', async () => {
    const r = await runCli(['verify', '--tables', 'stamped', '--since', '2024-06-01T00:00:00Z', '--config', env.configPath]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--since: tables.stamped.updated_at (stamp) is a number (bigint), not a time');
  });
});
