import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sql from 'mssql';
import { describe, expect, it } from 'vitest';
import { RefusedError } from '../../../src/errors.js';
import { valueText } from '../../../src/rows/convert.js';
import { mssqlTypeMap } from '../../../src/rows/mssql/typemap.js';
import { keyLiteral } from '../../../src/source/mysql/sql.js';
import { bindRequest, describeMssqlUrl, loadMssqlDriver, mssqlConfig } from '../../../src/source/mssql/connect.js';
import { buildTableSpec, readPlan, sourceTypeOf, type CatalogColumn } from '../../../src/source/mssql/reader.js';
import {
  boundaryQuery,
  CAPTURE_INSTANCES_SQL,
  KEY_HISTOGRAM_SQL,
  keySpanQuery,
  TABLE_ROWS_SQL,
  MAX_PARAMS,
  captureJobBehind,
  pageQuery,
  quoteName,
  quoteTable,
  rowsByKeyQuery,
  type KeyColumn,
} from '../../../src/source/mssql/tsql.js';

const key = (name: string, type: Parameters<typeof mssqlTypeMap.conversion>[0]): KeyColumn => ({
  quoted: quoteName(name),
  binding: mssqlTypeMap.conversion(type, name).key!,
});

describe('identifier quoting', () => {
  it('brackets names and doubles ], so no name can break out', () => {
    expect(quoteName('Member')).toBe('[Member]');
    expect(quoteName('a]b')).toBe('[a]]b]');
    expect(quoteName('x]; DROP TABLE t; --')).toBe('[x]]; DROP TABLE t; --]');
    expect(quoteName('会员 id')).toBe('[会员 id]');
    expect(quoteTable('dbo', 'Mem]ber')).toBe('[dbo].[Mem]]ber]');
    expect(() => quoteName('')).toThrow(/1\.\.128/);
    expect(() => quoteName('a'.repeat(129))).toThrow(/1\.\.128/);
    expect(() => quoteName('a\0b')).toThrow(/NUL/);
  });
});

describe('keyset pages', () => {
  const id = key('member_id', { dataType: 'bigint' });
  const region = key('region', { dataType: 'int' });
  const name = key('name', { dataType: 'nvarchar', length: 50, collation: 'Chinese_PRC_CI_AS' });

  it('single key: exclusive lower, inclusive upper, typed parameters, key order', () => {
    const q = pageQuery({ table: '[dbo].[Member]', columns: ['[member_id]', 'CAST([points] AS varchar(50))'], keys: [id], lower: ['9007199254740993'], upper: ['9007199254741993'], limit: 500 });
    expect(q.text).toBe(
      'SELECT TOP (@limit) [member_id] AS [c0], CAST([points] AS varchar(50)) AS [c1], [member_id] AS [k0]\n' +
        'FROM [dbo].[Member]\n' +
        'WHERE ([member_id] > CAST(@l0 AS bigint))\n' +
        '  AND ([member_id] <= CAST(@u0 AS bigint))\n' +
        'ORDER BY [member_id]',
    );
    // the bigint travels as text and is CAST server-side: never through a JS number
    expect(q.params).toEqual([
      { name: 'limit', type: 'int', value: 500 },
      { name: 'l0', type: 'nvarchar', value: '9007199254740993' },
      { name: 'u0', type: 'nvarchar', value: '9007199254741993' },
    ]);
  });

  it('composite key: a > @a OR (a = @a AND b > @b); first page has no WHERE', () => {
    const q = pageQuery({ table: '[dbo].[T]', columns: ['[region]', '[name]'], keys: [region, name], lower: ['5', '张伟'], upper: ['9', 'z'], limit: 100 });
    expect(q.text).toBe(
      'SELECT TOP (@limit) [region] AS [c0], [name] AS [c1], [region] AS [k0], [name] AS [k1]\n' +
        'FROM [dbo].[T]\n' +
        'WHERE (([region] > @l0) OR ([region] = @l0 AND [name] > @l1))\n' +
        '  AND (([region] < @u0) OR ([region] = @u0 AND [name] <= @u1))\n' +
        'ORDER BY [region], [name]',
    );
    expect(q.params).toEqual([
      { name: 'limit', type: 'int', value: 100 },
      { name: 'l0', type: 'int', value: 5 },
      { name: 'l1', type: 'nvarchar', value: '张伟' },
      { name: 'u0', type: 'int', value: 9 },
      { name: 'u1', type: 'nvarchar', value: 'z' },
    ]);
    const first = pageQuery({ table: '[dbo].[T]', columns: ['[region]'], keys: [region, name], lower: null, upper: null, limit: 10 });
    expect(first.text).toBe('SELECT TOP (@limit) [region] AS [c0], [region] AS [k0], [name] AS [k1]\nFROM [dbo].[T]\nORDER BY [region], [name]');
  });

  it('three key columns expand fully', () => {
    const c = key('c', { dataType: 'int' });
    const q = pageQuery({ table: '[t]', columns: [], keys: [region, id, c], lower: ['1', '2', '3'], upper: null, limit: 1 });
    expect(q.text).toContain(
      'WHERE (([region] > @l0) OR ([region] = @l0 AND [member_id] > CAST(@l1 AS bigint)) OR ([region] = @l0 AND [member_id] = CAST(@l1 AS bigint) AND [c] > @l2))',
    );
  });

  it('non-integer keys are bound as nvarchar and converted to the column type in T-SQL', () => {
    const cases: [Parameters<typeof mssqlTypeMap.conversion>[0], string, string][] = [
      [{ dataType: 'decimal', precision: 18, scale: 2 }, 'CAST(@l0 AS decimal(18,2))', 'CAST([k] AS varchar(50))'],
      [{ dataType: 'uniqueidentifier' }, 'CAST(@l0 AS uniqueidentifier)', 'CONVERT(char(36), [k])'],
      [{ dataType: 'varchar', length: 20, collation: 'Chinese_PRC_CI_AS' }, 'CAST(@l0 COLLATE Chinese_PRC_CI_AS AS varchar(20))', 'CAST([k] AS nvarchar(20))'],
      [{ dataType: 'char', length: 8, collation: 'Latin1_General_BIN2' }, 'CAST(@l0 COLLATE Latin1_General_BIN2 AS char(8))', 'CAST([k] AS nvarchar(8))'],
      [{ dataType: 'nvarchar', length: 20, collation: 'Chinese_PRC_CI_AS' }, '@l0', '[k]'],
      [{ dataType: 'datetime2', scale: 7 }, 'CONVERT(datetime2(7), @l0, 121)', 'CONVERT(varchar(27), [k], 121)'],
      [{ dataType: 'datetime' }, 'CONVERT(datetime, @l0, 121)', 'CONVERT(varchar(23), [k], 121)'],
      [{ dataType: 'date' }, 'CONVERT(date, @l0, 23)', 'CONVERT(varchar(10), [k], 23)'],
      [{ dataType: 'binary', length: 16 }, 'CONVERT(binary(16), @l0, 2)', 'LOWER(CONVERT(varchar(max), [k], 2))'],
      [{ dataType: 'varbinary', length: 8 }, 'CONVERT(varbinary(8), @l0, 2)', 'LOWER(CONVERT(varchar(max), [k], 2))'],
      [{ dataType: 'money' }, 'CAST(@l0 AS money)', 'CAST(CAST([k] AS decimal(19,4)) AS varchar(30))'],
    ];
    for (const [type, predicate, keyText] of cases) {
      const q = pageQuery({ table: '[t]', columns: [], keys: [key('k', type)], lower: ['x'], upper: null, limit: 1 });
      expect(q.text).toBe(`SELECT TOP (@limit) ${keyText} AS [k0]\nFROM [t]\nWHERE ([k] > ${predicate})\nORDER BY [k]`);
      expect(q.params[1]).toEqual({ name: 'l0', type: 'nvarchar', value: 'x' });
    }
  });

  it('a binary key reads as the lowercase hex the row path and the shards use, and binds back from it', () => {
    // Chunk bounds travel from SQL Server to the shards' SQL (verify's ranges): the MySQL side takes hex without 0x.
    const type = { dataType: 'varbinary', length: 8 };
    const { key } = mssqlTypeMap.conversion(type, 'k of t');
    expect(key!.keyText('[k]')).toBe('LOWER(CONVERT(varchar(max), [k], 2))');
    expect(valueText(Buffer.from([0x00, 0xab, 0x12]))).toBe('00ab12');
    expect(keyLiteral(type, '00ab12')).toBe("X'00ab12'");
    expect(() => keyLiteral(type, '0x00AB12')).toThrow(/not hex/);
    expect(key!.castParam('@l0')).toBe('CONVERT(varbinary(8), @l0, 2)');
  });

  it('chunk boundaries: the key chunkRows rows on, via OFFSET/FETCH', () => {
    expect(boundaryQuery('[dbo].[Member]', [id], null, 50000)).toEqual({
      text: 'SELECT [member_id] AS [k0]\nFROM [dbo].[Member]\nORDER BY [member_id]\nOFFSET @skip ROWS FETCH NEXT 1 ROWS ONLY',
      params: [{ name: 'skip', type: 'int', value: 49999 }],
    });
    const next = boundaryQuery('[dbo].[Member]', [id], ['123'], 10);
    expect(next.text).toBe('SELECT [member_id] AS [k0]\nFROM [dbo].[Member]\nWHERE ([member_id] > CAST(@l0 AS bigint))\nORDER BY [member_id]\nOFFSET @skip ROWS FETCH NEXT 1 ROWS ONLY');
  });

  it('chunks by value: the key span after a bound as text, the partitions\' row count, the key index\'s histogram', () => {
    const id = key('member_id', { dataType: 'bigint' });
    expect(keySpanQuery('[dbo].[Member]', id, null)).toEqual({
      text: 'SELECT CONVERT(varchar(20), MIN([member_id])) AS lo, CONVERT(varchar(20), MAX([member_id])) AS hi\nFROM [dbo].[Member]',
      params: [],
    });
    const after = keySpanQuery('[dbo].[Member]', id, ['9007199254740993']);
    expect(after.text).toBe('SELECT CONVERT(varchar(20), MIN([member_id])) AS lo, CONVERT(varchar(20), MAX([member_id])) AS hi\nFROM [dbo].[Member]\nWHERE ([member_id] > CAST(@l0 AS bigint))');
    // 64-bit keys go as text, cast on the server: never through a JS number.
    expect(after.params).toEqual([{ name: 'l0', type: 'nvarchar', value: '9007199254740993' }]);
    // Heap (0) or clustered index (1): one count of the rows, not one per index.
    expect(TABLE_ROWS_SQL).toContain('p.index_id IN (0, 1)');
    expect(TABLE_ROWS_SQL).toContain('OBJECT_ID(@table)');
    // The primary key's own statistics (stats_id = index_id), steps in order, the sql_variant high key as digits.
    expect(KEY_HISTOGRAM_SQL).toContain('sys.dm_db_stats_histogram(i.object_id, i.index_id)');
    expect(KEY_HISTOGRAM_SQL).toContain('i.is_primary_key = 1');
    expect(KEY_HISTOGRAM_SQL).toContain('CONVERT(varchar(40), CONVERT(decimal(38, 0), h.range_high_key)) AS high_key');
    expect(KEY_HISTOGRAM_SQL).toMatch(/ORDER BY h\.step_number$/);
  });

  it('refuses a key with the wrong number of values', () => {
    expect(() => pageQuery({ table: '[t]', columns: [], keys: [region, name], lower: ['1'], upper: null, limit: 1 })).toThrow(/2 columns got 1/);
  });

  it('binds each parameter with its declared SQL Server type', async () => {
    await loadMssqlDriver();
    const r = bindRequest(new sql.Request(), [
      { name: 'a', type: 'int', value: 5 },
      { name: 'b', type: 'nvarchar', value: 'x' },
      { name: 'c', type: 'lsn', value: Buffer.alloc(10) },
      { name: 'd', type: 'tinyint', value: 255 },
      { name: 'e', type: 'nvarchar', value: 'y'.repeat(5000) },
    ]);
    const p = r.parameters as unknown as Record<string, { type: unknown; length?: number; value: unknown }>;
    expect(p.a!.type).toBe(sql.Int);
    expect(p.b!.type).toBe(sql.NVarChar);
    expect(p.b!.length).toBe(4000);
    expect(p.c!.type).toBe(sql.Binary);
    expect(p.d!.type).toBe(sql.TinyInt);
    expect(p.e!.length).toBe(sql.MAX);
  });
});

describe('rows by key (repair queue, drill-down repairs)', () => {
  const id = key('member_id', { dataType: 'bigint' });
  const region = key('region', { dataType: 'int' });
  const name = key('name', { dataType: 'varchar', length: 20, collation: 'Chinese_PRC_CI_AS' });

  it('one OR of keys, each column bound as keyset pages bind it (64-bit as text, varchar with its collation)', () => {
    const q = rowsByKeyQuery({ table: '[dbo].[T]', columns: ['[member_id]', '[region]', '[name]'], keys: [region, name], values: [['1', '张伟'], ['2', 'z']] });
    expect(q.text).toBe(
      'SELECT [member_id] AS [c0], [region] AS [c1], [name] AS [c2], [region] AS [k0], CAST([name] AS nvarchar(20)) AS [k1]\n' +
        'FROM [dbo].[T]\n' +
        `WHERE ([region] = @r0_0 AND [name] = ${name.binding.castParam('@r0_1')})\n` +
        `   OR ([region] = @r1_0 AND [name] = ${name.binding.castParam('@r1_1')})`,
    );
    expect(name.binding.castParam('@p')).toContain('COLLATE Chinese_PRC_CI_AS');
    expect(q.params).toEqual([
      { name: 'r0_0', type: 'int', value: 1 },
      { name: 'r0_1', type: 'nvarchar', value: '张伟' },
      { name: 'r1_0', type: 'int', value: 2 },
      { name: 'r1_1', type: 'nvarchar', value: 'z' },
    ]);
    const big = rowsByKeyQuery({ table: '[t]', columns: [], keys: [id], values: [['9223372036854775807']] });
    expect(big.text).toContain('[member_id] = CAST(@r0_0 AS bigint)');
    expect(big.params).toEqual([{ name: 'r0_0', type: 'nvarchar', value: '9223372036854775807' }]);
  });

  it('refuses more keys than SQL Server takes parameters (the reader batches below that)', () => {
    const values = Array.from({ length: MAX_PARAMS / 2 + 1 }, (_v, i) => [String(i), 'x']);
    expect(() => rowsByKeyQuery({ table: '[t]', columns: [], keys: [region, name], values })).toThrow(/exceed 2000 parameters/);
  });
});

describe('describeTable from catalog rows', () => {
  const catalog = (rows: Partial<CatalogColumn>[]): CatalogColumn[] =>
    rows.map((r) => ({ max_length: 4, precision: 10, scale: 0, collation_name: null, is_nullable: false, is_computed: false, column_name: '?', type_name: 'int', ...r }));
  const columns = catalog([
    { column_name: 'member_id', type_name: 'bigint', max_length: 8 },
    { column_name: 'name', type_name: 'nvarchar', max_length: 200, collation_name: 'Chinese_PRC_CI_AS', is_nullable: true },
    { column_name: 'points', type_name: 'decimal', precision: 18, scale: 2, max_length: 9 },
    { column_name: 'updated_at', type_name: 'datetime2', scale: 7, max_length: 8 },
    { column_name: 'photo', type_name: 'varbinary', max_length: -1, is_nullable: true },
  ]);
  const table = { source: 'dbo.Member', target: 'member', shard_key: 'member_id', exclude_columns: [] as string[] };

  it('maps sys.columns facts to SourceTypes (nvarchar bytes → characters, -1 = MAX)', () => {
    expect(sourceTypeOf(columns[1]!)).toEqual({ dataType: 'nvarchar', length: 100, collation: 'Chinese_PRC_CI_AS' });
    expect(sourceTypeOf(columns[2]!)).toEqual({ dataType: 'decimal', precision: 18, scale: 2 });
    expect(sourceTypeOf(columns[3]!)).toEqual({ dataType: 'datetime2', scale: 7 });
    expect(sourceTypeOf(columns[4]!)).toEqual({ dataType: 'varbinary', length: -1 });
  });

  it('builds the spec with target types, PK in key order, and a read plan', () => {
    const spec = buildTableSpec('member', table, columns, ['member_id']);
    expect(spec).toMatchObject({ name: 'member', sourceSchema: 'dbo', sourceTable: 'Member', target: 'member', primaryKey: ['member_id'], shardKey: 'member_id' });
    expect(spec.columns.map((c) => [c.source, c.targetType, c.nullable])).toEqual([
      ['member_id', 'BIGINT', false],
      ['name', 'VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_as_ci', true],
      ['points', 'DECIMAL(18,2)', false],
      ['updated_at', 'DATETIME(6)', false],
      ['photo', 'LONGBLOB', true],
    ]);
    const plan = readPlan(spec);
    expect(plan.table).toBe('[dbo].[Member]');
    expect(plan.columns).toEqual(['[member_id]', '[name]', 'CAST([points] AS varchar(50))', 'CONVERT(varchar(27), [updated_at], 121)', '[photo]']);
    expect(JSON.parse(JSON.stringify(spec))).toEqual(spec); // plain data: can be stored and passed between workers
  });

  it('leaves out excluded columns', () => {
    const spec = buildTableSpec('member', { ...table, exclude_columns: ['photo'] }, columns, ['member_id']);
    expect(spec.columns.map((c) => c.source)).toEqual(['member_id', 'name', 'points', 'updated_at']);
  });

  it('takes a shard key of an integer, decimal with scale 0 or text type, and refuses one whose text form is not one (bytes, GUID, date, float)', () => {
    const keyed = (type: Partial<CatalogColumn>) => catalog([{ column_name: 'member_id', type_name: 'bigint', max_length: 8 }, { column_name: 'k', ...type }]);
    for (const ok of [{ type_name: 'int' }, { type_name: 'numeric', precision: 18, scale: 0, max_length: 9 }, { type_name: 'nvarchar', max_length: 40 }, { type_name: 'char', max_length: 10 }]) {
      expect(buildTableSpec('member', { ...table, shard_key: 'k' }, keyed(ok), ['member_id']).shardKey).toBe('k');
    }
    for (const bad of [
      { type_name: 'uniqueidentifier', max_length: 16 },
      { type_name: 'varbinary', max_length: 16 },
      { type_name: 'decimal', precision: 18, scale: 2, max_length: 9 },
      { type_name: 'datetime2', scale: 7, max_length: 8 },
      { type_name: 'float', max_length: 8 },
    ]) {
      expect(() => buildTableSpec('member', { ...table, shard_key: 'k' }, keyed(bad), ['member_id'])).toThrow(
        new RegExp(`table member \\(source dbo\\.Member\\): shard key column k has type ${bad.type_name}; it must be an integer`),
      );
    }
  });

  it('columns renames source columns in the shard tables; the source side keeps their own names', () => {
    const spec = buildTableSpec('member', { ...table, columns: { member_id: { target: 'id' } } }, columns, ['member_id']);
    expect(spec.columns.find((c) => c.source === 'member_id')!.target).toBe('id');
    expect(spec.primaryKey).toEqual(['member_id']);
    expect(spec.shardKey).toBe('member_id');
    expect(() => buildTableSpec('member', { ...table, columns: { ghost: { target: 'g' } } }, columns, ['member_id'])).toThrow(/columns names ghost, which is not a column of the source table/);
  });

  it('refuses what cannot be copied, naming table and column', () => {
    const refused = (f: () => unknown, message: RegExp) => {
      expect(f).toThrow(RefusedError);
      expect(f).toThrow(message);
    };
    refused(() => buildTableSpec('member', table, columns, []), /table member \(source dbo\.Member\): the source table has no primary key/);
    refused(() => buildTableSpec('member', { ...table, shard_key: 'nope' }, columns, ['member_id']), /shard key column nope is not a column of the source table/);
    refused(() => buildTableSpec('member', { ...table, exclude_columns: ['member_id'] }, columns, ['member_id']), /primary key column member_id cannot be excluded/);
    refused(() => buildTableSpec('member', { ...table, exclude_columns: ['ghost'] }, columns, ['member_id']), /exclude_columns names ghost/);
    refused(
      () => buildTableSpec('member', table, catalog([...columns, { column_name: 'area', type_name: 'geography', max_length: -1 }]), ['member_id']),
      /table member \(source dbo\.Member\), column area: SQL Server type geography is not supported/,
    );
    refused(
      () => buildTableSpec('member', table, catalog([{ column_name: 'member_id', type_name: 'float', max_length: 8 }]), ['member_id']),
      /primary key column member_id has type float, which membermig cannot page by/,
    );
  });
});

describe('connection from the mssql:// URL', () => {
  it('reads server, port, database, user and password; TLS on by default; long request timeout', () => {
    const c = mssqlConfig('mssql://app:S3cr%40t!@db.example:1533/MemberDB');
    expect(c).toMatchObject({ server: 'db.example', port: 1533, database: 'MemberDB', user: 'app', password: 'S3cr@t!', requestTimeout: 600_000 });
    expect(c.options).toMatchObject({ encrypt: true, trustServerCertificate: false, useUTC: true, appName: 'membermig' });
  });

  it('encrypt=false|strict, a named instance (no port), sqlserver: scheme, requestTimeout 0', () => {
    expect(mssqlConfig('mssql://u@h/D?encrypt=false').options!.encrypt).toBe(false);
    expect(mssqlConfig('mssql://u@h/D?encrypt=strict').options!.encrypt).toBe('strict');
    const named = mssqlConfig('sqlserver://u@h/D?instance=SQL2019');
    expect(named.port).toBeUndefined();
    expect(named.options!.instanceName).toBe('SQL2019');
    expect(mssqlConfig('mssql://u@h/D').port).toBe(1433);
    expect(mssqlConfig('mssql://u@h/D', { requestTimeoutMs: 0 }).requestTimeout).toBe(0);
  });

  it('trusts a self-signed certificate only when told to, and reads a CA file', () => {
    expect(mssqlConfig('mssql://u@h/D', { trustServerCertificate: true }).options!.trustServerCertificate).toBe(true);
    expect(mssqlConfig('mssql://u@h/D', { tls: { reject_unauthorized: false } }).options!.trustServerCertificate).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'mm-tls-'));
    writeFileSync(join(dir, 'ca.pem'), 'CA-PEM');
    const c = mssqlConfig('mssql://u@h/D', { tls: { ca: join(dir, 'ca.pem'), reject_unauthorized: true } });
    rmSync(dir, { recursive: true, force: true });
    expect(c.options!.cryptoCredentialsDetails).toEqual({ ca: 'CA-PEM' });
    expect(c.options!.trustServerCertificate).toBe(false);
  });

  it('refuses a URL without a database or with another scheme; descriptions never carry the password', () => {
    expect(() => mssqlConfig('mssql://u:p@h:1433/')).toThrow(/must name a database/);
    expect(() => mssqlConfig('mysql://u:p@h/D')).toThrow(/not an mssql/);
    const d = describeMssqlUrl('mssql://app:hunter2secret@db.example:1433/MemberDB');
    expect(d).toBe('db.example:1433/MemberDB');
    expect(d).not.toContain('hunter2');
  });
});

describe('capture instances, as a login without rights on the cdc schema reads them', () => {
  it('asks the documented procedure, not the cdc schema tables', () => {
    expect(CAPTURE_INSTANCES_SQL).toBe('EXEC sys.sp_cdc_help_change_data_capture');
  });

  it('the capture job is ready once it is past every instance start; an instance with no start yet is the newest of all', () => {
    const lsn = (hex: string) => Buffer.from(hex, 'hex');
    const max = lsn('0000002c000000020001');
    expect(captureJobBehind([], max)).toBeNull();
    expect(captureJobBehind([{ capture_instance: 'dbo_member', start_lsn: null }], max)).toBe('capture instance dbo_member has no first LSN yet');
    const started = [
      { capture_instance: 'a', start_lsn: lsn('0000002b000000100001') },
      { capture_instance: 'b', start_lsn: lsn('0000002c000000010001') },
      { capture_instance: 'c', start_lsn: lsn('0000002b0000ff100001') },
    ];
    expect(captureJobBehind(started, max)).toBeNull();
    expect(captureJobBehind(started, lsn('0000002c000000010001'))).toBeNull();
    expect(captureJobBehind(started, lsn('0000002c000000000fff'))).toBe('capture instance b starts at LSN 0000002c000000010001, past the max LSN 0000002c000000000fff');
    expect(captureJobBehind([...started, { capture_instance: 'new_one', start_lsn: null }], max)).toBe('capture instance new_one has no first LSN yet');
  });
});
