import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/index.js';
import { copyWorkers } from './workers.js';

const config = (count: number, copy = '') =>
  parseConfig(
    `control: { url: "mysql://root@127.0.0.1:3306/c" }
source: { kind: mysql, url: "mysql://root@127.0.0.1:3306/legacy" }
servers: { a: { primary: "mysql://root@127.0.0.1:3306" } }
shards: { count: ${count}, function: crc32, database: "s_{shard}", placement: [{ shards: "0-${count - 1}", server: a }] }
tables: { member: { source: legacy.member, target: member, shard_key: member_id } }
${copy}`,
    'membermig.yaml',
  );

describe('copy workers', () => {
  it('auto: 4 chunk workers, 2 above 256 shards', () => {
    expect(config(16).copy.workers).toBe('auto');
    expect([1, 16, 256, 257, 1024].map((n) => copyWorkers(config(n)))).toEqual([4, 4, 4, 2, 2]);
  });

  it('a number in the config is taken as it is; anything else is refused with its YAML path', () => {
    expect(copyWorkers(config(1024, 'copy: { workers: 6 }'))).toBe(6);
    expect(() => config(16, 'copy: { workers: many }')).toThrow(/copy\.workers/);
    expect(() => config(16, 'copy: { workers: 0 }')).toThrow(/copy\.workers/);
  });
});
