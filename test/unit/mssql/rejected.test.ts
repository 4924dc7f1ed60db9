import { describe, expect, it } from 'vitest';
import { UnrepresentableValueError } from '../../../src/source/mssql/reader.js';
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
});
