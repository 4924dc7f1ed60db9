import { describe, expect, it } from 'vitest';
import { mssqlTypeMap } from '../../../src/rows/mssql/typemap.js';
import type { TableSpec } from '../../../src/rows/types.js';
import { convertMssqlRow, UnrepresentableValueError } from '../../../src/source/mssql/reader.js';
import { UnrepresentableError } from '../../../src/source/reader.js';

describe('a SQL Server value the target cannot hold (rows.on_unrepresentable: fail)', () => {
  it('is the UnrepresentableError that full stops the whole run on, as for a MySQL source, its key in key order', () => {
    const e = new UnrepresentableValueError({ table: 'member', key: { tenant: '7', member_id: '42' }, column: 'born', value: '0001-01-01', reason: 'year 1 is before MySQL DATE range' });
    // copy/run.ts stops every worker on `instanceof UnrepresentableError`; before, a SQL Server
    // source's error failed only its chunk and the copy went on.
    expect(e).toBeInstanceOf(UnrepresentableError);
    expect(e.rejected).toEqual({ table: 'member', key: ['7', '42'], column: 'born', value: '0001-01-01', reason: 'year 1 is before MySQL DATE range' });
    expect(e.message).toBe(
      'table member, row {"tenant":"7","member_id":"42"}, column born: year 1 is before MySQL DATE range (set rows.on_unrepresentable: record to record such values and go on)',
    );
  });

  it('every value of a row the target cannot hold is reported, not only the first (as for a MySQL source)', () => {
    const types = [{ dataType: 'int' }, { dataType: 'date' }, { dataType: 'datetime2', scale: 7 }, { dataType: 'nvarchar', length: 10 }];
    const spec: TableSpec = {
      name: 'member',
      sourceSchema: 'dbo',
      sourceTable: 'member',
      target: 'member',
      primaryKey: ['member_id'],
      shardKey: 'member_id',
      columns: ['member_id', 'born', 'seen', 'name'].map((source, i) => ({ source, target: source, sourceType: types[i]!, targetType: '', nullable: i > 0 })),
    };
    const conversions = spec.columns.map((c) => mssqlTypeMap.conversion(c.sourceType, c.source));
    const { row, rejected } = convertMssqlRow(spec, conversions, { c0: '42', c1: '0001-01-01', c2: '2024-01-02 03:04:05.1234567', c3: 'Ann' }, ['42']);
    expect(rejected.map((r) => [r.column, r.value])).toEqual([
      ['born', '0001-01-01'],
      ['seen', '2024-01-02 03:04:05.1234567'],
    ]);
    expect(rejected.every((r) => r.table === 'member' && r.key.member_id === '42')).toBe(true);
    expect(row).toEqual(['42', null, null, 'Ann']);
    expect(convertMssqlRow(spec, conversions, { c0: '7', c1: '2024-01-02', c2: null, c3: null }, ['7'])).toEqual({ row: ['7', '2024-01-02', null, null], rejected: [] });
  });
});
