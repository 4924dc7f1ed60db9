import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { createShardMap, formatDatabaseName, keyText, modShard, shardMapFromConfig, shardOfKey } from './map.js';

describe('shard functions', () => {
  it('mod is exact and never negative for 64-bit keys', () => {
    expect(modShard('9007199254740993', 1024)).toBe(Number(9007199254740993n % 1024n));
    expect(modShard(9007199254740993n, 1000)).toBe(993);
    expect(modShard('18446744073709551615', 1024)).toBe(1023);
    expect(modShard('-1', 1024)).toBe(1023);
    expect(modShard(-1025, 1024)).toBe(1023);
    expect(modShard('-9223372036854775808', 1000)).toBe(Number(((-9223372036854775808n % 1000n) + 1000n) % 1000n));
    expect(() => modShard('abc', 8)).toThrow('mod sharding needs an integer key');
  });

  it('refuses a JS number that already lost precision', () => {
    expect(() => keyText(2 ** 53 + 2)).toThrow('not a safe integer');
    expect(() => shardOfKey(2 ** 60, 'crc32', 8)).toThrow('not a safe integer');
  });

  it('gives the same shard for a key as number, bigint and decimal string', () => {
    for (const fn of ['mod', 'crc32', 'murmur3'] as const) {
      expect(shardOfKey(123456789, fn, 1024)).toBe(shardOfKey('123456789', fn, 1024));
      expect(shardOfKey(123456789n, fn, 1024)).toBe(shardOfKey('123456789', fn, 1024));
    }
  });

  it('formats database names from the pattern', () => {
    expect(formatDatabaseName('member_{shard:04}', 7)).toBe('member_0007');
    expect(formatDatabaseName('member_{shard}', 1023)).toBe('member_1023');
    expect(formatDatabaseName('m{shard:3}x', 5)).toBe('m005x');
  });
});

describe('shard map from config', () => {
  const config = parseConfig(
    `control: { url: "mysql://root@127.0.0.1:3306/c" }
source: { kind: mysql, url: "mysql://root@127.0.0.1:3306/legacy" }
servers:
  a: { primary: "mysql://app@10.0.0.5:3306", dc: dc1 }
  b: { primary: "mysql://app@10.0.0.6:3306", dc: dc2 }
shards: { count: 16, function: crc32, database: "member_{shard:02}", placement: [{ shards: "0-9", server: a }, { shards: "10-15", server: b }] }
tables: { member: { source: legacy.member, target: member, shard_key: member_id } }
`,
    'test.yaml',
    {},
  );
  const map = shardMapFromConfig(config);

  it('routes a key to shard, database and server', () => {
    const loc = map.locate('1001');
    expect(loc.shard).toBe(shardOfKey('1001', 'crc32', 16));
    expect(loc.database).toBe(`member_${String(loc.shard).padStart(2, '0')}`);
    expect(loc.server.name).toBe(loc.shard < 10 ? 'a' : 'b');
  });

  it('lists shards per server and rejects shards outside the map', () => {
    expect(map.shardsOn('a')).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(map.shardsOn('b')).toEqual([10, 11, 12, 13, 14, 15]);
    expect(() => map.databaseOf(16)).toThrow('shard 16 is outside 0..15');
  });

  it('refuses a placement that does not cover every shard', () => {
    expect(() =>
      createShardMap({ count: 4, function: 'mod', database: 'm{shard}', serverOf: ['a', 'a', 'a'], servers: { a: { name: 'a', primary: 'x', replicas: [] } } }),
    ).toThrow('placement covers 3 shards, expected 4');
  });
});
