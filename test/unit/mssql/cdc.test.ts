import { describe, expect, it } from 'vitest';
import { mapChanges, Operation, type CdcTable, type ChangeRow } from '../../../src/cdc/mssql/events.js';
import { Lsn } from '../../../src/cdc/mssql/lsn.js';
import { CdcWindowError, checkPageStillInWindow, nextFrom, positionAfterPage, readWindow } from '../../../src/cdc/mssql/position.js';
import { CAPTURED_COLUMNS_SQL, changesQuery, commitTimeMs, DDL_HISTORY_SQL, MIN_LSN_SQL, TIME_ZONE_SQL } from '../../../src/cdc/mssql/tsql.js';
import { mssqlTypeMap } from '../../../src/rows/mssql/typemap.js';
import { buildTableSpec, type CatalogColumn } from '../../../src/source/mssql/reader.js';

const L = (hex: string) => Lsn.parse(hex);

describe('changes query', () => {
  it('reads all update old between two LSNs, in log order, with commit time in UTC ms', () => {
    const q = changesQuery({ instance: 'dbo_Member', mode: 'function', columns: ['[member_id]', 'CAST([points] AS varchar(50))'], from: L('0000002b00000c480004'), to: L('0000002b00000f000003'), after: null, limit: 5000 });
    expect(q.text).toBe(
      'SELECT TOP (@limit) __$start_lsn AS [__start_lsn], __$seqval AS [__seqval], __$operation AS [__operation], ' +
        "DATEDIFF_BIG(millisecond, '19700101', DATEADD(minute, -DATEPART(TZOFFSET, SYSDATETIMEOFFSET()), sys.fn_cdc_map_lsn_to_time(__$start_lsn))) AS [__ts_ms], " +
        '[member_id] AS [c0], CAST([points] AS varchar(50)) AS [c1]\n' +
        "FROM cdc.[fn_cdc_get_all_changes_dbo_Member](@from_lsn, @to_lsn, N'all update old')\n" +
        'ORDER BY __$start_lsn, __$seqval, __$operation',
    );
    expect(q.params.map((p) => [p.name, p.type, Buffer.isBuffer(p.value) ? p.value.toString('hex') : p.value])).toEqual([
      ['limit', 'int', 5000],
      ['from_lsn', 'lsn', '0000002b00000c480004'],
      ['to_lsn', 'lsn', '0000002b00000f000003'],
    ]);
  });

  it('converts commit times with the offset of their own date when the server names its time zone', () => {
    const q = changesQuery({ instance: 'dbo_Member', mode: 'function', columns: [], from: L('0000002b00000c480004'), to: L('0000002b00000f000003'), after: null, limit: 10, timeZone: 'W. Europe Standard Time' });
    expect(q.text).toContain(
      "DATEDIFF_BIG(millisecond, '19700101', CONVERT(datetime2(3), (sys.fn_cdc_map_lsn_to_time(__$start_lsn) AT TIME ZONE @time_zone) AT TIME ZONE 'UTC')) AS [__ts_ms]",
    );
    expect(q.text).not.toContain('SYSDATETIMEOFFSET');
    expect(q.params.at(-1)).toEqual({ name: 'time_zone', type: 'nvarchar', value: 'W. Europe Standard Time' });
    // Unknown zone (SQL Server before 2022): today's offset, and no parameter for it.
    const plain = changesQuery({ instance: 'dbo_Member', mode: 'function', columns: [], from: L('0000002b00000c480004'), to: L('0000002b00000f000003'), after: null, limit: 10, timeZone: null });
    expect(plain.text).toContain(`${commitTimeMs(false)} AS [__ts_ms]`);
    expect(plain.params.map((p) => p.name)).not.toContain('time_zone');
  });

  it('asks the server for its time zone in a way an older server answers with NULL, and takes only a zone AT TIME ZONE knows', () => {
    expect(TIME_ZONE_SQL).toBe(
      "BEGIN TRY EXEC (N'SELECT z.name AS time_zone FROM sys.time_zone_info AS z WHERE z.name = CURRENT_TIMEZONE_ID()') END TRY\n" +
        'BEGIN CATCH SELECT CAST(NULL AS nvarchar(128)) AS time_zone END CATCH',
    );
  });

  it('resumes inside a transaction after (lsn, seqval), and quotes the instance name', () => {
    const q = changesQuery({ instance: 'x]y', mode: 'function', columns: [], from: L('0000002b00000c480003'), to: L('0000002b00000f000003'), after: { lsn: L('0000002b00000c480003'), seqval: L('0000002b00000c480002'), commandId: null }, limit: 10 });
    expect(q.text).toContain("FROM cdc.[fn_cdc_get_all_changes_x]]y](@from_lsn, @to_lsn, N'all update old')\nWHERE (__$start_lsn > @after_lsn OR (__$start_lsn = @after_lsn AND __$seqval > @after_seqval))\nORDER BY");
    expect(q.params.map((p) => p.name)).toEqual(['limit', 'from_lsn', 'to_lsn', 'after_lsn', 'after_seqval']);
  });

  it('reads one change again by (lsn, seqval) to replay a dead letter, in either mode', () => {
    const at = { from: L('0000002b00000c480003'), to: L('0000002b00000c480003'), after: null, onlySeqval: L('0000002b00000c480002'), limit: 2 };
    const fn = changesQuery({ instance: 'dbo_Member', mode: 'function', columns: ['[member_id]'], ...at });
    expect(fn.text).toContain("FROM cdc.[fn_cdc_get_all_changes_dbo_Member](@from_lsn, @to_lsn, N'all update old')\nWHERE __$seqval = @only_seqval\nORDER BY");
    const table = changesQuery({ instance: 'dbo_Member', mode: 'table', columns: ['[member_id]'], ...at });
    expect(table.text).toContain('FROM cdc.[dbo_Member_CT]\nWHERE __$start_lsn >= @from_lsn AND __$start_lsn <= @to_lsn\n  AND __$seqval = @only_seqval\nORDER BY');
    expect(table.params.map((p) => [p.name, Buffer.isBuffer(p.value) ? p.value.toString('hex') : p.value])).toEqual([
      ['limit', 2],
      ['from_lsn', '0000002b00000c480003'],
      ['to_lsn', '0000002b00000c480003'],
      ['only_seqval', '0000002b00000c480002'],
    ]);
  });

  it('table mode reads the change table in (start_lsn, command_id, seqval, operation) order and resumes by all three', () => {
    const first = changesQuery({ instance: 'dbo_Member', mode: 'table', columns: ['[member_id]'], from: L('0000002b00000c480004'), to: L('0000002b00000f000003'), after: null, limit: 100 });
    expect(first.text).toBe(
      'SELECT TOP (@limit) __$start_lsn AS [__start_lsn], __$seqval AS [__seqval], __$operation AS [__operation], __$command_id AS [__command_id], ' +
        "DATEDIFF_BIG(millisecond, '19700101', DATEADD(minute, -DATEPART(TZOFFSET, SYSDATETIMEOFFSET()), sys.fn_cdc_map_lsn_to_time(__$start_lsn))) AS [__ts_ms], " +
        '[member_id] AS [c0]\n' +
        'FROM cdc.[dbo_Member_CT]\n' +
        'WHERE __$start_lsn >= @from_lsn AND __$start_lsn <= @to_lsn\n' +
        'ORDER BY __$start_lsn, __$command_id, __$seqval, __$operation',
    );
    const after = { lsn: L('0000002b00000c480003'), seqval: L('0000002b00000c480002'), commandId: 7 };
    const resumed = changesQuery({ instance: 'dbo_Member', mode: 'table', columns: [], from: L('0000002b00000c480003'), to: L('0000002b00000f000003'), after, limit: 100 });
    expect(resumed.text).toContain(
      'WHERE __$start_lsn >= @from_lsn AND __$start_lsn <= @to_lsn\n' +
        '  AND (__$start_lsn > @after_lsn OR (__$start_lsn = @after_lsn AND (__$command_id > @after_command_id OR (__$command_id = @after_command_id AND __$seqval > @after_seqval))))\n',
    );
    expect(resumed.params.at(-1)).toEqual({ name: 'after_command_id', type: 'int', value: 7 });
    expect(() => changesQuery({ instance: 'x', mode: 'table', columns: [], from: after.lsn, to: after.lsn, after: { ...after, commandId: null }, limit: 1 })).toThrow(/command id/);
  });

  it('asks for the window low end per instance', () => {
    expect(MIN_LSN_SQL).toBe('SELECT sys.fn_cdc_get_min_lsn(@instance) AS min_lsn');
  });

  it('asks for the captured columns of an instance through the documented procedure, the instance bound as a parameter', () => {
    expect(CAPTURED_COLUMNS_SQL).toBe('EXEC sys.sp_cdc_get_captured_columns @capture_instance = @instance');
  });

  it('asks for the DDL history of an instance through the documented procedure, the instance bound as a parameter', () => {
    expect(DDL_HISTORY_SQL).toBe('EXEC sys.sp_cdc_get_ddl_history @capture_instance = @instance');
  });
});

describe('window and position', () => {
  const min = L('0000002b000000100001');
  const max = L('0000002b00000f000003');

  it('starts after the saved LSN, or at it when stopped inside a transaction', () => {
    expect(nextFrom({ lsn: L('0000002b00000c480003'), seqval: null }).from.toString()).toBe('0000002b00000c480004');
    const inside = nextFrom({ lsn: L('0000002b00000c480003'), seqval: L('0000002b00000c480001') });
    expect(inside.from.toString()).toBe('0000002b00000c480003');
    expect(inside.after!.seqval.toString()).toBe('0000002b00000c480001');
    const tableInside = nextFrom({ lsn: L('0000002b00000c480003'), seqval: L('0000002b00000c480001'), commandId: 4 }, 'table');
    expect(tableInside.after!.commandId).toBe(4);
  });

  it('re-reads the whole transaction when the saved point was taken in the other order (replay is idempotent)', () => {
    const functionPoint = { lsn: L('0000002b00000c480003'), seqval: L('0000002b00000c480001'), commandId: null };
    const tablePoint = { ...functionPoint, commandId: 4 };
    for (const [p, mode] of [[functionPoint, 'table'], [tablePoint, 'function']] as const) {
      const n = nextFrom(p, mode);
      expect([n.from.toString(), n.after]).toEqual(['0000002b00000c480003', null]);
    }
  });

  it('reads from the next LSN up to max; nothing when caught up', () => {
    const w = readWindow('dbo_Member', { lsn: L('0000002b00000c480003'), seqval: null }, min, max)!;
    expect([w.from.toString(), w.to.toString(), w.after]).toEqual(['0000002b00000c480004', '0000002b00000f000003', null]);
    expect(readWindow('dbo_Member', { lsn: max, seqval: null }, min, max)).toBeNull();
    expect(readWindow('dbo_Member', { lsn: max, seqval: null }, min, null)).toBeNull();
  });

  it('checks the window again after a page: cleanup may have deleted rows of it while they were read', () => {
    const w = readWindow('dbo_Member', { lsn: L('0000002b000000100000'), seqval: null }, L('0000002b000000100001'), max)!;
    // The lowest LSN moved, but not past the page's first one: every row of the page was still there.
    expect(() => checkPageStillInWindow('dbo_Member', w, L('0000002b000000100001'))).not.toThrow();
    // Cleanup raised it past the page's first LSN during the read (it raises it first, then deletes).
    const passed = () => checkPageStillInWindow('dbo_Member', w, L('0000002b000000100300'));
    expect(passed).toThrow(CdcWindowError);
    expect(passed).toThrow(/capture instance dbo_Member: CDC cleanup raised the lowest available LSN to 0000002b000000100300 while changes from 0000002b000000100001 were being read.*membermig full/);
  });

  it('stops with a clear error when cleanup passed the saved position', () => {
    const behind = () => readWindow('dbo_Member', { lsn: L('0000002b000000100000'), seqval: null }, L('0000002b000000200000'), max);
    expect(behind).toThrow(CdcWindowError);
    expect(behind).toThrow(/capture instance dbo_Member: the saved position 0000002b000000100000 fell behind CDC cleanup \(lowest available LSN 0000002b000000200000\).*membermig full/);
    // exactly at the low end is fine: nothing was lost
    expect(readWindow('dbo_Member', { lsn: L('0000002b000000100000'), seqval: null }, L('0000002b000000100001'), max)).not.toBeNull();
    // inside a transaction the read starts at the saved LSN itself, which must still be there
    expect(() => readWindow('dbo_Member', { lsn: L('0000002b000000100000'), seqval: L('0000002b000000100000') }, L('0000002b000000100001'), max)).toThrow(CdcWindowError);
  });

  it('treats min LSN 0x00…00 as a missing instance or missing rights', () => {
    expect(() => readWindow('dbo_Member', { lsn: L('0000002b000000100000'), seqval: null }, Lsn.ZERO, max)).toThrow(/does not exist, or this account lacks SELECT/);
  });

  it('after a full page stays at the last row; after a short page moves to the window end', () => {
    const w = { from: L('0000002b000000100000'), to: max, after: null };
    const last = { lsn: L('0000002b000000110000'), seqval: L('0000002b000000110002'), commandId: 3 };
    expect(positionAfterPage(w, last, true)).toEqual(last);
    expect(positionAfterPage(w, last, false)).toEqual({ lsn: max, seqval: null, commandId: null });
    expect(positionAfterPage(w, null, false)).toEqual({ lsn: max, seqval: null, commandId: null });
  });
});

describe('change rows → ChangeEvents', () => {
  const catalog: CatalogColumn[] = [
    { column_name: 'member_id', type_name: 'bigint', max_length: 8, precision: 19, scale: 0, collation_name: null, is_nullable: false, is_computed: false },
    { column_name: 'city', type_name: 'int', max_length: 4, precision: 10, scale: 0, collation_name: null, is_nullable: false, is_computed: false },
    { column_name: 'name', type_name: 'nvarchar', max_length: 100, precision: 0, scale: 0, collation_name: 'Chinese_PRC_CI_AS', is_nullable: true, is_computed: false },
    { column_name: 'points', type_name: 'decimal', max_length: 9, precision: 18, scale: 2, collation_name: null, is_nullable: false, is_computed: false },
    { column_name: 'seen_at', type_name: 'datetime2', max_length: 8, precision: 27, scale: 7, collation_name: null, is_nullable: true, is_computed: false },
  ];
  // sharded by city, keyed by member_id: an update can move the row to another shard
  const spec = buildTableSpec('member', { source: 'dbo.Member', target: 'member', shard_key: 'city', exclude_columns: [] }, catalog, ['member_id']);
  const table: CdcTable = { name: 'member', instance: 'dbo_Member', spec, conversions: spec.columns.map((c) => mssqlTypeMap.conversion(c.sourceType, c.source)) };
  const row = (lsn: string, seq: string, op: number, values: unknown[]): ChangeRow => {
    const r: ChangeRow = { __start_lsn: Buffer.from(lsn, 'hex'), __seqval: Buffer.from(seq, 'hex'), __operation: op, __command_id: op, __ts_ms: '1709370000123' };
    values.forEach((v, i) => (r[`c${i}`] = v));
    return r;
  };
  const A = '0000002b00000d200005';
  const B = '0000002b00000e100004';

  it('maps insert, update (op 3 gives the old shard key) and delete', () => {
    const page = mapChanges(
      table,
      [
        row(A, '0000002b00000d200002', Operation.Insert, ['9007199254740993', 10, '张伟', '327.68', '2024-03-02 09:00:00.1234560']),
        row(B, '0000002b00000e100002', Operation.UpdateBefore, ['9007199254740993', 10, '张伟', '327.68', null]),
        row(B, '0000002b00000e100002', Operation.UpdateAfter, ['9007199254740993', 20, '张伟', '-25.50', null]),
        row(B, '0000002b00000e100003', Operation.Delete, ['42', 30, null, '0.00', null]),
      ],
      false,
    );
    expect(page.poison).toEqual([]);
    expect(page.consumed).toBe(4);
    expect(page.last!.seqval.toString()).toBe('0000002b00000e100003');
    expect(page.last!.commandId).toBe(Operation.Delete);
    expect(page.lastSourceTsMs).toBe(1709370000123);
    expect(page.events).toEqual([
      {
        table: 'member',
        op: 'upsert',
        key: { member_id: '9007199254740993' },
        after: { member_id: '9007199254740993', city: '10', name: '张伟', points: '327.68', seen_at: '2024-03-02 09:00:00.123456' },
        origin: { source: 'dbo_Member', offset: `${A}:0000002b00000d200002`, commitLsn: A },
        sourceTsMs: 1709370000123,
      },
      {
        table: 'member',
        op: 'upsert',
        key: { member_id: '9007199254740993' },
        after: { member_id: '9007199254740993', city: '20', name: '张伟', points: '-25.50', seen_at: null },
        beforeShardKey: '10',
        origin: { source: 'dbo_Member', offset: `${B}:0000002b00000e100002`, commitLsn: B },
        sourceTsMs: 1709370000123,
      },
      {
        table: 'member',
        op: 'delete',
        key: { member_id: '42' },
        after: null,
        beforeShardKey: '30',
        origin: { source: 'dbo_Member', offset: `${B}:0000002b00000e100003`, commitLsn: B },
        sourceTsMs: 1709370000123,
      },
    ]);
  });

  it('an update that changes the primary key deletes the old key, then upserts the new one', () => {
    const page = mapChanges(
      table,
      [
        row(B, '0000002b00000e100002', Operation.UpdateBefore, ['1', 10, 'a', '1.00', null]),
        row(B, '0000002b00000e100002', Operation.UpdateAfter, ['2', 10, 'a', '1.00', null]),
      ],
      false,
    );
    expect(page.events.map((e) => [e.op, e.key.member_id, e.beforeShardKey])).toEqual([
      ['delete', '1', '10'],
      ['upsert', '2', '10'],
    ]);
  });

  it("gives a delete its before image's updated_at when the table has one; a value that does not convert only leaves it out", () => {
    const stamped: CdcTable = { ...table, spec: { ...spec, updatedAt: 'seen_at' } };
    const page = mapChanges(
      stamped,
      [
        row(B, '0000002b00000e100002', Operation.UpdateBefore, ['1', 10, 'a', '1.00', '2024-03-02 09:00:00.1234560']),
        row(B, '0000002b00000e100002', Operation.UpdateAfter, ['2', 10, 'a', '1.00', '2024-03-02 09:00:01.0000000']),
        row(B, '0000002b00000e100003', Operation.Delete, ['3', 10, null, '0.00', '2024-03-02 09:00:02.5000000']),
        row(B, '0000002b00000e100004', Operation.Delete, ['4', 10, null, '0.00', '2024-03-02 09:00:02.1234567']),
        row(B, '0000002b00000e100005', Operation.Delete, ['5', 10, null, '0.00', null]),
      ],
      false,
    );
    expect(page.poison).toEqual([]);
    expect(page.events.map((e) => [e.op, e.key.member_id, e.beforeUpdatedAt])).toEqual([
      ['delete', '1', '2024-03-02 09:00:00.123456'],
      ['upsert', '2', '2024-03-02 09:00:00.123456'],
      ['delete', '3', '2024-03-02 09:00:02.500000'],
      ['delete', '4', undefined],
      ['delete', '5', undefined],
    ]);
  });

  it('never cuts a full page between rows at one point (LSN, command id, seqval): a key update logged as delete + insert is read whole on the next page', () => {
    const at = (op: number, values: unknown[]): ChangeRow => ({ ...row(B, '0000002b00000e100002', op, values), __command_id: 3 });
    const rows = [row(A, '0000002b00000d200002', Operation.Insert, ['1', 10, 'a', '1.00', null]), at(Operation.Delete, ['2', 10, 'b', '1.00', null]), at(Operation.Insert, ['3', 10, 'b', '1.00', null])];
    const full = mapChanges(table, rows, true);
    expect(full.consumed).toBe(1);
    expect(full.last).toEqual({ lsn: Lsn.parse(A), seqval: Lsn.parse('0000002b00000d200002'), commandId: Operation.Insert });
    // The next page, which starts after that point, holds both rows; a page that is not full is taken whole.
    expect(mapChanges(table, rows.slice(1), false).events.map((e) => [e.op, e.key.member_id])).toEqual([
      ['delete', '2'],
      ['upsert', '3'],
    ]);
    expect(mapChanges(table, rows, false).consumed).toBe(3);
  });

  it('leaves a trailing update before-image for the next page when the page was full', () => {
    const rows = [
      row(A, '0000002b00000d200002', Operation.Insert, ['1', 10, 'a', '1.00', null]),
      row(B, '0000002b00000e100002', Operation.UpdateBefore, ['1', 10, 'a', '1.00', null]),
    ];
    const full = mapChanges(table, rows, true);
    expect(full.consumed).toBe(1);
    expect(full.events).toHaveLength(1);
    expect(full.last!.lsn.toString()).toBe(A);
    expect(mapChanges(table, rows, false).consumed).toBe(2);
  });

  it('turns a value the target cannot hold into a dead letter with its position, never a bent event', () => {
    const page = mapChanges(table, [row(A, '0000002b00000d200002', Operation.Insert, ['1', 10, 'x\uD800', '1.00', '2024-03-02 09:00:00.1234567'])], false);
    expect(page.events).toEqual([]);
    expect(page.poison).toHaveLength(1);
    expect(page.poison[0]!.origin.offset).toBe(`${A}:0000002b00000d200002`);
    expect(page.poison[0]!.reason).toMatch(/operation 2: column name: a lone UTF-16 surrogate/);
    expect(JSON.parse(page.poison[0]!.rawValue!.toString()).__start_lsn).toBe('0x' + A);
    expect(page.consumed).toBe(1); // recorded, then passed: the position still moves on
  });

  it('flags an unknown operation', () => {
    const page = mapChanges(table, [row(A, '0000002b00000d200002', 5, ['1', 10, 'a', '1.00', null])], false);
    expect(page.poison[0]!.reason).toMatch(/unknown __\$operation 5/);
  });
});
