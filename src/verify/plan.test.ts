import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/index.js';
import { verifyChunkRows } from './plan.js';

const config = (count: number, verify = '') =>
  parseConfig(
    `control: { url: "mysql://root@127.0.0.1:3306/c" }
source: { kind: mysql, url: "mysql://root@127.0.0.1:3306/legacy" }
servers: { a: { primary: "mysql://root@127.0.0.1:3306" } }
shards: { count: ${count}, function: crc32, database: "s_{shard}", placement: [{ shards: "0-${count - 1}", server: a }] }
tables: { member: { source: legacy.member, target: member, shard_key: member_id } }
${verify}`,
    'membermig.yaml',
  );

describe('verify chunk size', () => {
  it('auto: about 320 rows per shard table, within 5,000..100,000', () => {
    expect(config(16).verify.chunk_rows).toBe('auto');
    expect([1, 16, 64, 1024].map((n) => verifyChunkRows(config(n)))).toEqual([5_000, 5_120, 20_480, 100_000]);
  });

  it('a number in the config is taken as it is; anything else is refused with its YAML path', () => {
    expect(verifyChunkRows(config(16, 'verify: { chunk_rows: 777 }'))).toBe(777);
    expect(() => config(16, 'verify: { chunk_rows: lots }')).toThrow(/verify\.chunk_rows/);
  });
});
