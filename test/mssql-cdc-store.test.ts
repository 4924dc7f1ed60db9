import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lsn } from '../src/cdc/mssql/lsn.js';
import { openDeadLetters, recordDeadLetters } from '../src/cdc/deadletters.js';
import { loadPosition, markCaughtUp, mssqlCdcStatus, recordedStarts, savePosition, startLsnOf } from '../src/cdc/mssql/position.js';
import { checkGates } from '../src/gray/gates.js';
import { collectStatus } from '../src/store/status.js';
import { openControlStore, setupControlStore, type ControlStore } from '../src/store/control.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/** Migration 050 and the direct CDC source's positions, on the real control store. */
describe('direct CDC positions in the control store', () => {
  let env: TestEnv;
  let store: ControlStore;
  beforeAll(async () => {
    env = await createTestEnv();
    const setup = await setupControlStore(env.config);
    expect(setup.applied.map((m) => `${m.version}_${m.name}`)).toEqual(expect.arrayContaining(['50_mssql_cdc', '60_direct_cdc_lag']));
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
    const status = await mssqlCdcStatus(store.pool);
    const [now] = await store.pool.query<RowDataPacket[]>('SELECT UNIX_TIMESTAMP(NOW(6)) * 1000 AS ms');
    const lag = (Number(now[0]!.ms) - 1709370000123) / 1000;
    expect(status).toEqual([
      { instance: 'dbo_Member', table: 'member', lastLsn: '0000002b00000f000001', lastSeqval: null, eventsApplied: 5, lagSeconds: expect.any(Number), sourceAheadSeconds: null, updatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
    ]);
    // Now minus the source time of the last change, by the control server's clock.
    expect(Math.abs(status[0]!.lagSeconds! - lag)).toBeLessThanOrEqual(1);
  });

  it('starts a table from the lowest start position of the full jobs that copied it', async () => {
    expect(startLsnOf(await recordedStarts(store.pool), 'member')).toBeNull();
    await store.pool.query(
      `INSERT INTO jobs (id, kind, name, state, options) VALUES (901, 'full', 'member', 'done', '{"tables": ["member"]}'),
         (902, 'full', 'member', 'done', '{"tables": ["member"]}'), (903, 'full', 'address', 'done', '{"tables": ["address"]}')`,
    );
    await store.pool.query(
      `INSERT INTO cdc_start_positions (job_id, source_kind, position) VALUES (901, 'mssql', JSON_OBJECT('lsn', '0000002b00000d200005')),
         (902, 'mssql', JSON_OBJECT('lsn', '0000002b00000c480003')), (903, 'mssql', JSON_OBJECT('lsn', '0000002b00000f000001'))`,
    );
    const starts = await recordedStarts(store.pool);
    expect(startLsnOf(starts, 'member')!.toString()).toBe('0000002b00000c480003');
    // address's capture instance may have been enabled after member's copy: its own job's start, not member's.
    expect(startLsnOf(starts, 'address')!.toString()).toBe('0000002b00000f000001');
    // A table no job copied: the lowest of all.
    expect(startLsnOf(starts, 'other')!.toString()).toBe('0000002b00000c480003');
  });

  it('a direct-CDC dead letter (lsn:seqval, no partition) is recorded once however often its page is replayed, and listed in LSN order', async () => {
    const poison = (offset: string, reason: string) => ({ origin: { source: 'dbo_Member', offset }, table: 'member', messageKey: Buffer.from(offset), rawValue: null, reason });
    const later = '0000002b00000f000001:0000002b00000f000001';
    const earlier = '0000002b00000c480003:0000002b00000c480002';
    await recordDeadLetters(store.pool, [poison(later, 'first try')]);
    await recordDeadLetters(store.pool, [poison(earlier, 'bad value')]);
    await recordDeadLetters(store.pool, [poison(later, 'replayed')]);
    const open = (await openDeadLetters(store.pool)).filter((d) => d.source === 'dbo_Member');
    expect(open.map((d) => [d.offset, d.partition, d.reason])).toEqual([
      [earlier, null, 'bad value'],
      [later, null, 'replayed'],
    ]);
  });

  it('lag of an idle instance counts from the last poll that found nothing new; the gray gate reads it', async () => {
    const config = { ...env.config, cdc: { mssql: { capture_instances: { member: 'dbo_Member' }, poll_interval_ms: 1000 } } };
    const lagGate = async () => (await checkGates(store.pool, config, 'member')).find((g) => g.gate === 'sync_lag')!;
    await store.pool.query('DELETE FROM cdc_lsn_positions');
    expect((await lagGate()).message).toMatch(/no direct CDC sync has run yet/);
    // Last change applied an hour ago (source time), never caught up since: an hour behind.
    await savePosition(store.pool, { instance: 'dbo_Member', table: 'member', position: { lsn: Lsn.parse('0000002b00000f000001'), seqval: null }, eventsApplied: 1, lastSourceTsMs: Date.now() - 3_600_000 });
    expect(await lagGate()).toMatchObject({ ok: false, message: expect.stringMatching(/^sync lag 360\d s \(worst capture instance dbo_Member, at LSN 0000002b00000f000001\)/) });
    await markCaughtUp(store.pool, 'dbo_Member', 'member', { lsn: Lsn.parse('0000002b00000f000001'), seqval: null });
    const [status] = await mssqlCdcStatus(store.pool);
    expect(status!.lagSeconds).toBeLessThanOrEqual(1);
    expect(await lagGate()).toMatchObject({ ok: true, message: expect.stringMatching(/^sync lag [01] s/) });
    const overall = await collectStatus(config);
    expect(overall.perTable.find((t) => t.table === 'member')!.sync).toMatchObject({ lastLsn: '0000002b00000f000001', appliedEvents: 1, lagEvents: null });
    expect(overall.sync!.captureInstances.map((i) => i.instance)).toEqual(['dbo_Member']);
    // A first poll that finds nothing creates the row at the start position.
    await markCaughtUp(store.pool, 'dbo_Other', 'other', { lsn: Lsn.parse('0000002b00000c480003'), seqval: null });
    expect((await loadPosition(store.pool, 'dbo_Other'))!.lsn.toString()).toBe('0000002b00000c480003');
  });
});
