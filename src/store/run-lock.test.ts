import type { Pool } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RefusedError } from '../errors.js';
import { createMysqlPool } from '../mysql/connect.js';
import { scratchControlStore } from '../../test/support/scratch-control.js';
import { holdRunLock } from './run-lock.js';

describe('holdRunLock on the real control store', () => {
  const scratch = scratchControlStore('runlock');
  const other = scratchControlStore('runlock2');
  let pool: Pool;
  let secondProcess: Pool;
  let otherStore: Pool;
  beforeAll(async () => {
    pool = await scratch.open();
    secondProcess = createMysqlPool(scratch.url);
    otherStore = await other.open();
  });
  afterAll(async () => {
    await secondProcess?.end();
    await scratch.drop();
    await other.drop();
  });

  it('one holder per kind and control store; released on release, and when its connection goes', async () => {
    const release = await holdRunLock(pool, 'sync.mssql', 'another sync runs');
    await expect(holdRunLock(secondProcess, 'sync.mssql', 'another sync runs')).rejects.toThrow(RefusedError);
    await expect(holdRunLock(secondProcess, 'sync.mssql', 'another sync runs')).rejects.toThrow('another sync runs');
    // Another kind, or another control store on the same server: not held.
    await (await holdRunLock(secondProcess, 'other.kind', 'x'))();
    await (await holdRunLock(otherStore, 'sync.mssql', 'x'))();
    await release();
    const again = await holdRunLock(secondProcess, 'sync.mssql', 'x');
    // A holder that dies (its connection closes) lets the next run in.
    await secondProcess.end();
    secondProcess = createMysqlPool(scratch.url);
    await new Promise((r) => setTimeout(r, 200));
    await (await holdRunLock(pool, 'sync.mssql', 'x'))();
    void again;
  });
});
