import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lsn } from '../src/cdc/mssql/lsn.js';
import { loadPosition, mssqlCdcStatus, recordedStartLsn, savePosition } from '../src/cdc/mssql/position.js';
import { openControlStore, setupControlStore, type ControlStore } from '../src/store/control.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/** Migration 050 and the direct CDC source's positions, on the real control store. */
describe('direct CDC positions in the control store', () => {
  let env: TestEnv;
  let store: ControlStore;
  beforeAll(async () => {
    env = await createTestEnv();
    const setup = await setupControlStore(env.config);
    expect(setup.applied.map((m) => `${m.version}_${m.name}`)).toContain('50_mssql_cdc');
    store = openControlStore(env.config);
  });
  afterAll(async () => {
    await store?.close();
    await env?.cleanup();
  });

  it('saves and loads a position, inside a transaction and at a transaction boundary', async () => {
    expect(await loadPosition(store.pool, 'dbo_Member')).toBeNull();
    const lsn = Lsn.parse('0000002b00000c480003');
    await savePosition(store.pool, { instance: 'dbo_Member', table: 'member', position: { lsn, seqval: Lsn.parse('0000002b00000c480002'), commandId: 12 }, eventsApplied: 3, lastSourceTsMs: 1709370000123 });
    const inside = await loadPosition(store.pool, 'dbo_Member');
    expect([inside!.lsn.toString(), inside!.seqval!.toString(), inside!.commandId]).toEqual(['0000002b00000c480003', '0000002b00000c480002', 12]);
    await savePosition(store.pool, { instance: 'dbo_Member', table: 'member', position: { lsn: Lsn.parse('0000002b00000f000001'), seqval: null }, eventsApplied: 2, lastSourceTsMs: null });
    const boundary = await loadPosition(store.pool, 'dbo_Member');
    expect(boundary!.lsn.toString()).toBe('0000002b00000f000001');
    expect(boundary!.seqval).toBeNull();
    expect(boundary!.commandId).toBeNull();
    const [rows] = await store.pool.query('SELECT events_applied, last_source_ts_ms FROM cdc_lsn_positions WHERE capture_instance = ?', ['dbo_Member']);
    expect(rows).toEqual([{ events_applied: '5', last_source_ts_ms: '1709370000123' }]);
    const status = await mssqlCdcStatus(store.pool, 1709370060123);
    expect(status).toEqual([
      { instance: 'dbo_Member', table: 'member', lastLsn: '0000002b00000f000001', lastSeqval: null, eventsApplied: 5, lagSeconds: 60, updatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
    ]);
  });

  it('starts from the lowest start position that full recorded', async () => {
    expect(await recordedStartLsn(store.pool)).toBeNull();
    await store.pool.query("INSERT INTO jobs (id, kind, name, state) VALUES (901, 'full', 'a', 'done'), (902, 'full', 'b', 'done')");
    await store.pool.query(
      "INSERT INTO cdc_start_positions (job_id, source_kind, position) VALUES (901, 'mssql', JSON_OBJECT('lsn', '0000002b00000d200005')), (902, 'mssql', JSON_OBJECT('lsn', '0000002b00000c480003'))",
    );
    expect((await recordedStartLsn(store.pool))!.toString()).toBe('0000002b00000c480003');
  });

  it('dead_letters holds a direct-CDC position lsn:seqval (41 chars)', async () => {
    const offset = '0000002b00000c480003:0000002b00000c480002';
    await store.pool.query("INSERT INTO dead_letters (source, offset_no, table_name, reason) VALUES ('dbo_Member', ?, 'member', 'test')", [offset]);
    const [rows] = await store.pool.query('SELECT offset_no FROM dead_letters WHERE source = ?', ['dbo_Member']);
    expect(rows).toEqual([{ offset_no: offset }]);
  });
});
