import { describe, expect, it } from 'vitest';
import { keyMask, mysqlRowHash } from '../rows/canonical.js';
import type { ColumnSpec, TableSpec } from '../rows/types.js';
import { shardMapFromConfig, type ShardFunction } from '../shard/map.js';
import { shardBitsInMultiplier } from './sql.js';

const col = (source: string, targetType: string): ColumnSpec => ({ source, target: source, sourceType: { dataType: targetType.toLowerCase() }, targetType, nullable: false });
const table = (columns: ColumnSpec[], primaryKey: string[], shardKey: string): TableSpec => ({ name: 't', sourceSchema: 'l', sourceTable: 't', target: 't', columns, primaryKey, shardKey });
const mapOf = (count: number, fn: ShardFunction = 'crc32') =>
  shardMapFromConfig({ servers: { a: { primary: 'mysql://u@h/' } as never }, shards: { count, function: fn, database: 's_{shard}', placement: [{ shards: `0-${count - 1}`, server: 'a' }] } });

const member = table([col('id', 'BIGINT'), col('name', 'VARCHAR(20)')], ['id'], 'id');

describe('the shard in the crc32 key multiplier', () => {
  it('is log2 of a power-of-two count when the shard function is crc32 of the whole single-column key', () => {
    expect(shardBitsInMultiplier(member, mapOf(16), 'crc32')).toBe(4);
    expect(shardBitsInMultiplier(member, mapOf(1024), 'crc32')).toBe(10);
    expect(shardBitsInMultiplier(table([col('code', 'VARCHAR(20)')], ['code'], 'code'), mapOf(8), 'crc32')).toBe(3);
  });

  it('is not used where the low bits of the key CRC are not the shard, or the key bytes are not what the shard function hashes', () => {
    expect(shardBitsInMultiplier(member, mapOf(12), 'crc32')).toBe(0); // not a power of two
    expect(shardBitsInMultiplier(member, mapOf(1), 'crc32')).toBe(0);
    expect(shardBitsInMultiplier(member, mapOf(16, 'mod'), 'crc32')).toBe(0);
    expect(shardBitsInMultiplier(member, mapOf(16, 'murmur3'), 'crc32')).toBe(0);
    expect(shardBitsInMultiplier(member, mapOf(16), 'md5')).toBe(0);
    expect(shardBitsInMultiplier(table([col('id', 'BIGINT'), col('tag', 'VARCHAR(9)')], ['id', 'tag'], 'id'), mapOf(16), 'crc32')).toBe(0);
    expect(shardBitsInMultiplier(table([col('id', 'VARBINARY(16)')], ['id'], 'id'), mapOf(16), 'crc32')).toBe(0); // canonical hex ≠ raw bytes
  });

  it('a shard forms the legacy multiplier exactly for the keys routed to it', () => {
    // CRC XOR (shard XOR mask) = CRC | mask  ⇔  CRC mod 2^bits = shard
    for (const bits of [1, 4, 10]) {
      const mask = keyMask(bits);
      for (let i = 0; i < 2000; i++) {
        const crc = (Math.imul(i + 1, 2654435761) >>> 0) ^ (i << 7);
        const unsigned = crc >>> 0;
        const home = unsigned % 2 ** bits;
        const legacy = BigInt(unsigned) | BigInt(mask);
        for (const shard of [home, (home + 1) % 2 ** bits, mask - home]) {
          const onShard = BigInt(unsigned) ^ BigInt(shard ^ mask);
          expect(onShard === legacy).toBe(shard === home);
        }
      }
    }
  });

  it('puts the shard constant in the SQL of a shard, and the mask on the legacy side', () => {
    expect(mysqlRowHash('crc32', 'ROW', 'KEY')).toBe('COALESCE((CRC32(ROW) + 1) * (CRC32(KEY) | 1), CAST(FLOOR(RAND() * 18446744073709551615) AS UNSIGNED))');
    expect(mysqlRowHash('crc32', 'ROW', 'KEY', 4)).toBe('COALESCE((CRC32(ROW) + 1) * (CRC32(KEY) | 15), CAST(FLOOR(RAND() * 18446744073709551615) AS UNSIGNED))');
    expect(mysqlRowHash('crc32', 'ROW', 'KEY', 4, 3)).toBe('COALESCE((CRC32(ROW) + 1) * (CRC32(KEY) ^ 12), CAST(FLOOR(RAND() * 18446744073709551615) AS UNSIGNED))');
  });
});
