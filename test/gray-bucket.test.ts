import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Bucketer, bucketOf } from '../src/gray/bucket.js';
import { formatPercent, parsePercent } from '../src/gray/percent.js';
import { TableRouter, type GraySetting, type ShimMode } from '../src/gray/route.js';
import { murmur3 } from '../src/shard/hash.js';
import { ROOT } from './support/cli.js';

const gray = (over: Partial<GraySetting>): GraySetting => ({ read_bp: 0, write_bp: 0, salt: 'a1b2c3d4', allow: [], deny: [], ...over });

describe('gray bucketing', () => {
  it('the allocation-free bucketer equals murmur3("salt:id") mod 10000 for every kind of id', () => {
    const b = new Bucketer('s4lt');
    const ids: (string | number | bigint)[] = [0, 7, -42, 123456789, Number.MAX_SAFE_INTEGER, 9_007_199_254_740_993n, 'abc', '', 'M-0001', '会员12345', 'x'.repeat(300)];
    for (const id of ids) {
      const text = typeof id === 'string' ? id : id.toString();
      expect(b.bucket(id), String(id)).toBe(murmur3(`s4lt:${text}`) % 10_000);
      expect(bucketOf('s4lt', id)).toBe(b.bucket(id));
    }
    const nonAsciiSalt = new Bucketer('盐');
    expect(nonAsciiSalt.bucket(5)).toBe(murmur3('盐:5') % 10_000);
  });

  it('matches the test vectors published in docs/shim-contract.md', () => {
    const doc = readFileSync(join(ROOT, 'docs/shim-contract.md'), 'utf8');
    const rows = [...doc.matchAll(/^\| `([^`]*)` \| `([^`]*)` \| (\d+) \| (\d+) \|$/gm)];
    expect(rows.length).toBeGreaterThanOrEqual(10);
    for (const [, salt, id, hash, bucket] of rows) {
      expect(murmur3(`${salt}:${id}`), `${salt}:${id}`).toBe(Number(hash));
      expect(bucketOf(salt!, id!), `${salt}:${id}`).toBe(Number(bucket));
      expect(new Bucketer(salt!).bucket(id!)).toBe(Number(bucket));
    }
  });

  it('over 1,000,000 ids each percentage lands within ±0.1% of its setting, and growth is monotonic', () => {
    const b = new Bucketer('9f86d081884c7d65');
    const N = 1_000_000;
    const buckets = new Uint16Array(N);
    for (let i = 0; i < N; i++) buckets[i] = b.bucket(10_000_000 + i);
    for (const bp of [1, 100, 500, 1000, 2500, 5000, 9999]) {
      let inside = 0;
      for (let i = 0; i < N; i++) if (buckets[i]! < bp) inside++;
      expect(Math.abs((inside / N) * 100 - bp / 100), `${formatPercent(bp)}: ${inside}`).toBeLessThanOrEqual(0.1);
    }
    // Every member inside at 5% is inside at 10%: membership is bucket < bp, so it only grows.
    const at5 = new TableRouter({ mode: 'legacy_only' }, gray({ salt: '9f86d081884c7d65', read_bp: 500 }));
    const at10 = new TableRouter({ mode: 'legacy_only' }, gray({ salt: '9f86d081884c7d65', read_bp: 1000 }));
    let in5 = 0;
    for (let i = 0; i < 200_000; i++) {
      if (at5.route(10_000_000 + i).read === 'mysql') {
        in5++;
        expect(at10.route(10_000_000 + i).read).toBe('mysql');
      }
    }
    expect(in5).toBeGreaterThan(9000);
  });
});

describe('percent parsing', () => {
  it('reads percentages to basis points and refuses bad ones', () => {
    expect(parsePercent('5%', '--read')).toBe(500);
    expect(parsePercent('0.01%', '--read')).toBe(1);
    expect(parsePercent('12.5', '--read')).toBe(1250);
    expect(parsePercent('100%', '--read')).toBe(10_000);
    expect(parsePercent('0.10%', '--read')).toBe(10);
    expect(() => parsePercent('101%', '--read')).toThrow('--read "101%" is above 100%');
    expect(() => parsePercent('0.001%', '--write')).toThrow('finer than the resolution of 0.01%');
    expect(() => parsePercent('-1%', '--read')).toThrow('is not a percentage');
    expect(() => parsePercent('five', '--read')).toThrow('is not a percentage');
    expect(formatPercent(1)).toBe('0.01%');
    expect(formatPercent(50)).toBe('0.5%');
    expect(formatPercent(1250)).toBe('12.5%');
  });
});

describe('routing rules', () => {
  const plans: Record<ShimMode, [string, string]> = {
    legacy_only: ['legacy', 'legacy'],
    dual_legacy_primary: ['legacy_then_mysql', 'legacy'],
    dual_mysql_primary: ['mysql_then_legacy', 'legacy_then_mysql'],
    mysql_only: ['mysql', 'mysql_then_legacy'],
  };
  it('members inside the write percentage write as the mode says, the others as the step before', () => {
    for (const [mode, [inside, outside]] of Object.entries(plans) as [ShimMode, [string, string]][]) {
      expect(new TableRouter({ mode }, gray({ write_bp: 10_000 })).route(1).write).toBe(inside);
      expect(new TableRouter({ mode }, gray({ write_bp: 0 })).route(1).write).toBe(outside);
    }
  });

  it('reads follow the read percentage, except a member whose primary is MySQL reads MySQL', () => {
    expect(new TableRouter({ mode: 'legacy_only' }, gray({ read_bp: 10_000 })).route(1).read).toBe('mysql');
    expect(new TableRouter({ mode: 'dual_legacy_primary' }, gray({ read_bp: 0, write_bp: 10_000 })).route(1).read).toBe('legacy');
    // MySQL first, legacy second: a failed legacy write is never put back there, so legacy may be behind.
    expect(new TableRouter({ mode: 'dual_mysql_primary' }, gray({ read_bp: 0, write_bp: 10_000 })).route(1)).toEqual({ read: 'mysql', write: 'mysql_then_legacy' });
    expect(new TableRouter({ mode: 'dual_mysql_primary' }, gray({ read_bp: 0, write_bp: 0 })).route(1)).toEqual({ read: 'legacy', write: 'legacy_then_mysql' });
    expect(new TableRouter({ mode: 'dual_mysql_primary' }, gray({ read_bp: 0, write_bp: 10_000 })).explain(1).why).toMatch(/outside read 0 bp, inside write 10000 bp; reads MySQL, its write primary$/);
    expect(new TableRouter({ mode: 'mysql_only' }, gray({ read_bp: 0, write_bp: 10_000 })).route(1)).toEqual({ read: 'mysql', write: 'mysql' });
  });

  it('allowlist always MySQL, denylist always legacy, and the denylist wins when a member is on both', () => {
    const r = new TableRouter({ mode: 'mysql_only' }, gray({ read_bp: 0, write_bp: 0, allow: ['7', '8'], deny: ['8', '9', 'vip-1'] }));
    expect(r.route(7)).toEqual({ read: 'mysql', write: 'mysql' });
    expect(r.route('7')).toEqual({ read: 'mysql', write: 'mysql' });
    expect(r.route(7n)).toEqual({ read: 'mysql', write: 'mysql' });
    expect(r.route(8)).toEqual({ read: 'legacy', write: 'legacy' });
    expect(r.explain(8).why).toContain('the denylist wins');
    const all = new TableRouter({ mode: 'mysql_only' }, gray({ read_bp: 10_000, write_bp: 10_000, deny: ['9', 'vip-1'] }));
    expect(all.route(9)).toEqual({ read: 'legacy', write: 'legacy' });
    expect(all.route('vip-1')).toEqual({ read: 'legacy', write: 'legacy' });
    expect(all.route(10)).toEqual({ read: 'mysql', write: 'mysql' });
  });
});
