import { describe, expect, it } from 'vitest';
import type { ColumnSpec, SourceType, TableSpec } from '../../rows/types.js';
import { DebeziumDecoder } from './decode.js';

const col = (source: string, sourceType: SourceType, targetType: string, targetCollation?: string): ColumnSpec => ({
  source,
  target: source,
  sourceType,
  targetType,
  nullable: true,
  ...(targetCollation ? { targetCollation } : {}),
});

const spec = (name: string, key: ColumnSpec): TableSpec => ({
  name,
  sourceSchema: 'legacy',
  sourceTable: name,
  target: name,
  primaryKey: [key.source],
  shardKey: 'member_id',
  columns: [key, col('member_id', { dataType: 'bigint' }, 'bigint'), col('note', { dataType: 'varchar', charset: 'latin1' }, 'varchar(20)', 'utf8mb4_general_ci')],
});

const decoder = new DebeziumDecoder([
  spec('ci', col('code', { dataType: 'varchar', charset: 'utf8mb4' }, 'varchar(20)', 'utf8mb4_general_ci')),
  spec('exact', col('code', { dataType: 'varchar', charset: 'utf8mb4' }, 'varchar(20)', 'utf8mb4_nopad_bin')),
  spec('num', col('id', { dataType: 'bigint' }, 'bigint')),
]);

const event = (table: string, op: string, before: object | null, after: object | null, connector = 'mysql') => ({
  topic: `p.legacy.${table}`,
  partition: 0,
  offset: '7',
  key: null,
  value: Buffer.from(JSON.stringify({ op, before, after, source: { connector, db: 'legacy', table, ts_ms: 1 } })),
});

function decode(record: ReturnType<typeof event>) {
  const d = decoder.decode(record);
  if (d.kind !== 'changes') throw new Error(JSON.stringify(d));
  return d.events;
}

describe('events whose image is not trusted are marked to be copied again from legacy', () => {
  it('a delete of a key the shard collation may spell otherwise (case, trailing spaces); never of an exact or integer key', () => {
    const [del] = decode(event('ci', 'd', { code: 'k1', member_id: 1, note: null }, null));
    expect(del).toMatchObject({ op: 'delete', key: { code: 'k1' } });
    expect(del!.recopy).toMatch(/a delete of a ci key the shards may hold in another spelling/);
    // A key change k1 -> K1: the delete of k1 is marked, the upsert of K1 is not.
    const change = decode(event('ci', 'u', { code: 'k1', member_id: 1, note: null }, { code: 'K1', member_id: 1, note: null }));
    expect(change.map((e) => [e.op, e.recopy !== undefined])).toEqual([['delete', true], ['upsert', false]]);
    expect(decode(event('exact', 'd', { code: 'k1', member_id: 1, note: null }, null))[0]!.recopy).toBeUndefined();
    expect(decode(event('num', 'd', { id: 5, member_id: 1, note: null }, null))[0]!.recopy).toBeUndefined();
  });

  it('text in a legacy character set that arrived with U+FFFD (a byte Java could not decode); U+FFFD in UTF-8 text or from SQL Server is not marked', () => {
    const [lost] = decode(event('num', 'c', null, { id: 5, member_id: 1, note: 'a\uFFFDb' }));
    expect(lost!.recopy).toMatch(/column note \(latin1\) arrived with U\+FFFD/);
    expect(decode(event('num', 'c', null, { id: 5, member_id: 1, note: 'plain é' }))[0]!.recopy).toBeUndefined();
    expect(decode(event('ci', 'c', null, { code: '\uFFFD', member_id: 1, note: null }))[0]!.recopy).toBeUndefined();
  });
});
