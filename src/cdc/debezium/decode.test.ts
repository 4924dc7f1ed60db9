import { describe, expect, it } from 'vitest';
import type { ColumnSpec, SourceType, TableSpec } from '../../rows/types.js';
import { RefusedError } from '../../errors.js';
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

  it("an update that moves the row to another shard carries its before image's updated_at, to bound the old shard's delete", () => {
    const stamped: TableSpec = { ...spec('stamped', col('id', { dataType: 'bigint' }, 'bigint')), updatedAt: 'updated_at' };
    stamped.columns = [...stamped.columns, col('updated_at', { dataType: 'bigint' }, 'bigint')];
    const d = new DebeziumDecoder([stamped]);
    const row = (memberId: number, at: number) => ({ id: 5, member_id: memberId, note: null, updated_at: at });
    const decoded = d.decode(event('stamped', 'u', row(1, 100), row(2, 200)));
    expect(decoded).toMatchObject({ kind: 'changes', events: [{ op: 'upsert', beforeShardKey: '1', beforeUpdatedAt: '100' }] });
    // The same shard: nothing to delete, no bound.
    const stays = d.decode(event('stamped', 'u', row(1, 100), { ...row(1, 200), note: 'x' }));
    expect(stays.kind === 'changes' && stays.events[0]!.beforeUpdatedAt).toBeUndefined();
  });

  it('text in a legacy character set that arrived with U+FFFD (a byte Java could not decode); U+FFFD in UTF-8 text is not marked', () => {
    const [lost] = decode(event('num', 'c', null, { id: 5, member_id: 1, note: 'a\uFFFDb' }));
    expect(lost!.recopy).toMatch(/column note \(latin1\) arrived with U\+FFFD/);
    expect(decode(event('num', 'c', null, { id: 5, member_id: 1, note: 'plain é' }))[0]!.recopy).toBeUndefined();
    expect(decode(event('ci', 'c', null, { code: '\uFFFD', member_id: 1, note: null }))[0]!.recopy).toBeUndefined();
  });

  describe('a nullable column equal to its default (Kafka Connect writes a NULL so unless replace.null.with.default is false)', () => {
    const withSchema = (after: object, defaults: { note?: unknown; member_id?: unknown }) => {
      const fields = [
        { type: 'int64', optional: false, field: 'id' },
        { type: 'int64', optional: true, field: 'member_id', ...(defaults.member_id !== undefined ? { default: defaults.member_id } : {}) },
        { type: 'string', optional: true, field: 'note', ...(defaults.note !== undefined ? { default: defaults.note } : {}) },
      ];
      const schema = { type: 'struct', fields: [{ type: 'struct', optional: true, field: 'before', fields }, { type: 'struct', optional: true, field: 'after', fields }] };
      const payload = { op: 'c', before: null, after, source: { connector: 'mysql', db: 'legacy', table: 'num', ts_ms: 1 } };
      return { topic: 'p.legacy.num', partition: 0, offset: '8', key: null, value: Buffer.from(`{"schema":${JSON.stringify(schema)},"payload":${JSON.stringify(payload)}}`.replace(/"big:(\d+)"/g, '$1')) };
    };
    const upsert = (d: DebeziumDecoder, record: ReturnType<typeof withSchema>) => {
      const decoded = d.decode(record);
      if (decoded.kind !== 'changes') throw new Error(JSON.stringify(decoded));
      return decoded.events[0]!;
    };
    const replacing = new DebeziumDecoder([spec('num', col('id', { dataType: 'bigint' }, 'bigint'))]);
    const keeping = new DebeziumDecoder([spec('num', col('id', { dataType: 'bigint' }, 'bigint'))], { decimalHandling: 'precise', replaceNullWithDefault: false });

    it('is copied again from legacy when the converter may have replaced a NULL (the default setting)', () => {
      expect(upsert(replacing, withSchema({ id: 5, member_id: 1, note: 'x' }, { note: 'x' })).recopy).toMatch(/column note arrived as its default.*replace\.null\.with\.default/);
      // 16+ digit integers (written bare in the JSON, as 'big:…' here) are compared exactly.
      expect(upsert(replacing, withSchema({ id: 5, member_id: 'big:9007199254740993', note: null }, { member_id: 'big:9007199254740993' })).recopy).toMatch(/column member_id/);
      expect(upsert(replacing, withSchema({ id: 5, member_id: 'big:9007199254740992', note: null }, { member_id: 'big:9007199254740993' })).recopy).toBeUndefined();
    });

    it('is trusted when it differs from the default, when the column has none, or when the converter keeps nulls', () => {
      expect(upsert(replacing, withSchema({ id: 5, member_id: 1, note: 'y' }, { note: 'x' })).recopy).toBeUndefined();
      expect(upsert(replacing, withSchema({ id: 5, member_id: 1, note: null }, { note: 'x' })).recopy).toBeUndefined();
      expect(upsert(replacing, withSchema({ id: 5, member_id: 1, note: 'x' }, {})).recopy).toBeUndefined();
      expect(upsert(keeping, withSchema({ id: 5, member_id: 1, note: 'x' }, { note: 'x' })).recopy).toBeUndefined();
    });
  });
});

describe('types Debezium does not stream as the copy writes them', () => {
  it('refuses a SQL Server hierarchyid column before sync starts, naming the table, the column and the ways out', () => {
    const org = spec('org', col('id', { dataType: 'bigint' }, 'bigint'));
    org.columns.push(col('node', { dataType: 'hierarchyid' }, 'VARCHAR(4000) CHARACTER SET ascii'));
    expect(() => new DebeziumDecoder([org])).toThrow(RefusedError);
    expect(() => new DebeziumDecoder([org])).toThrow(/table org: column node is hierarchyid.*exclude_columns, or use cdc\.mssql/);
  });
});

describe('an event whose schema shows a connector setting that loses digits', () => {
  it('is dead-lettered with the setting to change (time.precision.mode=connect sends DATETIME(6) in milliseconds)', () => {
    const d = new DebeziumDecoder([
      { ...spec('seen', col('id', { dataType: 'bigint' }, 'bigint')), columns: [col('id', { dataType: 'bigint' }, 'bigint'), col('member_id', { dataType: 'bigint' }, 'bigint'), col('at', { dataType: 'datetime', precision: 6 }, 'datetime(6)')] },
    ]);
    const fields = [
      { type: 'int64', optional: false, field: 'id' },
      { type: 'int64', optional: true, field: 'member_id' },
      { type: 'int64', optional: true, field: 'at', name: 'org.apache.kafka.connect.data.Timestamp' },
    ];
    const schema = { type: 'struct', fields: [{ type: 'struct', optional: true, field: 'before', fields }, { type: 'struct', optional: true, field: 'after', fields }] };
    const payload = { op: 'c', before: null, after: { id: 1, member_id: 7, at: 1709370000123 }, source: { connector: 'mysql', db: 'legacy', table: 'seen', ts_ms: 1 } };
    const decoded = d.decode({ topic: 'p.legacy.seen', partition: 0, offset: '3', key: null, value: Buffer.from(JSON.stringify({ schema, payload })) });
    expect(decoded.kind).toBe('poison');
    if (decoded.kind === 'poison') expect(decoded.poison.reason).toMatch(/column at \(after\): datetime\(6\) arrives as org\.apache\.kafka\.connect\.data\.Timestamp, which keeps 3 fraction digits/);
  });
});

describe('an envelope whose schema is malformed', () => {
  // A null in a schema's field list threw out of decode: the batch failed, and the consumer fetched it again for ever.
  const withSchema = (schema: object, payload: object, key: object | null = null) => ({
    topic: 'p.legacy.num',
    partition: 0,
    offset: '9',
    key: key ? Buffer.from(JSON.stringify(key)) : null,
    value: Buffer.from(JSON.stringify({ schema, payload })),
  });
  const source = { connector: 'mysql', db: 'legacy', table: 'num', ts_ms: 1 };

  it('is decoded by the source types (as without a schema), not thrown', () => {
    const d = decoder.decode(withSchema({ type: 'struct', fields: [null] }, { op: 'c', before: null, after: { id: 1, member_id: 5, note: 'x' }, source }));
    expect(d.kind).toBe('changes');
    const image = { type: 'struct', fields: [{ field: 'after', type: 'struct', fields: [null, 7] }] };
    expect(decoder.decode(withSchema(image, { op: 'c', before: null, after: { id: 1, member_id: 5, note: 'x' }, source })).kind).toBe('changes');
  });

  it('a key-only delete whose key schema lists a null is decoded by the source types too', () => {
    const d = decoder.decode(withSchema({ type: 'struct', fields: [] }, { op: 'd', before: null, after: null, source }, { schema: { type: 'struct', fields: [null] }, payload: { id: 1, member_id: 5 } }));
    expect(d.kind).toBe('changes');
  });
});

describe('columns the events carry beyond those sync read from legacy', () => {
  it('an excluded column is left out; any other makes the event poison, naming table and column', () => {
    const d = new DebeziumDecoder([spec('num', col('id', { dataType: 'bigint' }, 'bigint'))], {
      decimalHandling: 'precise',
      replaceNullWithDefault: false,
      excludedColumns: { num: ['secret'] },
    });
    const row = { id: 5, member_id: 1, note: null, secret: 'x' };
    const upsert = d.decode(event('num', 'c', null, row));
    expect(upsert).toMatchObject({ kind: 'changes', events: [{ op: 'upsert', after: { id: '5', member_id: '1', note: null } }] });
    for (const [op, before, after] of [['c', null, { ...row, vip: 1 }], ['d', { ...row, vip: 1 }, null]] as const) {
      const poison = d.decode(event('num', op, before, after));
      expect(poison.kind).toBe('poison');
      expect(poison.kind === 'poison' && poison.poison.reason).toMatch(/^table num: column vip is in the event but was not in legacy's table when sync started/);
    }
  });
});
