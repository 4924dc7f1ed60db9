import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { shardMapFromConfig } from '../shard/map.js';
import { parseConfig } from './load.js';

const root = join(import.meta.dirname, '..', '..');
const env = {
  MEMBERMIG_CONTROL_PASSWORD: 'control-pw',
  MEMBERMIG_SOURCE_URL: 'mssql://membermig:source-pw@legacy-sql.dc1.internal:1433/MemberDB',
  MEMBERMIG_SHARD_PASSWORD: 'shard-pw',
};

describe('config/membermig.1024-shards.yaml', () => {
  const file = join(root, 'config', 'membermig.1024-shards.yaml');
  const config = parseConfig(readFileSync(file, 'utf8'), file, env);

  it('places 1,024 shards on 8 servers, 128 each, 4 per data center, each with a replica', () => {
    const map = shardMapFromConfig(config);
    expect(config.shards.count).toBe(1024);
    const servers = Object.entries(config.servers);
    expect(servers).toHaveLength(8);
    for (const [name, s] of servers) {
      expect(map.shardsOn(name)).toHaveLength(128);
      expect(s.replicas).toHaveLength(1);
      expect(name.startsWith(`${s.dc}-`)).toBe(true);
      expect(new URL(s.replicas[0]!).hostname.endsWith(`.${s.dc}.internal`)).toBe(true);
    }
    expect(servers.filter(([, s]) => s.dc === 'dc1')).toHaveLength(4);
    expect(servers.filter(([, s]) => s.dc === 'dc2')).toHaveLength(4);
  });

  it('routes keys the way MySQL does: CRC32 of the decimal text, mod 1024', () => {
    const map = shardMapFromConfig(config);
    // MySQL: SELECT CRC32('10000000') = 211979677; 211979677 % 1024 = 413, on dc1-d (384-511).
    const at = map.locate(10_000_000n);
    expect(at.shard).toBe(413);
    expect(at.database).toBe('member_0413');
    expect(at.server.name).toBe('dc1-d');
    expect(at.server.dc).toBe('dc1');
  });

  it('takes every secret from the environment, none written in the file', () => {
    const text = readFileSync(file, 'utf8');
    for (const secret of Object.values(env)) expect(text).not.toContain(secret);
    expect(config.servers['dc1-a']!.primary).toContain('shard-pw');
    expect(() => parseConfig(text, file, {})).toThrow(/MEMBERMIG_/);
  });
});
