import { describe, expect, it } from 'vitest';
import { hashCanonical } from '../rows/canonical.js';
import type { TableSpec } from '../rows/types.js';
import { mssqlChecksumQuery, mssqlDigest } from './mssql.js';

const spec: TableSpec = {
  name: 'member',
  sourceSchema: 'dbo',
  sourceTable: 'Member',
  target: 'member',
  primaryKey: ['TenantId', 'MemberId'],
  shardKey: 'MemberId',
  columns: [
    { source: 'TenantId', target: 'tenant_id', sourceType: { dataType: 'int' }, targetType: 'INT', nullable: false },
    { source: 'MemberId', target: 'member_id', sourceType: { dataType: 'bigint' }, targetType: 'BIGINT', nullable: false },
    { source: 'Name', target: 'name', sourceType: { dataType: 'nvarchar', length: 50 }, targetType: 'VARCHAR(50)', nullable: true },
    { source: 'Joined', target: 'joined', sourceType: { dataType: 'datetime2', scale: 7 }, targetType: 'DATETIME(6)', nullable: true },
  ],
};

describe('SQL Server checksum pushdown (T-SQL text; no SQL Server here to run it)', () => {
  it('emits HASHBYTES MD5 over the canonical bytes, exact sums of two 32-bit halves, the key range bound as the reader binds it', () => {
    const q = mssqlChecksumQuery(spec, { lower: ['1', '100'], upper: ['1', '200'] })!;
    expect(q.text).toBe(
      'SELECT COUNT_BIG(*) AS n, ISNULL(SUM(CAST(SUBSTRING(h, 1, 4) AS bigint)), 0) AS hi, ISNULL(SUM(CAST(SUBSTRING(h, 5, 4) AS bigint)), 0) AS lo\n' +
        "FROM (SELECT HASHBYTES('MD5', CAST(CONVERT(varchar(20), [TenantId]) AS varbinary(max)) + 0xFF + CAST(CONVERT(varchar(20), [MemberId]) AS varbinary(max)) + 0xFF + " +
        'ISNULL(CAST(CAST(CAST([Name] AS nvarchar(max)) COLLATE Latin1_General_100_BIN2_UTF8 AS varchar(max)) AS varbinary(max)), 0xFE) + 0xFF + ' +
        'ISNULL(CAST(LEFT(CONVERT(varchar(27), [Joined], 121), 26) AS varbinary(max)), 0xFE)) AS h\nFROM [dbo].[Member]\n' +
        'WHERE (([TenantId] > @l0) OR ([TenantId] = @l0 AND [MemberId] > CAST(@l1 AS bigint)))\n' +
        '  AND (([TenantId] < @u0) OR ([TenantId] = @u0 AND [MemberId] <= CAST(@u1 AS bigint)))) AS x',
    );
    // bigint keys travel as text and are cast by SQL Server: no 64-bit value passes through a JS number.
    expect(q.params).toEqual([
      { name: 'l0', type: 'int', value: 1 },
      { name: 'l1', type: 'nvarchar', value: '100' },
      { name: 'u0', type: 'int', value: 1 },
      { name: 'u1', type: 'nvarchar', value: '200' },
    ]);
    expect(mssqlChecksumQuery(spec, { lower: null, upper: null })!.text).toMatch(/FROM \[dbo\]\.\[Member\]\) AS x$/);
  });

  it('hi·2^32 + lo is the sum of the 64-bit MD5 prefixes, as MySQL sums them', () => {
    const hashes = ['a', 'b', 'c'].map((s) => hashCanonical('md5', Buffer.from(s)));
    const hi = hashes.reduce((s, h) => s + (h >> 32n), 0n);
    const lo = hashes.reduce((s, h) => s + (h & 0xffffffffn), 0n);
    expect(mssqlDigest(hi.toString(), lo.toString())).toBe(hashes.reduce((s, h) => s + h, 0n));
  });

  it('leaves a table with a column of no exact T-SQL form (float) to the streaming path', () => {
    const withFloat: TableSpec = { ...spec, columns: [...spec.columns, { source: 'Score', target: 'score', sourceType: { dataType: 'float' }, targetType: 'DOUBLE', nullable: true }] };
    expect(mssqlChecksumQuery(withFloat, { lower: null, upper: null })).toBeUndefined();
  });
});
