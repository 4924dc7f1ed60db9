import type { Pool } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RefusedError } from '../../errors.js';
import { scratchControlStore } from '../../../test/support/scratch-control.js';
import { Lsn } from './lsn.js';
import { CdcWindowError, firstPosition, loadPosition, moveInstancePosition, positionAfterRecopy, previousInstancePosition, readWindow, recopiedStartOf, savePosition, startLsnOf, type InstancePosition } from './position.js';

const L = (hex: string) => Lsn.parse(hex);

/**
 * A schema change: dbo_Member_v2 is created at S2 while dbo_Member (v1) is read; `full` recorded
 * its start long before. v1 is read past S2, then the config switches the table to v2.
 */
const fullStart = L('0000002b000000100000');
const s2 = L('0000002b000000500000');
const max = L('0000002b000000900000');
const v1At = (lsn: Lsn, seqval: Lsn | null = null, commandId: number | null = null): InstancePosition => ({ instance: 'dbo_Member', position: { lsn, seqval, commandId } });

describe('first position of a capture instance switched to after a schema change', () => {
  it('goes on from where the old instance stopped, not from the start of full (which predates it)', () => {
    const previous = v1At(L('0000002b000000600000'));
    const position = firstPosition('member', 'dbo_Member_v2', { previous, startLsn: fullStart, minLsn: s2 });
    expect(position).toEqual(previous.position);
    const window = readWindow('dbo_Member_v2', position, s2, max)!;
    expect([window.from.toString(), window.to.toString()]).toEqual(['0000002b000000600001', max.toString()]);
    // What it did before: the start of full lies before v2's window, and every start failed.
    expect(() => readWindow('dbo_Member_v2', { lsn: fullStart, seqval: null }, s2, max)).toThrow(CdcWindowError);
  });

  it('old instance applied up to the LSN just before the new one starts: the first read is the new one’s first change', () => {
    const position = firstPosition('member', 'dbo_Member_v2', { previous: v1At(L('0000002b0000004fffff')), startLsn: fullStart, minLsn: s2 });
    expect(readWindow('dbo_Member_v2', position, s2, max)!.from.toString()).toBe(s2.toString());
  });

  it('old instance stopped inside a transaction the new one holds: resumes after that row', () => {
    const inside = v1At(s2, L('0000002b000000500003'), 7);
    const position = firstPosition('member', 'dbo_Member_v2', { previous: inside, startLsn: fullStart, minLsn: s2 }, 'table');
    expect(readWindow('dbo_Member_v2', position, s2, max, 'table')!.after).toEqual({ lsn: s2, seqval: L('0000002b000000500003'), commandId: 7 });
  });

  it('refuses when the old instance was not read up to the new one’s start: those changes are only in the old one', () => {
    const early = () => firstPosition('member', 'dbo_Member_v2', { previous: v1At(L('0000002b000000300000')), startLsn: fullStart, minLsn: s2 });
    expect(early).toThrow(CdcWindowError);
    expect(early).toThrow(
      /table member: capture instance dbo_Member_v2 holds changes from 0000002b000000500000 on, but dbo_Member was applied only up to 0000002b000000300000.*Set cdc\.mssql\.capture_instances\.member back to dbo_Member/,
    );
  });

  it('refuses when cleanup of the new instance passed where the old one stopped', () => {
    const cleaned = L('0000002b000000700000');
    expect(() => firstPosition('member', 'dbo_Member_v2', { previous: v1At(L('0000002b000000600000')), startLsn: fullStart, minLsn: cleaned })).toThrow(/cleanup removed them/);
    // A mid-transaction position needs its own LSN still held.
    expect(() => firstPosition('member', 'dbo_Member_v2', { previous: v1At(s2, s2), startLsn: fullStart, minLsn: s2.increment() })).toThrow(CdcWindowError);
  });

  it('refuses a missing new instance (min 0x00…00)', () => {
    expect(() => firstPosition('member', 'dbo_Member_v2', { previous: v1At(L('0000002b000000600000')), startLsn: fullStart, minLsn: Lsn.ZERO })).toThrow(/does not exist/);
  });

  it('without an earlier instance, starts after the start of full; without that either, refuses', () => {
    expect(firstPosition('member', 'dbo_Member', { previous: null, startLsn: fullStart, minLsn: L('0000002b000000000001') })).toEqual({ lsn: fullStart, seqval: null });
    expect(() => firstPosition('member', 'dbo_Member', { previous: null, startLsn: null, minLsn: s2 })).toThrow(RefusedError);
  });
});

/** The positions of a switch in a real control store (a scratch database on the test MariaDB server). */
describe('the position moves with the switch', () => {
  const store = scratchControlStore('cdcpos');
  let pool: Pool;

  beforeAll(async () => {
    pool = await store.open();
  });
  afterAll(() => store.drop());

  it('finds the furthest position of the table under another instance, and moves it to the new one', async () => {
    const save = (instance: string, table: string, lsn: string, seqval: string | null = null) =>
      savePosition(pool, { instance, table, position: { lsn: L(lsn), seqval: seqval ? L(seqval) : null, commandId: seqval ? 3 : null }, eventsApplied: 5, lastSourceTsMs: null });
    await save('dbo_Member_old', 'member', '0000002b000000200000');
    await save('dbo_Member', 'member', '0000002b000000600000', '0000002b000000600002');
    await save('dbo_Other', 'other', '0000002b000000900000');
    expect(await previousInstancePosition(pool, 'member', 'dbo_Member')).toEqual({ instance: 'dbo_Member_old', position: { lsn: L('0000002b000000200000'), seqval: null, commandId: null } });
    const previous = await previousInstancePosition(pool, 'member', 'dbo_Member_v2');
    expect(previous).toEqual({ instance: 'dbo_Member', position: { lsn: L('0000002b000000600000'), seqval: L('0000002b000000600002'), commandId: 3 } });
    await moveInstancePosition(pool, 'dbo_Member', 'dbo_Member_v2');
    expect(await loadPosition(pool, 'dbo_Member')).toBeNull();
    expect(await loadPosition(pool, 'dbo_Member_v2')).toEqual(previous!.position);
    const [rows] = await pool.query('SELECT table_name, events_applied FROM cdc_lsn_positions WHERE capture_instance = ?', ['dbo_Member_v2']);
    expect(rows).toEqual([{ table_name: 'member', events_applied: '5' }]);
  });
});

describe('a sync that cleanup left behind goes on from a later full --restart of the table', () => {
  const job = (id: number, lsn: string, tables: string[] | null, emptied = false) => ({ id, lsn: L(lsn), tables, emptied });

  it('startLsnOf leaves out the copies a later --restart replaced, table by table', () => {
    const starts = [job(1, '0000001000000000000a', ['member', 'address']), job(2, '0000002000000000000a', ['member'], true)];
    // member was emptied and copied again by job 2: job 1's older start no longer counts for it.
    expect(startLsnOf(starts, 'member')?.toString()).toBe('0000002000000000000a');
    // address was not: job 1 still counts.
    expect(startLsnOf(starts, 'address')?.toString()).toBe('0000001000000000000a');
    // A --restart not yet emptied (stopped before) replaces nothing.
    expect(startLsnOf([starts[0]!, job(2, '0000002000000000000a', ['member'], false)], 'member')?.toString()).toBe('0000001000000000000a');
    // A job whose tables are not known counts for every table, and is never replaced.
    expect(startLsnOf([job(1, '0000000500000000000a', null), starts[1]!], 'member')?.toString()).toBe('0000000500000000000a');
  });

  it('recopiedStartOf: only the start of a copy into emptied tables can replace a saved position', () => {
    const first = job(1, '0000001000000000000a', ['member', 'address']);
    const restart = job(2, '0000002000000000000a', ['member'], true);
    expect(recopiedStartOf([first, restart], 'member')?.toString()).toBe('0000002000000000000a');
    // address was never copied into emptied tables: its first copy may have gone over rows sync wrote (deleted ones too).
    expect(recopiedStartOf([first, restart], 'address')).toBeNull();
    expect(recopiedStartOf([first], 'member')).toBeNull();
    // A job of unknown tables still counts for member, and it emptied nothing.
    expect(recopiedStartOf([job(0, '0000000500000000000a', null), first, restart], 'member')).toBeNull();
  });

  it('positionAfterRecopy: only a saved position behind the window gives way, and only to a start the window holds', () => {
    const saved = { lsn: L('0000001000000000000a'), seqval: null };
    const restart = L('0000002000000000000a');
    const min = L('0000001800000000000a');
    expect(positionAfterRecopy(saved, restart, min)).toEqual({ lsn: restart, seqval: null });
    // In the window: the saved position stands (replaying from it is harmless).
    expect(positionAfterRecopy(saved, restart, L('0000000800000000000a'))).toBeNull();
    // No later copy, or one older than the saved position: the window check refuses as before.
    expect(positionAfterRecopy(saved, null, min)).toBeNull();
    expect(positionAfterRecopy({ lsn: L('0000003000000000000a'), seqval: null }, restart, L('0000004000000000000a'))).toBeNull();
    // Cleanup passed the copy's start too: nothing holds the changes after it.
    expect(positionAfterRecopy(saved, restart, L('0000002800000000000a'))).toBeNull();
    // 0x00…00 (instance missing, or no rights): never a reason to move.
    expect(positionAfterRecopy(saved, restart, Lsn.ZERO)).toBeNull();
  });
});
