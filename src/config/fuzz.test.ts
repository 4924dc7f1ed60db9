import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ConfigError } from '../errors.js';
import { parseConfig } from './load.js';

const BASE = {
  control: { url: 'mysql://root@127.0.0.1:3306/c' },
  source: { kind: 'mysql', url: 'mysql://root@127.0.0.1:3306/legacy' },
  servers: { a: { primary: 'mysql://app@10.0.0.5:3306', dc: 'dc1' }, b: { primary: 'mysql://app@10.0.0.6:3306' } },
  shards: { count: 8, function: 'crc32', database: 'm_{shard:02}', placement: [{ shards: '0-3', server: 'a' }, { shards: '4-7', server: 'b' }] },
  tables: { member: { source: 'legacy.member', target: 'member', shard_key: 'member_id' } },
};

/** A small seeded PRNG, so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 2 ** 32;
  };
}

const ODD_VALUES: unknown[] = [null, -1, 0, 1.5, 2 ** 53 + 1, '', ' ', 'x'.repeat(300), true, [], {}, [1, 'a'], { nested: { deep: 1 } }, '${UNSET_VAR_FOR_FUZZ}', '${file:/nonexistent}', '`; DROP TABLE x; --', '张伟', '\u0000'];

function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== 'object') return [prefix];
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v] as const) : Object.entries(value);
  return [prefix, ...entries.flatMap(([k, v]) => paths(v, [...prefix, k]))];
}

function mutate(random: () => number): Record<string, unknown> {
  const doc = structuredClone(BASE) as Record<string, unknown>;
  const all = paths(doc).filter((p) => p.length > 0);
  const path = all[Math.floor(random() * all.length)]!;
  let parent: any = doc;
  for (const seg of path.slice(0, -1)) parent = parent[seg];
  const last = path[path.length - 1]!;
  const action = random();
  if (action < 0.6) parent[last] = ODD_VALUES[Math.floor(random() * ODD_VALUES.length)];
  else if (action < 0.8) delete parent[last];
  else parent[`extra_${Math.floor(random() * 100)}`] = 1;
  return doc;
}

describe('config fuzzing: every rejection is a ConfigError naming a place', () => {
  it('survives 2,000 seeded mutations of a valid config', () => {
    const random = rng(20261127);
    let rejected = 0;
    for (let i = 0; i < 2000; i++) {
      const text = stringify(mutate(random));
      try {
        parseConfig(text, 'fuzz.yaml', {});
      } catch (e) {
        if (!(e instanceof ConfigError)) throw new Error(`mutation ${i} crashed with ${(e as Error).stack}\n${text}`);
        rejected++;
        for (const p of e.configProblems) {
          expect(p.file).toBe('fuzz.yaml');
          expect(p.path.length > 0 || p.line !== undefined, `no place in: ${e.message}`).toBe(true);
          expect(p.message.length).toBeGreaterThan(0);
        }
      }
    }
    expect(rejected).toBeGreaterThan(1000);
  });

  it('survives random text and truncated YAML without a crash trace', () => {
    const random = rng(7);
    const valid = stringify(BASE);
    for (let i = 0; i < 500; i++) {
      const cut = valid.slice(0, Math.floor(random() * valid.length));
      const noise = cut + String.fromCharCode(...Array.from({ length: 5 }, () => 32 + Math.floor(random() * 90)));
      for (const text of [cut, noise]) {
        try {
          parseConfig(text, 'fuzz.yaml', {});
        } catch (e) {
          if (!(e instanceof ConfigError)) throw new Error(`crashed on ${JSON.stringify(text)}: ${(e as Error).stack}`);
        }
      }
    }
    expect(parse(valid)).toEqual(BASE);
  });
});
