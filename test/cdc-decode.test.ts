import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DebeziumDecoder, type KafkaRecord } from '../src/cdc/debezium/decode.js';
import { parseJsonLossless } from '../src/cdc/debezium/json.js';
import { decodeValue, scaledText, twosComplement, withSqlServerConversion } from '../src/cdc/debezium/values.js';
import { silentLogger } from '../src/log.js';
import { mssqlTypeMap } from '../src/rows/mssql/typemap.js';
import { Unrepresentable, type ColumnSpec, type Row, type RowValue, type SourceType, type TableSpec } from '../src/rows/types.js';
import { createSourceReader } from '../src/source/index.js';
import { ROOT } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';

const FIXTURES = join(ROOT, 'test/fixtures/debezium-sqlserver');

function col(source: string, sourceType: SourceType, targetType: string, nullable = true): ColumnSpec {
  return { source, target: source, sourceType, targetType, nullable };
}

/** dbo.Member as the SQL Server type map would describe it (brief §5 target types). */
const memberSpec: TableSpec = {
  name: 'member',
  sourceSchema: 'dbo',
  sourceTable: 'Member',
  target: 'member',
  primaryKey: ['member_id'],
  shardKey: 'member_id',
  columns: [
    col('member_id', { dataType: 'bigint' }, 'bigint', false),
    col('name', { dataType: 'nvarchar', length: 50 }, 'varchar(50)'),
    col('points', { dataType: 'decimal', precision: 18, scale: 2 }, 'decimal(18,2)'),
    col('updated_at', { dataType: 'datetime2', precision: 27, scale: 7 }, 'datetime(6)'),
    col('created_at', { dataType: 'datetime' }, 'datetime(3)'),
    col('birth_date', { dataType: 'date' }, 'date'),
    col('login_time', { dataType: 'time', scale: 7 }, 'time(6)'),
    col('guid', { dataType: 'uniqueidentifier' }, 'char(36)'),
    col('seen_at', { dataType: 'datetimeoffset', scale: 6 }, 'VARCHAR(34) CHARACTER SET ascii COLLATE ascii_bin'),
    col('avatar_hash', { dataType: 'varbinary', length: 16 }, 'varbinary(16)'),
    col('level', { dataType: 'tinyint' }, 'tinyint unsigned'),
    col('active', { dataType: 'bit' }, 'tinyint(1)'),
    col('big_counter', { dataType: 'bigint' }, 'bigint'),
    col('balance', { dataType: 'money' }, 'decimal(19,4)'),
  ],
};

function fixture(name: string, offset = 0): KafkaRecord {
  const file = (part: string): Buffer | null => {
    const path = join(FIXTURES, `${name}.${part}.json`);
    return existsSync(path) ? readFileSync(path) : null;
  };
  return { topic: 'legacy.MemberDB.dbo.Member', partition: 0, offset: String(offset), key: file('key'), value: file('value') };
}

const decoder = new DebeziumDecoder([memberSpec]);

describe('Debezium decoding (SQL Server envelope fixtures)', () => {
  it('keeps integers above 2^53 exact through JSON parsing', () => {
    const doc = parseJsonLossless('{"a":9007199254740993,"b":"9007199254740993","c":1.5,"d":-9223372036854775808,"e":[12345678901234567]}') as Record<string, unknown>;
    expect(doc).toEqual({ a: '9007199254740993', b: '9007199254740993', c: 1.5, d: '-9223372036854775808', e: ['12345678901234567'] });
    expect(JSON.parse('{"a":9007199254740993}').a).not.toBe(9007199254740993n.toString()); // why the lossless parse exists
  });

  it('quotes only whole integer tokens outside strings (not fractions, exponents or digits in strings)', () => {
    const text = String.raw`[1e-12345678901234567, 1.12345678901234567, 12345678901234567.5, 12345678901234567e3, -12345678901234567, "\\", 12345678901234567, "a\"12345678901234567", {"k\\":98765432109876543}]`;
    expect(parseJsonLossless(text)).toEqual([1e-12345678901234567, 1.12345678901234567, 12345678901234567.5, 12345678901234567e3, '-12345678901234567', '\\', '12345678901234567', 'a"12345678901234567', { 'k\\': '98765432109876543' }]);
  });

  it('decodes precise decimals: base64 two\'s complement big-endian unscaled bytes and a scale', () => {
    const dec = (b64: string, scale: number) => scaledText(twosComplement(Buffer.from(b64, 'base64')), scale);
    expect(dec('AIAA', 2)).toBe('327.68');
    expect(dec('9go=', 2)).toBe('-25.50');
    expect(dec('gAA=', 2)).toBe('-327.68');
    expect(dec('EtaH', 2)).toBe('12345.67');
    expect(dec('AA==', 3)).toBe('0.000');
    expect(dec('/w==', 0)).toBe('-1');
  });

  it('decodes an insert with schemas: every SQL Server type exactly, and the LSN and commit time', () => {
    const d = decoder.decode(fixture('01-insert', 17));
    expect(d.kind).toBe('changes');
    if (d.kind !== 'changes') return;
    expect(d.events).toHaveLength(1);
    const e = d.events[0]!;
    expect(e).toMatchObject({ table: 'member', op: 'upsert', key: { member_id: '9007199254740993' }, sourceTsMs: 1709281815123 });
    expect(e.origin).toEqual({ source: 'legacy.MemberDB.dbo.Member', partition: 0, offset: '17', commitLsn: '0000002b00000d200005' });
    expect(e.after).toEqual({
      member_id: '9007199254740993',
      name: '张伟',
      points: '327.68',
      updated_at: '2024-03-01 08:30:15.123456',
      created_at: '2024-03-01 08:30:15.123',
      birth_date: '1000-01-01',
      login_time: '12:30:15.123456',
      guid: '0E984725-C51C-4BF4-9960-E1C80E27ABA0',
      seen_at: '2024-03-01 16:30:15.123456 +08:00', // its own offset, as the copy keeps it
      avatar_hash: Buffer.from([0x00, 0xff, 0x10]),
      level: '255',
      active: '1',
      big_counter: '9223372036854775807',
      balance: '123.4567',
    });
  });

  it('decodes a payload-only update (schemas.enable=false) from the column types alone', () => {
    const d = decoder.decode(fixture('02-update-no-schema'));
    expect(d.kind).toBe('changes');
    if (d.kind !== 'changes') return;
    expect(d.events).toHaveLength(1);
    expect(d.events[0]!.after).toMatchObject({ member_id: '9007199254740993', points: '-25.50', balance: '-3.2768', updated_at: '2024-03-01 08:30:15.123456', login_time: '12:30:15.123456' });
    expect(d.events[0]!.beforeShardKey).toBeUndefined();
  });

  it('turns a delete into a delete by key, and its tombstone into nothing', () => {
    const d = decoder.decode(fixture('03-delete'));
    expect(d).toMatchObject({ kind: 'changes', events: [{ op: 'delete', key: { member_id: '9007199254740993' }, after: null, beforeShardKey: '9007199254740993' }] });
    expect(decoder.decode(fixture('03-delete-tombstone'))).toEqual({ kind: 'tombstone' });
  });

  it("gives a delete its before image's updated_at (the table's updated_at), so it keeps a newer row; none for a key-only delete", () => {
    const stamped = new DebeziumDecoder([{ ...memberSpec, updatedAt: 'updated_at' }]);
    expect(stamped.decode(fixture('03-delete'))).toMatchObject({ kind: 'changes', events: [{ op: 'delete', beforeUpdatedAt: '2024-03-01 08:30:15.123456' }] });
    const keyOnly = stamped.decode(fixture('07-key-only-delete'));
    expect(keyOnly.kind === 'changes' && keyOnly.events[0]!.beforeUpdatedAt).toBeUndefined();
    // Without tables.NAME.updated_at, no bound.
    const plain = decoder.decode(fixture('03-delete'));
    expect(plain.kind === 'changes' && plain.events[0]!.beforeUpdatedAt).toBeUndefined();
  });

  it('decodes a primary-key change as a delete of the old key and a create of the new one', () => {
    const del = decoder.decode(fixture('04-pk-update-d'));
    const cre = decoder.decode(fixture('04-pk-update-c'));
    expect(del).toMatchObject({ kind: 'changes', events: [{ op: 'delete', key: { member_id: '7' } }] });
    expect(cre).toMatchObject({ kind: 'changes', events: [{ op: 'upsert', key: { member_id: '8' } }] });
  });

  it('applies snapshot reads as upserts and decodes key-only deletes from the message key', () => {
    expect(decoder.decode(fixture('05-snapshot-read'))).toMatchObject({ kind: 'changes', events: [{ op: 'upsert', key: { member_id: '42' } }] });
    expect(decoder.decode(fixture('07-key-only-delete'))).toMatchObject({ kind: 'changes', events: [{ op: 'delete', key: { member_id: '42' }, beforeShardKey: '42' }] });
  });

  it('refuses what the target cannot hold or replay: 100 ns fractions and truncates are poison with reasons', () => {
    const nanos = decoder.decode(fixture('06-nanos-100ns'));
    expect(nanos.kind).toBe('poison');
    if (nanos.kind === 'poison') {
      expect(nanos.poison.reason).toContain('column updated_at');
      expect(nanos.poison.reason).toContain('.1234567'); // the int64 survived parsing: 100 ns are still there
      expect(nanos.poison.table).toBe('member');
    }
    const truncate = decoder.decode(fixture('08-truncate'));
    expect(truncate).toMatchObject({ kind: 'poison', poison: { reason: expect.stringContaining('truncate of dbo.Member') } });
  });

  it('dead-letters malformed and out-of-contract events with a reason, keeping the raw message', () => {
    const rec = (value: string | null, key: string | null = '{"member_id":1}'): KafkaRecord => ({
      topic: 't',
      partition: 3,
      offset: '99',
      key: key === null ? null : Buffer.from(key),
      value: value === null ? null : Buffer.from(value),
    });
    const reason = (value: string, key?: string | null) => {
      const d = decoder.decode(rec(value, key));
      expect(d.kind).toBe('poison');
      return d.kind === 'poison' ? d.poison : undefined;
    };
    const notJson = reason('{not json');
    expect(notJson?.reason).toMatch(/not JSON/);
    expect(notJson?.rawValue?.toString()).toBe('{not json');
    expect(notJson?.origin).toEqual({ source: 't', partition: 3, offset: '99' });
    expect(reason('{"hello":1}')?.reason).toMatch(/not a Debezium change event/);
    const src = '"source":{"connector":"sqlserver","schema":"dbo","table":"Member","ts_ms":1}';
    expect(reason(`{"op":"c","after":{"member_id":1},"source":{"connector":"sqlserver","schema":"dbo","table":"Nope"}}`)?.reason).toMatch(/unknown table dbo.Nope/);
    expect(reason(`{"op":"c","after":{"name":"x"},${src}}`)?.reason).toMatch(/column member_id is missing/);
    const full = JSON.parse(readFileSync(join(FIXTURES, '02-update-no-schema.value.json'), 'utf8').replace(/(\d{16,})/g, '"$1"')).after;
    expect(reason(JSON.stringify({ op: 'c', after: { ...full, member_id: null }, source: JSON.parse(`{${src}}`).source }))?.reason).toMatch(/key column member_id is missing or null/);
    expect(reason(JSON.stringify({ op: 'c', after: { ...full, points: 'not base64!' }, source: JSON.parse(`{${src}}`).source }))?.reason).toMatch(/column points.*base64/);
    expect(reason(JSON.stringify({ op: 'c', after: { ...full, level: 'x' }, source: JSON.parse(`{${src}}`).source }))?.reason).toMatch(/column level.*expected an integer/);
    expect(reason(`{"op":"d","before":null,${src}}`, null)?.reason).toMatch(/delete without a before image or a message key/);
    expect(reason(`{"op":"x","after":{},${src}}`)?.reason).toMatch(/unknown op "x"/);
  });
});

/**
 * Change events must become exactly the text the copy path writes for the same source value: the
 * copy reads what tedious hands over and converts it with the type map (src/rows/mssql/typemap.ts).
 */
describe('Debezium SQL Server values give the copy path\'s text', () => {
  /** A column as the SQL Server catalog and type map describe it. */
  const mapped = (source: string, sourceType: SourceType): ColumnSpec => col(source, sourceType, mssqlTypeMap.conversion(sourceType, source).targetType);
  /** What the copy path writes for a value read in the form its SELECT expression gives. */
  const copied = (c: ColumnSpec, read: string): RowValue | Unrepresentable => mssqlTypeMap.conversion(c.sourceType, c.source).convert(read);

  const columns = {
    code: mapped('code', { dataType: 'char', length: 10, collation: 'Latin1_General_CI_AS' }),
    nick: mapped('nick', { dataType: 'nchar', length: 8, collation: 'Latin1_General_CI_AS' }),
    name: mapped('name', { dataType: 'nvarchar', length: 50, collation: 'Latin1_General_CI_AS' }),
    city: mapped('city', { dataType: 'varchar', length: 20, collation: 'Chinese_PRC_CI_AS' }),
    seen7: mapped('seen7', { dataType: 'datetimeoffset', scale: 7 }),
    seen3: mapped('seen3', { dataType: 'datetimeoffset', scale: 3 }),
    seen0: mapped('seen0', { dataType: 'datetimeoffset', scale: 0 }),
  };
  const spec: TableSpec = {
    name: 'card',
    sourceSchema: 'dbo',
    sourceTable: 'Card',
    target: 'card',
    primaryKey: ['code'],
    shardKey: 'code',
    columns: Object.values(columns),
  };
  const cardDecoder = new DebeziumDecoder([spec]);
  const source = { connector: 'sqlserver', db: 'MemberDB', schema: 'dbo', table: 'Card', ts_ms: 1, commit_lsn: '0000002b:00000d20:0005' };
  const row = { code: 'AB12      ', nick: 'zz      ', name: 'x', city: '北京', seen7: null, seen3: null, seen0: null };
  const record = (payload: unknown, key: unknown = { code: 'AB12      ' }): KafkaRecord => ({
    topic: 'legacy.MemberDB.dbo.Card',
    partition: 0,
    offset: '1',
    key: Buffer.from(JSON.stringify(key)),
    value: Buffer.from(JSON.stringify(payload)),
  });
  const after = (values: Partial<Record<keyof typeof row, string | null>>) => {
    const d = cardDecoder.decode(record({ op: 'c', before: null, after: { ...row, ...values }, source }));
    if (d.kind !== 'changes') throw new Error(`expected changes, got ${JSON.stringify(d)}`);
    return d.events[0]!;
  };
  const poison = (values: Partial<Record<keyof typeof row, string | null>>): string => {
    const d = cardDecoder.decode(record({ op: 'c', before: null, after: { ...row, ...values }, source }));
    if (d.kind !== 'poison') throw new Error(`expected poison, got ${JSON.stringify(d)}`);
    return d.poison.reason;
  };

  it('keeps a datetimeoffset in its own offset, as the copy does (not moved to UTC, not cut by the VARCHAR(34) length)', () => {
    expect(columns.seen7.targetType).toMatch(/^VARCHAR\(34\)/);
    const cases: [keyof typeof columns, string, string][] = [
      // [column, Debezium ZonedTimestamp, the copy path's read: style 121 + ' ' + DATEPART(TZOFFSET)]
      ['seen7', '2024-03-02T17:00:00.1234567+08:00', '2024-03-02 17:00:00.1234567 480'],
      ['seen7', '2024-03-02T17:00:00.1+08:00', '2024-03-02 17:00:00.1000000 480'],
      ['seen7', '2024-03-02T17:00:00.123456700-05:30', '2024-03-02 17:00:00.1234567 -330'],
      ['seen7', '0001-01-01T00:00:00Z', '0001-01-01 00:00:00.0000000 0'],
      ['seen3', '2024-03-02T17:00:00.12+14:00', '2024-03-02 17:00:00.120 840'],
      ['seen0', '9999-12-31T23:59:59-14:00', '9999-12-31 23:59:59 -840'],
    ];
    for (const [column, zoned, read] of cases) {
      const expected = copied(columns[column], read);
      expect(after({ [column]: zoned }).after![column], `${column} ${zoned}`).toBe(expected);
    }
    expect(after({ seen7: '2024-03-02T17:00:00.1234567+08:00' }).after!.seen7).toBe('2024-03-02 17:00:00.1234567 +08:00');
    expect(after({ seen3: '2024-03-02T17:00:00Z' }).after!.seen3).toBe('2024-03-02 17:00:00.000 +00:00');
  });

  it('a GUID is written as the copy writes it (upper case, as SQL Server prints it); one not in GUID form is refused', () => {
    const guid = mapped('guid', { dataType: 'uniqueidentifier' });
    const encoding = withSqlServerConversion({ type: 'string' }, guid);
    expect(decodeValue('0e984725-c51c-4bf4-9960-e1c80e27aba0', encoding, guid)).toBe(copied(guid, '0E984725-C51C-4BF4-9960-E1C80E27ABA0'));
    expect(decodeValue('0e984725-c51c-4bf4-9960-e1c80e27aba0', encoding, guid)).toBe('0E984725-C51C-4BF4-9960-E1C80E27ABA0');
    expect(() => decodeValue('not-a-guid', encoding, guid)).toThrow(/not a GUID/);
  });

  it('a float of -0 keeps its sign, as the copy path writes it', () => {
    const score = mapped('score', { dataType: 'float' });
    expect(copied(score, -0 as unknown as string)).toBe('-0');
    expect(decodeValue(-0, { type: 'double' }, score)).toBe('-0');
    expect(decodeValue(0, { type: 'double' }, score)).toBe('0');
    expect(decodeValue(-1.5, { type: 'float64' }, score)).toBe('-1.5');
  });

  it('dead-letters a datetimeoffset it cannot hold exactly, with a reason', () => {
    expect(poison({ seen3: '2024-03-02T17:00:00.1234+08:00' })).toMatch(/column seen3.*more digits than datetimeoffset\(3\)/);
    expect(poison({ seen7: '2024-03-02T17:00:00.123456789+08:00' })).toMatch(/column seen7.*more than 7 fraction digits/);
    expect(poison({ seen7: '2024-03-02 17:00:00' })).toMatch(/column seen7.*ISO-8601/);
    // A zone-less date-time never takes its precision from a VARCHAR's length.
    expect(() => decodeValue(1709370000000, { type: 'int64', name: 'io.debezium.time.Timestamp' }, columns.seen7)).toThrow(/a date-time value for a VARCHAR\(34\)/);
  });

  it('applies the copy path\'s text rules: CHAR(n) loses its pad (the shard key routes alike), lone surrogates are refused', () => {
    const e = after({});
    expect(e.key).toEqual({ code: copied(columns.code, 'AB12      ') });
    expect(e.key).toEqual({ code: 'AB12' });
    expect(e.after).toMatchObject({ code: 'AB12', nick: 'zz', name: 'x', city: '北京' });
    expect(after({ name: 'trailing kept  ' }).after!.name).toBe('trailing kept  '); // nvarchar keeps its spaces, as in the copy
    expect(poison({ name: 'a\uD800b' })).toMatch(/column name.*lone UTF-16 surrogate/);
    // U+FFFD in code-page text is a byte Java's charset could not decode (Windows' code page may have it):
    // the row is copied again from legacy, which reads the bytes (and flags them if they are invalid there).
    const lost = after({ city: 'bad \uFFFD' });
    expect(lost.recopy).toMatch(/column city \(Chinese_PRC_CI_AS\) arrived with U\+FFFD/);
    expect(after({ name: 'kept \uFFFD' }).recopy).toBeUndefined(); // nvarchar: Unicode as it was written
  });

  it('strips the pad from the shard key of key-only deletes and of update before images too', () => {
    const del = cardDecoder.decode(record({ op: 'd', before: null, after: null, source }, { code: 'AB12      ' }));
    expect(del).toMatchObject({ kind: 'changes', events: [{ op: 'delete', key: { code: 'AB12' }, beforeShardKey: 'AB12' }] });
    // Only the pad differs: the same key, not a key change.
    const upd = cardDecoder.decode(record({ op: 'u', before: { ...row, code: 'AB12      ' }, after: { ...row, code: 'AB12', name: 'y' }, source }));
    expect(upd).toMatchObject({ kind: 'changes', events: [{ op: 'upsert', key: { code: 'AB12' } }] });
    if (upd.kind === 'changes') expect(upd.events).toHaveLength(1);
  });
});

/**
 * MySQL/MariaDB BIT columns: change events must write the bytes the copy path writes, which it
 * reads from mysql2 (big-endian, ceil(n/8) bytes). Debezium sends BIT(1) as a boolean and BIT(n>1)
 * as io.debezium.data.Bits: little-endian bytes (java.util.BitSet), padded to ceil(n/8).
 */
describe('Debezium MySQL BIT values give the copy path\'s bytes', () => {
  let env: TestEnv;
  let spec: TableSpec;
  /** The copy path's rows (the source reader's readRange), by id. */
  const copied = new Map<string, Row>();
  let bitDecoder: DebeziumDecoder;
  let source: Record<string, unknown>;

  beforeAll(async () => {
    env = await createTestEnv({
      tables: { flags: { source: 'legacy.flags', target: 'flags', shard_key: 'id' } },
      legacySql: ['CREATE TABLE flags (id INT NOT NULL PRIMARY KEY, b10 BIT(10) NULL, b1 BIT(1) NULL)', 'INSERT INTO flags VALUES (1, 512, 1), (2, 1023, 0), (3, 0, NULL)'],
    });
    const reader = createSourceReader(env.config, silentLogger);
    try {
      spec = await reader.describeTable('flags', env.config.tables.flags!);
      for await (const batch of reader.readRange(spec, null, null, 100)) for (const row of batch) copied.set(String(row[0]), row);
    } finally {
      await reader.close();
    }
    bitDecoder = new DebeziumDecoder([spec]);
    source = { connector: 'mysql', db: env.legacyDb, table: 'flags', ts_ms: 1 };
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  const field = (name: string) => spec.columns.findIndex((c) => c.source === name);
  /** The event's after image, decoded; with the Connect schema Debezium writes, or payload only. */
  const decodeAfter = (after: Record<string, unknown>, withSchema: boolean) => {
    const payload = { op: 'c', before: null, after, source };
    const fields = [
      { type: 'int32', optional: false, field: 'id' },
      { type: 'bytes', optional: true, name: 'io.debezium.data.Bits', version: 1, parameters: { length: '10' }, field: 'b10' },
      { type: 'boolean', optional: true, field: 'b1' },
    ];
    const schema = { type: 'struct', fields: [{ type: 'struct', optional: true, field: 'before', fields }, { type: 'struct', optional: true, field: 'after', fields }], name: 'flags.Envelope' };
    const value = withSchema ? { schema, payload } : payload;
    return bitDecoder.decode({ topic: 'legacy.flags', partition: 0, offset: '1', key: null, value: Buffer.from(JSON.stringify(value)) });
  };
  const le = (...bytes: number[]) => Buffer.from(bytes).toString('base64');

  it('reverses BIT(10)\'s little-endian Bits to the copy\'s big-endian bytes, with or without schemas', () => {
    expect(spec.columns[field('b10')]!.targetType).toBe('bit(10)');
    expect(copied.get('1')![field('b10')]).toEqual(Buffer.from([0x02, 0x00])); // 512, as mysql2 reads it
    expect(copied.get('2')![field('b10')]).toEqual(Buffer.from([0x03, 0xff])); // 0x3FF
    const cases: [string, string][] = [
      ['1', le(0x00, 0x02)], // 512: BitSet.toByteArray, low byte first
      ['2', le(0xff, 0x03)], // 0x3FF
      ['3', le(0x00, 0x00)], // 0: an empty BitSet, padded to ceil(10/8)
    ];
    for (const withSchema of [true, false]) {
      for (const [id, bits] of cases) {
        const d = decodeAfter({ id: Number(id), b10: bits, b1: null }, withSchema);
        expect(d.kind, `${id} ${withSchema}`).toBe('changes');
        if (d.kind === 'changes') expect(d.events[0]!.after!.b10, `id ${id}, schemas ${withSchema}`).toEqual(copied.get(id)![field('b10')]);
      }
    }
  });

  it('sizes Bits to ceil(n/8) bytes whatever width Debezium sent, and dead-letters bits BIT(n) cannot hold', () => {
    const b10 = (bits: string) => {
      const d = decodeAfter({ id: 1, b10: bits, b1: null }, true);
      return d.kind === 'changes' ? d.events[0]!.after!.b10 : d.kind === 'poison' ? d.poison.reason : d.kind;
    };
    expect(b10(le(0x03))).toEqual(Buffer.from([0x00, 0x03])); // trimmed high zero byte
    expect(b10(le(0x00, 0x02, 0, 0, 0, 0, 0, 0))).toEqual(copied.get('1')![field('b10')]); // a long's 8 bytes
    expect(b10(le(0x00, 0x04))).toMatch(/column b10.*bit\(10\) cannot hold 0x0400/); // bit 10
    expect(b10(le(0x00, 0x00, 0x01))).toMatch(/column b10.*cannot hold 0x010000/);
  });

  it('writes BIT(1)\'s boolean as the copy\'s one byte, not the text \'1\'', () => {
    expect(spec.columns[field('b1')]!.targetType).toBe('bit(1)');
    expect(copied.get('1')![field('b1')]).toEqual(Buffer.from([1]));
    expect(copied.get('2')![field('b1')]).toEqual(Buffer.from([0]));
    for (const withSchema of [true, false]) {
      for (const [id, b1] of [['1', true], ['2', false]] as const) {
        const d = decodeAfter({ id: Number(id), b10: null, b1 }, withSchema);
        expect(d.kind).toBe('changes');
        if (d.kind === 'changes') expect(d.events[0]!.after!.b1, `${b1}, schemas ${withSchema}`).toEqual(copied.get(id)![field('b1')]);
      }
    }
  });
});

describe('Debezium SQL Server rowversion', () => {
  it('decodes a schema-less timestamp (rowversion) column as its 8 bytes, as the copy reads them', () => {
    const rv = col('rv', { dataType: 'timestamp' }, mssqlTypeMap.conversion({ dataType: 'timestamp' }, 'rv').targetType);
    expect(rv.targetType).toBe('BINARY(8)');
    const spec: TableSpec = { name: 'versioned', sourceSchema: 'dbo', sourceTable: 'Versioned', target: 'versioned', primaryKey: ['id'], shardKey: 'id', columns: [col('id', { dataType: 'bigint' }, 'bigint', false), rv] };
    const bytes = Buffer.from('00000000000007d1', 'hex');
    const payload = { op: 'u', before: null, after: { id: 7, rv: bytes.toString('base64') }, source: { connector: 'sqlserver', db: 'MemberDB', schema: 'dbo', table: 'Versioned', ts_ms: 1 } };
    const d = new DebeziumDecoder([spec]).decode({ topic: 'legacy.MemberDB.dbo.Versioned', partition: 0, offset: '1', key: null, value: Buffer.from(JSON.stringify(payload)) });
    expect(d).toMatchObject({ kind: 'changes', events: [{ op: 'upsert', key: { id: '7' } }] });
    if (d.kind === 'changes') expect(d.events[0]!.after!.rv).toEqual(mssqlTypeMap.conversion(rv.sourceType, 'rv').convert(bytes));
  });
});
