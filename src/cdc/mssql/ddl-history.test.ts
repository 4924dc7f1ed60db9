import { describe, expect, it } from 'vitest';
import { buildTableSpec, type CatalogColumn } from '../../source/mssql/reader.js';
import { CdcSchemaChangeError, ddlDecisions, decideDdl, firstStop, parseDdl, readLimit, schemaChangeError, shownDdl, type DdlHistoryRow, type DdlTable } from './ddl-history.js';
import { Lsn } from './lsn.js';
import type { CdcPosition } from './position.js';

const L = (hex: string) => Lsn.parse(hex);

const column = (column_name: string, type_name: string, max_length: number): CatalogColumn => ({
  column_name,
  type_name,
  max_length,
  precision: type_name === 'decimal' ? 18 : 0,
  scale: type_name === 'decimal' ? 2 : 0,
  collation_name: type_name === 'nvarchar' ? 'Chinese_PRC_CI_AS' : null,
  is_nullable: true,
  is_computed: false,
});

/** dbo.Member as sync described it when it started: note_internal is left out by the config. */
const catalog = [column('member_id', 'bigint', 8), column('Name', 'nvarchar', 100), column('points', 'decimal', 9), column('note_internal', 'nvarchar', 400)];
const spec = buildTableSpec('member', { source: 'dbo.Member', target: 'member', shard_key: 'member_id', exclude_columns: ['note_internal'] }, catalog, ['member_id']);
const table: DdlTable = { name: 'member', instance: 'dbo_Member', spec, excludedColumns: ['note_internal', 'vip_audit'] };

/** Sync has applied everything up to this LSN. */
const position: CdcPosition = { lsn: L('0000002b00000c480003'), seqval: null };
const AFTER = '0000002b00000d200005';

/** A row as tedious returns sys.sp_cdc_get_ddl_history's: binary(10) as a Buffer, datetime as a Date (useUTC). */
function historyRow(ddl_command: string, lsn = AFTER, more: Partial<DdlHistoryRow> = {}): DdlHistoryRow {
  return {
    source_schema: 'dbo',
    source_table: 'Member',
    capture_instance: 'dbo_Member',
    ddl_command,
    ddl_lsn: Buffer.from(lsn, 'hex'),
    ddl_time: new Date(Date.UTC(2026, 10, 30, 10, 15, 0, 123)),
    ...more,
  };
}

const decide = (command: string, lsn = AFTER, more: Partial<DdlHistoryRow> = {}) => decideDdl(table, position, historyRow(command, lsn, more));

describe('what a DDL of the legacy table means for sync', () => {
  it('a column added after the position: stop, naming the column and the instance that does not capture it', () => {
    const d = decide('ALTER TABLE dbo.Member ADD vip tinyint NULL');
    expect(d).toMatchObject({ verdict: 'stop', action: { kind: 'add', columns: ['vip'] }, time: '2026-11-30 10:15:00.123', shown: 'ALTER TABLE dbo.Member ADD vip tinyint NULL' });
    expect(d.lsn.toString()).toBe(AFTER);
    expect(d.why).toBe('adds column vip, which capture instance dbo_Member does not capture');
  });

  it('a column added that exclude_columns leaves out: sync goes on; so for a constraint', () => {
    expect(decide('ALTER TABLE dbo.Member ADD vip_audit datetime2 NULL')).toMatchObject({ verdict: 'not-copied', why: 'adds column vip_audit, left out by tables.member.exclude_columns' });
    expect(decide('ALTER TABLE dbo.Member WITH NOCHECK ADD CONSTRAINT ck_points CHECK (points >= 0)')).toMatchObject({ verdict: 'not-copied', why: 'adds no column' });
    expect(decide('ALTER TABLE dbo.Member ADD DEFAULT 0 FOR points')).toMatchObject({ verdict: 'not-copied' });
  });

  it('a column named period is a column (PERIOD is no reserved word); PERIOD FOR SYSTEM_TIME is none', () => {
    expect(decide('ALTER TABLE dbo.Member ADD period tinyint NULL')).toMatchObject({ verdict: 'stop', action: { kind: 'add', columns: ['period'] } });
    expect(decide('ALTER TABLE dbo.Member ADD PERIOD FOR SYSTEM_TIME (valid_from, valid_to)')).toMatchObject({ verdict: 'not-copied', why: 'adds no column' });
  });

  it('several items: commas inside types, defaults and checks do not split them; one column not left out stops', () => {
    const d = decide("ALTER TABLE [dbo].[Member] ADD CONSTRAINT ck CHECK (points > 0, 1), [tier, code] nvarchar(10) NOT NULL DEFAULT N'a,b', vip_audit decimal(10,2)");
    expect(d).toMatchObject({ verdict: 'stop', action: { kind: 'add', columns: ['tier, code', 'vip_audit'] }, why: 'adds column tier, code, which capture instance dbo_Member does not capture' });
  });

  it('a copied column dropped or changed: stop; names compare case-insensitively, quoted or not', () => {
    expect(decide('alter table [dbo].[member] drop column [NAME]')).toMatchObject({ verdict: 'stop', action: { kind: 'drop', names: ['NAME'] }, why: 'drops column NAME, which sync copies: CDC records NULL for it from here on' });
    expect(decide('ALTER TABLE dbo.Member DROP COLUMN IF EXISTS note_internal, Points')).toMatchObject({ verdict: 'stop', why: expect.stringMatching(/^drops column Points,/) });
    expect(decide('ALTER TABLE "dbo"."Member" ALTER COLUMN "Points" decimal(18,4) NOT NULL')).toMatchObject({
      verdict: 'stop',
      action: { kind: 'alter', column: 'Points' },
      why: 'changes column Points, which sync copies, converts and writes as the type it read when it started',
    });
  });

  it('a column sync does not copy dropped or changed: sync goes on', () => {
    expect(decide('ALTER TABLE dbo.Member DROP COLUMN note_internal')).toMatchObject({ verdict: 'not-copied', why: 'drops note_internal, which sync does not copy' });
    expect(decide('ALTER TABLE dbo.Member DROP CONSTRAINT ck_points, COLUMN note_internal')).toMatchObject({ verdict: 'not-copied' });
    expect(decide('ALTER TABLE dbo.Member ALTER COLUMN note_internal nvarchar(max)')).toMatchObject({ verdict: 'not-copied', why: 'changes column note_internal, which sync does not copy' });
  });

  it('a DDL at or before the position was passed: the changes read from here on were made after it', () => {
    expect(decide('ALTER TABLE dbo.Member ADD vip tinyint NULL', '0000002b00000c480002').verdict).toBe('passed');
    expect(decide('ALTER TABLE dbo.Member ADD vip tinyint NULL', '0000002b00000c480003').verdict).toBe('passed');
    // Stopped inside the transaction at that LSN: not all of it is applied, so the DDL is still ahead.
    const inside = decideDdl(table, { lsn: L('0000002b00000c480003'), seqval: L('0000002b00000c480001') }, historyRow('ALTER TABLE dbo.Member ADD vip tinyint NULL', '0000002b00000c480003'));
    expect(inside.verdict).toBe('stop');
  });

  it("a row of another table's instance is not this table's", () => {
    expect(decide('ALTER TABLE dbo.Address ADD vip tinyint NULL', AFTER, { capture_instance: 'dbo_Address', source_table: 'Address' })).toMatchObject({
      verdict: 'other-table',
      why: 'is a DDL of dbo.Address (capture instance dbo_Address)',
    });
    // The same table under another spelling is this table.
    expect(decide('ALTER TABLE DBO.MEMBER ADD vip tinyint NULL', AFTER, { capture_instance: 'DBO_MEMBER', source_schema: 'DBO', source_table: 'MEMBER' }).verdict).toBe('stop');
  });

  it('reads odd quoting, mixed case and comments; a statement it cannot read stops sync', () => {
    expect(parseDdl('/* vip */ aLtEr TaBlE [dbo].[Mem]]ber] -- why\n ADD [vip]]x] bit;')).toEqual({ kind: 'add', columns: ['vip]x'] });
    expect(parseDdl('ALTER TABLE Member ADD "a""b" int, c AS (points * 2)')).toEqual({ kind: 'add', columns: ['a"b', 'c'] });
    expect(parseDdl('ALTER TABLE MemberDB.dbo.Member DROP COLUMN a, b')).toEqual({ kind: 'drop', names: ['a', 'b'] });
    for (const unreadable of [
      "EXEC sp_rename 'dbo.Member.Name', 'FullName', 'COLUMN'",
      'ALTER TABLE dbo.Member SWITCH PARTITION 1 TO dbo.Member_old',
      'ALTER TABLE dbo.Member ADD vip int; ALTER TABLE dbo.Member DROP COLUMN Name',
      'ALTER TABLE dbo.Member ADD [vip int',
      'ALTER TABLE dbo.Member ADD vip decimal(10,2',
      'ALTER TABLE dbo.Member ADD ,vip int',
      '',
    ]) {
      expect(parseDdl(unreadable), unreadable).toEqual({ kind: 'unknown' });
      expect(decide(unreadable)).toMatchObject({ verdict: 'stop', why: 'is a statement membermig cannot read, so it may change columns sync copies' });
    }
  });

  it('shows the statement on one line, without string literals (a default may hold anything) or comments, cut at 200 characters', () => {
    expect(shownDdl("ALTER TABLE dbo.Member\n  ADD token varchar(40) NOT NULL DEFAULT N'hunter2''s key' /* secret: x */ -- y")).toBe("ALTER TABLE dbo.Member ADD token varchar(40) NOT NULL DEFAULT '…'");
    // A quote inside a bracketed name does not start a literal.
    expect(shownDdl("ALTER TABLE t ADD [it's] int DEFAULT 'pw'")).toBe("ALTER TABLE t ADD [it's] int DEFAULT '…'");
    expect(shownDdl("ALTER TABLE t ADD x int DEFAULT 'pw")).toBe('ALTER TABLE t ADD x int DEFAULT …');
    const long = shownDdl('ALTER TABLE dbo.Member ADD ' + 'c int, '.repeat(60) + 'd int');
    expect(long).toHaveLength(200);
    expect(long.endsWith('…')).toBe(true);
  });

  it('orders the history by LSN and stops at the first DDL sync cannot follow', () => {
    const decisions = ddlDecisions(table, position, [
      historyRow('ALTER TABLE dbo.Member ALTER COLUMN Name nvarchar(100)', '0000002b00000f000001'),
      historyRow('ALTER TABLE dbo.Member ADD vip_audit int', '0000002b00000d200001'),
      historyRow('ALTER TABLE dbo.Member ADD vip int', '0000002b00000e000001'),
      historyRow('ALTER TABLE dbo.Member ADD old int', '0000002b000000000001'),
    ]);
    expect(decisions.map((d) => [d.lsn.toString(), d.verdict])).toEqual([
      ['0000002b000000000001', 'passed'],
      ['0000002b00000d200001', 'not-copied'],
      ['0000002b00000e000001', 'stop'],
      ['0000002b00000f000001', 'stop'],
    ]);
    expect(firstStop(decisions)!.lsn.toString()).toBe('0000002b00000e000001');
    expect(firstStop(decisions.slice(0, 2))).toBeNull();
  });

  it('reads up to the last LSN before the DDL, or the max LSN when that comes first', () => {
    const stop = decide('ALTER TABLE dbo.Member ADD vip int', '0000002b00000e000000');
    expect(readLimit(L('0000002b00000f000000'), stop)!.toString()).toBe('0000002b00000dffffff');
    expect(readLimit(L('0000002b00000d000000'), stop)!.toString()).toBe('0000002b00000d000000');
    expect(readLimit(L('0000002b00000f000000'), null)!.toString()).toBe('0000002b00000f000000');
    expect(readLimit(null, stop)).toBeNull();
  });
});

describe('the stop', () => {
  it('names the table, the DDL (without its literals), its LSN and time, where sync stands, and the ways on', () => {
    const stop = decide("ALTER TABLE [dbo].[Member] ADD [vip] tinyint NOT NULL DEFAULT 'pw-123'");
    const e = schemaChangeError(table, stop, { lsn: L('0000002b00000d200004'), seqval: null });
    expect(e).toBeInstanceOf(CdcSchemaChangeError);
    expect(e.message).toBe(
      "table member: legacy's table dbo.Member changed at LSN 0000002b00000d200005 (2026-11-30 10:15:00.123 server time): " +
        `"ALTER TABLE [dbo].[Member] ADD [vip] tinyint NOT NULL DEFAULT '…'" adds column vip, which capture instance dbo_Member does not capture. ` +
        "Sync applied the table's changes up to 0000002b00000d200004, before it, and stops: it cannot apply the later ones unbent. " +
        'To leave vip out, add it to tables.member.exclude_columns and start sync again. To copy it, add it to the shard tables (membermig init --check names what differs), ' +
        'create a capture instance of the table as it is now (sys.sp_cdc_enable_table with a new @capture_instance; at most two per table), set cdc.mssql.capture_instances.member to it, ' +
        'copy the table again (membermig full --restart --tables member: the new instance holds no change from before it was created) and start sync, ' +
        "which goes on from that copy's start; then disable dbo_Member.",
    );
    expect(e.message).not.toContain('pw-123');
  });

  it('a dropped column is dropped from the shards too; a changed one needs a new capture instance', () => {
    const at = { lsn: L('0000002b00000d200004'), seqval: null };
    expect(schemaChangeError(table, decide('ALTER TABLE dbo.Member DROP COLUMN Name'), at).message).toMatch(/Drop it from the shard tables too .* start sync again: it reads legacy's columns afresh/);
    const altered = schemaChangeError(table, decide('ALTER TABLE dbo.Member ALTER COLUMN points decimal(18,4)'), at).message;
    expect(altered).toMatch(/Change the shard tables to match .*; as sync stops here again while it reads dbo_Member, create a capture instance .*set cdc\.mssql\.capture_instances\.member to it, copy the table again \(membermig full --restart --tables member/);
  });
});
