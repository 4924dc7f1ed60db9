import { describe, expect, it } from 'vitest';
import { tableCacheFindings } from './table-cache.js';

describe('table cache check', () => {
  it('warns, naming the variable and the table count, when a cache is smaller than the shard tables', () => {
    const findings = tableCacheFindings({ tableDefinitionCache: 400, tableOpenCache: 2000 }, 512);
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ severity: 'warning' });
    expect(findings[0]!.message).toMatch(/^table_definition_cache is 400: membermig writes 512 shard tables/);
    expect(tableCacheFindings({ tableDefinitionCache: 400, tableOpenCache: 300 }, 512).map((f) => f.message.split(' ')[0])).toEqual(['table_definition_cache', 'table_open_cache']);
  });

  it('says nothing when the caches hold every shard table, or a cache is sized by the server (0 or -1)', () => {
    expect(tableCacheFindings({ tableDefinitionCache: 400, tableOpenCache: 2000 }, 16)).toEqual([]);
    expect(tableCacheFindings({ tableDefinitionCache: -1, tableOpenCache: 0 }, 5000)).toEqual([]);
  });
});
