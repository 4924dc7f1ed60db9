import sql from 'mssql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lsn } from '../../src/cdc/mssql/lsn.js';
import { loadPosition, savePosition, CdcWindowError } from '../../src/cdc/mssql/position.js';
import { CdcSchemaChangeError } from '../../src/cdc/mssql/ddl-history.js';
import { MssqlCdcSource, type NewInstanceNotice } from '../../src/cdc/mssql/source.js';
import { CAPTURED_COLUMNS_SQL, TIME_ZONE_SQL } from '../../src/cdc/mssql/tsql.js';
import { runSync } from '../../src/cdc/sync.js';
import { runFullCopy } from '../../src/copy/index.js';
import { runInit } from '../../src/init/index.js';
import { collectStatus } from '../../src/store/status.js';
import { runVerify } from '../../src/verify/index.js';
import { MssqlLegacySide, mssqlChecksumQuery } from '../../src/verify/mssql.js';
import { StreamingLegacySide } from '../../src/verify/sides.js';
import { shardMapFromConfig } from '../../src/shard/map.js';
import { connectMysql } from '../../src/mysql/connect.js';
import type { ChangeEvent } from '../../src/cdc/types.js';
import { silentLogger } from '../../src/log.js';
import type { Row, TableSpec } from '../../src/rows/types.js';
import { mssqlConfig } from '../../src/source/mssql/connect.js';
import { CAPTURE_INSTANCES_SQL, type CaptureInstanceRow } from '../../src/source/mssql/tsql.js';
import { checkMssqlSource } from '../../src/source/mssql/preflight.js';
import { MssqlReader, UnrepresentableValueError } from '../../src/source/mssql/reader.js';
import type { ReadRangeOptions } from '../../src/source/reader.js';
import type { RejectedValue as ConvertRejected } from '../../src/rows/convert.js';
import { openControlStore, setupControlStore, type ControlStore } from '../../src/store/control.js';
import { createTestEnv, type TestEnv } from '../support/env.js';
import { createTestDatabase, findSqlServer, sleep } from './support.js';

/**
 * Live SQL Server suite: the reader and the direct CDC source against a real server
 * (MEMBERMIG_TEST_MSSQL_URL, or a testcontainers SQL Server when a Docker engine answers).
 * Without one, the suite is skipped and says why.
 */
const server = await findSqlServer();
const skipReason = 'skipReason' in server ? server.skipReason : null;
if (skipReason) console.warn(`[mssql live] skipped: ${skipReason}`);

const NASTY_DDL = `CREATE TABLE dbo.Nasty (
  member_id bigint NOT NULL PRIMARY KEY,
  city int NOT NULL,
  tiny tinyint NULL,
  flag bit NULL,
  amount decimal(38,10) NULL,
  big_money money NULL,
  small_money smallmoney NULL,
  ratio float NULL,
  r real NULL,
  name_gbk varchar(40) COLLATE Chinese_PRC_CI_AS NULL,
  name_n nvarchar(100) COLLATE Chinese_PRC_CI_AS NULL,
  note nvarchar(max) NULL,
  raw varbinary(max) NULL,
  b16 binary(16) NULL,
  guid uniqueidentifier NULL,
  d date NULL,
  dt datetime NULL,
  sdt smalldatetime NULL,
  dt2 datetime2(7) NULL,
  t time(7) NULL,
  dto datetimeoffset(7) NULL,
  x xml NULL
)`;

const NASTY_ROWS = `INSERT INTO dbo.Nasty VALUES
 (9007199254740993, 10, 255, 1, 12345678901234567890123456.7890123456, 922337203685477.5807, -214748.3648, 0.1, 0.5,
  N'张伟喆镕', N'𠀀😀 Ａ', REPLICATE(CAST(N'长' AS nvarchar(max)), 100000), 0x00FF00, 0x6F9619FF8B86D011B42D00C04FC964FF,
  '6F9619FF-8B86-D011-B42D-00C04FC964FF', '2024-02-29', '2024-03-01T10:00:00.003', '2079-06-06T23:59:00',
  '2024-03-02T09:00:00.1234560', '12:34:56.1234560', '2024-03-02T09:00:00.1234567+08:00', N'<a b="1">x</a>'),
 (2, 20, 0, 0, -0.0000000001, -922337203685477.5808, 0, -1.7976931348623157E308, 0, '', N'', N'', 0x, NULL, NULL,
  '9999-12-31', '1753-01-01T00:00:00.000', NULL, '2024-12-31T23:59:59.9999990', '00:00:00', '0001-01-01T00:00:00.0000000-14:00', NULL),
 (3, 30, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO dbo.Nasty (member_id, city, name_n)
SELECT 100 + n, n % 7, CONCAT(N'会员', n)
FROM (SELECT TOP (2500) ROW_NUMBER() OVER (ORDER BY (SELECT NULL)) - 1 AS n FROM sys.all_objects AS a CROSS JOIN sys.all_objects AS b) AS s;`;

const EDGE_SQL = `CREATE TABLE dbo.Edge (id int NOT NULL PRIMARY KEY, d date NULL, dt2 datetime2(7) NULL, s nvarchar(10) NULL);
INSERT INTO dbo.Edge VALUES (1, '0001-01-01', NULL, NULL), (2, NULL, '2024-01-01T00:00:00.0000001', NULL),
  (3, NULL, NULL, NCHAR(0xD800)), (4, '2024-01-01', '2024-01-01T00:00:00.1000000', N'ok');`;

const nastyTable = { source: 'dbo.Nasty', target: 'nasty', shard_key: 'city', exclude_columns: [] as string[] };

describe.skipIf(skipReason !== null)(`SQL Server live${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let pool: sql.ConnectionPool;
  let env: TestEnv;
  let control: ControlStore;
  const readers: MssqlReader[] = [];
  const reader = (options: Partial<ConstructorParameters<typeof MssqlReader>[0]> = {}) => {
    const r = new MssqlReader({ url: db.url, connect: { trustServerCertificate: true }, logger: silentLogger, pageRows: 300, ...options });
    readers.push(r);
    return r;
  };

  beforeAll(async () => {
    if (!('url' in server)) return;
    db = await createTestDatabase(server.url);
    pool = new sql.ConnectionPool(mssqlConfig(db.url, { trustServerCertificate: true, requestTimeoutMs: 120_000 }));
    await pool.connect();
    await pool.request().batch(NASTY_DDL);
    await pool.request().batch(NASTY_ROWS);
    await pool.request().batch(EDGE_SQL);
    env = await createTestEnv();
    await setupControlStore(env.config);
    control = openControlStore(env.config);
  }, 240_000);

  afterAll(async () => {
    for (const r of readers) await r.close();
    await pool?.close();
    await db?.drop();
    await control?.close();
    await env?.cleanup();
    if ('stop' in server) await server.stop();
  }, 120_000);

  let spec: TableSpec;

  it('describes the table from the catalog through the type map', async () => {
    spec = await reader().describeTable('nasty', nastyTable);
    expect(spec.primaryKey).toEqual(['member_id']);
    expect(Object.fromEntries(spec.columns.map((c) => [c.source, c.targetType]))).toEqual({
      member_id: 'BIGINT',
      city: 'INT',
      tiny: 'TINYINT UNSIGNED',
      flag: 'TINYINT(1)',
      amount: 'DECIMAL(38,10)',
      big_money: 'DECIMAL(19,4)',
      small_money: 'DECIMAL(10,4)',
      ratio: 'DOUBLE',
      r: 'FLOAT',
      name_gbk: 'VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_as_ci',
      name_n: 'VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_as_ci',
      note: 'LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin',
      raw: 'LONGBLOB',
      b16: 'BINARY(16)',
      guid: 'CHAR(36) CHARACTER SET ascii COLLATE ascii_bin',
      d: 'DATE',
      dt: 'DATETIME(3)',
      sdt: 'DATETIME',
      dt2: 'DATETIME(6)',
      t: 'TIME(6)',
      dto: 'VARCHAR(34) CHARACTER SET ascii COLLATE ascii_bin',
      x: 'LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin',
    });
    await expect(reader().describeTable('ghost', { ...nastyTable, source: 'dbo.Ghost' })).rejects.toThrow(/table ghost: dbo\.Ghost does not exist/);
  });

  it('pages the whole table by key, in batches, with every value exact', async () => {
    const r = reader();
    const bounds: string[][] = [];
    for await (const b of r.chunkBoundaries(spec, 1000)) bounds.push(b);
    // keys in order: 2, 3, 100..2599, 9007199254740993 → the 1000th is 1097, the 2000th 2097
    expect(bounds).toEqual([['1097'], ['2097']]);
    const chunks: [string[] | null, string[] | null][] = [
      [null, bounds[0]!],
      [bounds[0]!, bounds[1]!],
      [bounds[1]!, null],
    ];
    const rows: Row[] = [];
    for (const [lower, upper] of chunks) {
      for await (const batch of r.readRange(spec, lower, upper, 128)) {
        expect(batch.length).toBeLessThanOrEqual(128);
        rows.push(...batch);
      }
    }
    expect(rows).toHaveLength(2503);
    const ids = rows.map((row) => row[0]);
    expect(ids.slice(0, 3)).toEqual(['2', '3', '100']);
    expect(ids.at(-1)).toBe('9007199254740993');
    expect(new Set(ids).size).toBe(2503);
    const byName = (row: Row) => Object.fromEntries(spec.columns.map((c, i) => [c.source, row[i]]));
    const big = byName(rows.at(-1)!);
    expect({ ...big, note: (big.note as string).length }).toEqual({
      member_id: '9007199254740993',
      city: '10',
      tiny: '255',
      flag: '1',
      amount: '12345678901234567890123456.7890123456',
      big_money: '922337203685477.5807',
      small_money: '-214748.3648',
      ratio: '0.1',
      r: '0.5',
      name_gbk: '张伟喆镕',
      name_n: '𠀀😀 Ａ',
      note: 100000,
      raw: Buffer.from([0, 0xff, 0]),
      b16: Buffer.from('6F9619FF8B86D011B42D00C04FC964FF', 'hex'),
      guid: '6F9619FF-8B86-D011-B42D-00C04FC964FF',
      d: '2024-02-29',
      dt: '2024-03-01 10:00:00.003',
      sdt: '2079-06-06 23:59:00',
      dt2: '2024-03-02 09:00:00.123456',
      t: '12:34:56.123456',
      dto: '2024-03-02 09:00:00.1234567 +08:00',
      x: '<a b="1">x</a>',
    });
    const two = byName(rows[0]!);
    expect(two).toMatchObject({ amount: '-0.0000000001', big_money: '-922337203685477.5808', ratio: '-1.7976931348623157e+308', name_gbk: '', name_n: '', note: '', d: '9999-12-31', dt2: '2024-12-31 23:59:59.999999', t: '00:00:00.000000', dto: '0001-01-01 00:00:00.0000000 -14:00' });
    expect((two.raw as Buffer).length).toBe(0);
    const three = byName(rows[1]!);
    expect(Object.entries(three).filter(([k]) => !['member_id', 'city'].includes(k)).every(([, v]) => v === null)).toBe(true);
  });

  it('plans an integer key by value from its histogram: bounded chunks despite outlying keys, every row once', async () => {
    await pool.request().batch(`CREATE TABLE dbo.Planned (id bigint NOT NULL PRIMARY KEY, v varchar(40) NOT NULL);
      WITH n AS (SELECT TOP (20000) ROW_NUMBER() OVER (ORDER BY (SELECT NULL)) AS i FROM sys.all_objects AS a CROSS JOIN sys.all_objects AS b)
      INSERT INTO dbo.Planned (id, v) SELECT i, 'x' FROM n;
      INSERT INTO dbo.Planned VALUES (1000000000000000, 'far'), (500000000000000000, 'far'), (9223372036854775807, 'far');
      UPDATE STATISTICS dbo.Planned WITH FULLSCAN;`);
    const r = reader();
    const planned = await r.describeTable('planned', { source: 'dbo.Planned', target: 'planned', shard_key: 'id', exclude_columns: [] });
    const bounds: string[][] = [];
    for await (const b of r.chunkBoundaries(planned, 500)) bounds.push(b);
    const edges = [null, ...bounds, null];
    const sizes: number[] = [];
    const ids = new Set<string>();
    for (let i = 0; i + 1 < edges.length; i++) {
      let n = 0;
      for await (const batch of r.readRange(planned, edges[i]!, edges[i + 1]!, 1000)) {
        n += batch.length;
        for (const row of batch) ids.add(String(row[0]));
      }
      sizes.push(n);
    }
    expect(ids.size).toBe(20_003);
    expect(ids.has('9223372036854775807')).toBe(true);
    // Keyset bounds would be every 500th key; by width alone all 20,000 would be in chunk 1.
    expect(Math.max(...sizes)).toBeLessThanOrEqual(2_000);
    expect(sizes.filter((n) => n > 0).length).toBeGreaterThanOrEqual(10);
  });

  it('flags values MySQL cannot hold: stops by default, records and skips the row when asked', async () => {
    const edge = { source: 'dbo.Edge', target: 'edge', shard_key: 'id', exclude_columns: [] as string[] };
    const failing = reader();
    const edgeSpec = await failing.describeTable('edge', edge);
    const readAll = async (r: MssqlReader, options: ReadRangeOptions = {}) => {
      const out: Row[] = [];
      for await (const b of r.readRange(edgeSpec, null, null, 10, options)) out.push(...b);
      return out;
    };
    await expect(readAll(failing)).rejects.toThrow(UnrepresentableValueError);
    await expect(readAll(failing)).rejects.toThrow(/table edge, row \{"id":"1"\}, column d: MySQL DATE is only supported from 1000-01-01/);
    // With rows.on_unrepresentable: record, copy passes onRejected and writes what it gets to rejected_values.
    const rejected: ConvertRejected[] = [];
    expect(await readAll(failing, { onRejected: (v) => void rejected.push(v) })).toEqual([['4', '2024-01-01', '2024-01-01 00:00:00.100000', 'ok']]);
    expect(rejected.map((v) => [v.key[0], v.column, v.value])).toEqual([
      ['1', 'd', '0001-01-01'],
      ['2', 'dt2', '2024-01-01 00:00:00.0000001'],
      ['3', 's', '\\uD800'],
    ]);
  });

  it('non-Unicode text as Windows decodes it: GBK user-defined characters and CP1252 holes copied, keys paged past them', async () => {
    await pool.request().batch(`CREATE TABLE dbo.CodePage (k varchar(10) COLLATE Chinese_PRC_CI_AS NOT NULL PRIMARY KEY, v varchar(10) COLLATE Latin1_General_CI_AS NULL);
INSERT INTO dbo.CodePage VALUES (CAST(0xD5C5AAA1 AS varchar(10)), CAST(0x4181 AS varchar(10))), (CAST(0xA8BC AS varchar(10)), CAST(0x9D80 AS varchar(10))),
  ('a', 'x'), ('b', NULL), (CAST(0xD5C5 AS varchar(10)), 'y');`);
    const r = reader();
    const codeSpec = await r.describeTable('code_page', { source: 'dbo.CodePage', target: 'code_page', shard_key: 'k', exclude_columns: [] });
    const rows: Row[] = [];
    // One row a page: every page starts after a key read back as text.
    for await (const b of r.readRange(codeSpec, null, null, 1)) rows.push(...b);
    expect(new Map(rows.map((row) => [row[0], row[1]]))).toEqual(
      new Map<unknown, unknown>([
        ['a', 'x'],
        ['b', null],
        ['张', 'y'],
        ['张\uE000', 'A\u0081'],
        ['\uE7C7', '\u009D€'],
      ]),
    );
  });

  let startLsn: Lsn;
  let cdc: MssqlCdcSource;
  const applied: ChangeEvent[] = [];
  const notices: NewInstanceNotice[] = [];

  it('refuses a start position before CDC is enabled, then records the max LSN', async () => {
    await expect(reader().startPosition()).rejects.toThrow(/sys\.fn_cdc_get_max_lsn\(\) is NULL/);
    await pool.request().batch(`EXEC sys.sp_cdc_enable_db;
      EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'Nasty', @role_name = NULL, @capture_instance = N'dbo_Nasty', @supports_net_changes = 0;`);
    // The capture job has to harvest one transaction before there is a max LSN.
    let position = null;
    for (let i = 0; i < 60 && !position; i++) {
      await pool.request().batch('UPDATE dbo.Nasty SET city = city WHERE member_id = 3');
      await sleep(2000);
      position = await reader().startPosition().catch(() => null);
    }
    expect(position).not.toBeNull();
    expect(position!.kind).toBe('mssql');
    expect(position!.position.lsn).toMatch(/^[0-9a-f]{20}$/);
    startLsn = Lsn.parse(position!.position.lsn as string);
  }, 180_000);

  it('names the server time zone only as one AT TIME ZONE takes as a bound parameter', async () => {
    const zone = (await pool.request().query<{ time_zone: string | null }>(TIME_ZONE_SQL)).recordset[0]?.time_zone ?? null;
    // NULL (or no row) before SQL Server 2022: the source then keeps today's offset.
    if (zone === null) return;
    const r = await pool
      .request()
      .input('time_zone', sql.NVarChar(4000), zone)
      .query<{ id: string; offset: number }>("SELECT CURRENT_TIMEZONE_ID() AS id, DATEPART(TZOFFSET, CAST('2024-01-15T12:00:00' AS datetime) AT TIME ZONE @time_zone) AS offset");
    expect(r.recordset[0]!.id).toBe(zone);
    expect(typeof r.recordset[0]!.offset).toBe('number');
  });

  it('preflight sees the version, CDC and the running Agent', async () => {
    const report = await checkMssqlSource({
      url: db.url,
      connect: { trustServerCertificate: true },
      captureInstances: { nasty: { instance: 'dbo_Nasty', source: 'dbo.Nasty' } },
      needCdc: true,
    });
    expect(report.version).toMatch(/^\d+\./);
    expect(report.findings.filter((f) => f.severity === 'error')).toEqual([]);
  });

  it('applies inserts, updates, key changes and deletes in log order, saving the position after apply', async () => {
    cdc = new MssqlCdcSource({
      source: pool,
      control: control.pool,
      tables: [{ name: 'nasty', instance: 'dbo_Nasty', spec }],
      apply: async (events) => void applied.push(...events),
      startLsnOf: () => startLsn,
      logger: silentLogger,
      batchRows: 3,
      onNewInstance: (n) => void notices.push(n),
    });
    await cdc.checkInstances();
    // SQL Server 2016 SP2 and later have __$command_id: read the change table in statement order
    expect(await cdc.changesMode({ instance: 'dbo_Nasty' })).toBe('table');
    await pool.request().batch(`INSERT INTO dbo.Nasty (member_id, city, name_n, amount, dt2) VALUES (5, 50, N'新', 1.5, '2024-05-05T05:05:05.5555550');
      UPDATE dbo.Nasty SET city = 60, amount = 2.5 WHERE member_id = 5;
      UPDATE dbo.Nasty SET member_id = 6 WHERE member_id = 5;
      DELETE FROM dbo.Nasty WHERE member_id = 6;
      UPDATE dbo.Nasty SET tiny = 7 WHERE member_id BETWEEN 100 AND 109;`);
    for (let i = 0; i < 45; i++) {
      await cdc.pollOnce();
      if (applied.filter((e) => e.after?.tiny === '7').length >= 10) break;
      await sleep(2000);
    }
    const mine = applied.filter((e) => ['5', '6'].includes(e.key.member_id as string));
    expect(mine.map((e) => [e.op, e.key.member_id])).toEqual([
      ['upsert', '5'],
      ['upsert', '5'],
      ['delete', '5'],
      ['upsert', '6'],
      ['delete', '6'],
    ]);
    expect(mine[0]!.after).toMatchObject({ city: '50', name_n: '新', amount: '1.5000000000', dt2: '2024-05-05 05:05:05.555555' });
    // Commit times are UTC ms, whatever the server's time zone: within minutes of this machine's clock.
    expect(Math.abs(mine[0]!.sourceTsMs! - Date.now())).toBeLessThan(10 * 60_000);
    expect(mine[1]!).toMatchObject({ beforeShardKey: '50', after: { city: '60', amount: '2.5000000000' } });
    expect(mine[4]!.beforeShardKey).toBe('60');
    const tinies = applied.filter((e) => e.after?.tiny === '7').map((e) => e.key.member_id);
    expect(tinies).toEqual(['100', '101', '102', '103', '104', '105', '106', '107', '108', '109']);
    for (let i = 1; i < applied.length; i++) expect(applied[i]!.origin.offset >= applied[i - 1]!.origin.offset).toBe(true);
    const saved = await loadPosition(control.pool, 'dbo_Nasty');
    expect(saved!.lsn.compare(startLsn)).toBe(1);
  }, 150_000);

  it('notices a second capture instance for the table', async () => {
    await pool.request().batch(
      "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'Nasty', @role_name = NULL, @capture_instance = N'dbo_Nasty_v2', @supports_net_changes = 0;",
    );
    await cdc.pollOnce();
    expect(notices.map((n) => [n.table, n.configured, n.found])).toEqual([['nasty', 'dbo_Nasty', 'dbo_Nasty_v2']]);
  });

  it('stops right before a column added on legacy while it runs: the change before the ALTER applied, the one after not', async () => {
    await pool.request().batch('UPDATE dbo.Nasty SET tiny = 8 WHERE member_id = 100;');
    await pool.request().batch('ALTER TABLE dbo.Nasty ADD vip int NULL;');
    await pool.request().batch('UPDATE dbo.Nasty SET tiny = 9 WHERE member_id = 101;');
    // The capture job harvests the log every few seconds: poll until sync meets the DDL.
    let stopped: unknown = null;
    for (let i = 0; i < 45 && stopped === null; i++) {
      await cdc.pollOnce().catch((e: unknown) => (stopped = e));
      if (stopped === null) await sleep(2000);
    }
    expect(stopped).toBeInstanceOf(CdcSchemaChangeError);
    expect((stopped as Error).message).toMatch(/^table nasty: legacy's table dbo\.Nasty changed at LSN \S+.*adds column vip, which capture instance dbo_Nasty does not capture/);
    expect(applied.some((e) => e.key.member_id === '100' && e.after?.tiny === '8')).toBe(true);
    expect(applied.some((e) => e.key.member_id === '101' && e.after?.tiny === '9')).toBe(false);
    // Restarted, it stops there again and applies nothing past the DDL.
    await expect(cdc.pollOnce()).rejects.toThrow(CdcSchemaChangeError);
    expect(applied.some((e) => e.key.member_id === '101' && e.after?.tiny === '9')).toBe(false);
  }, 150_000);

  it('a user with SELECT on the table only (not db_owner, no rights on the cdc schema) sees its capture instances and columns', async () => {
    await pool.request().batch('CREATE USER membermig_reader WITHOUT LOGIN; GRANT SELECT ON dbo.Nasty TO membermig_reader;');
    // REVERT in both branches: the pooled connection must not stay impersonated. @instance is the
    // parameter CAPTURED_COLUMNS_SQL takes (bound by the source; declared here in one batch).
    const seen = await pool.request().batch<CaptureInstanceRow & { column_name: string; is_db_owner: number }>(
      `EXECUTE AS USER = N'membermig_reader';
       BEGIN TRY
         ${CAPTURE_INSTANCES_SQL};
         DECLARE @instance sysname = N'dbo_Nasty'; ${CAPTURED_COLUMNS_SQL};
         SELECT IS_ROLEMEMBER('db_owner') AS is_db_owner;
       END TRY
       BEGIN CATCH REVERT; THROW; END CATCH;
       REVERT;`,
    );
    const rows = seen.recordsets[0] as CaptureInstanceRow[];
    const columns = (seen.recordsets[1] as { column_name: string }[]).map((r) => r.column_name);
    expect((seen.recordsets[2] as { is_db_owner: number }[])[0]!.is_db_owner).toBe(0);
    expect(rows.map((r) => r.capture_instance).sort()).toEqual(['dbo_Nasty', 'dbo_Nasty_v2']);
    expect(columns).toEqual(expect.arrayContaining(spec.columns.map((c) => c.source)));
  });

  it('stops with a clear error when the saved position is behind the cleanup window', async () => {
    await savePosition(control.pool, { instance: 'dbo_Nasty', table: 'nasty', position: { lsn: Lsn.parse('00000000000000000001'), seqval: null }, eventsApplied: 0, lastSourceTsMs: null });
    await expect(cdc.pollOnce()).rejects.toThrow(CdcWindowError);
    await expect(cdc.pollOnce()).rejects.toThrow(/fell behind CDC cleanup/);
  });

  it('the T-SQL checksum (pushdown) equals the rows hashed in Node, on awkward values of every pushdown type', async () => {
    await pool.request().batch(`CREATE TABLE dbo.Canon (
        id bigint NOT NULL PRIMARY KEY, i int NULL, t tinyint NULL, b bit NULL, d decimal(38,10) NULL, m money NULL, sm smallmoney NULL,
        dd date NULL, dt datetime NULL, sdt smalldatetime NULL, d2 datetime2(6) NULL, d0 datetime2(0) NULL, tm time(6) NULL, t0 time(0) NULL,
        c nchar(5) NULL, vc varchar(20) COLLATE Chinese_PRC_CI_AS NULL, nv nvarchar(max) NULL, g uniqueidentifier NULL, vb varbinary(20) NULL);
      INSERT INTO dbo.Canon VALUES
        (-9223372036854775808, -2147483648, 255, 1, -12345678901234567890123456.7890123456, -922337203685477.5808, 214748.3647,
         '1000-01-01', '1753-01-01T00:00:00.003', '1900-01-01T00:00:00', '2024-02-29T23:59:59.999999', '2024-01-01T01:02:03', '23:59:59.999999', '00:00:00',
         N'ab', N'张伟 ', N'😀 𠀀 trailing  ', '6F9619FF-8B86-D011-B42D-00C04FC964FF', 0x00FF),
        (9223372036854775807, 0, 0, 0, 0.5, 0, 0, '9999-12-31', '9999-12-31T23:59:59.997', '2079-06-06T23:59:00', '1000-01-01T00:00:00.000001', NULL, '12:00:00.5', '12:34:56',
         N'', '', N'', NULL, 0x),
        (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);`);
    const canonSpec = await reader().describeTable('canon', { source: 'dbo.Canon', target: 'canon', shard_key: 'id', exclude_columns: [] });
    expect(mssqlChecksumQuery(canonSpec, { lower: null, upper: null })).toBeDefined();
    const map = shardMapFromConfig(env.config);
    const pushdown = new MssqlLegacySide(reader(), canonSpec, map);
    const inNode = new StreamingLegacySide(reader(), canonSpec, 'md5', map);
    for (const range of [{ lower: null, upper: null }, { lower: null, upper: ['1'] }, { lower: ['1'], upper: null }]) {
      const [a, b] = [await pushdown.checksum(range, {}), await inNode.checksum(range, {})];
      expect(a).toEqual(b);
    }
    expect((await pushdown.checksum({ lower: null, upper: null }, {})).count).toBe(3);
  });

  it('a binary primary key: chunk bounds read from SQL Server serve the shards too; full then verify is clean', async () => {
    await pool.request().batch(`CREATE TABLE dbo.BinKey (id binary(4) NOT NULL PRIMARY KEY, city int NOT NULL, name nvarchar(20) NULL);
      INSERT INTO dbo.BinKey SELECT CAST(n * 2654435761 AS binary(4)), n % 5, CONCAT(N'键', n)
      FROM (SELECT TOP (300) ROW_NUMBER() OVER (ORDER BY (SELECT NULL)) AS n FROM sys.all_objects) AS s;`);
    const e2e = await createTestEnv({
      tables: { bin_key: { source: 'dbo.BinKey', target: 'bin_key', shard_key: 'city' } },
      extra: { source: { kind: 'mssql', url: db.url, trust_server_certificate: true }, copy: { chunk_rows: 40 }, verify: { chunk_rows: 40 } },
    });
    try {
      expect((await runInit(e2e.config)).ok).toBe(true);
      const copy = await runFullCopy(e2e.config, { logger: silentLogger });
      expect([copy.state, copy.rowsThisRun]).toEqual(['done', 300]);
      const verify = await runVerify(e2e.config, { logger: silentLogger, recheckAfterSeconds: 0 });
      expect([verify.state, verify.tables[0]!.rowsSource, verify.tables[0]!.rowsTarget]).toEqual(['clean', 300, 300]);
    } finally {
      await e2e.cleanup();
    }
  }, 120_000);

  it('end to end: full, changes, sync straight from CDC (no Kafka), verify: no difference', async () => {
    await pool.request().batch(`CREATE TABLE dbo.Member (
        member_id bigint NOT NULL PRIMARY KEY, city int NOT NULL, name nvarchar(50) COLLATE Chinese_PRC_CI_AS NULL,
        points decimal(18,2) NULL, updated datetime2(6) NULL, guid uniqueidentifier NULL);
      INSERT INTO dbo.Member
      SELECT n, n % 9, CONCAT(N'会员', n), n * 1.25, DATEADD(microsecond, n, CAST('2024-01-01T00:00:00' AS datetime2(6))), NEWID()
      FROM (SELECT TOP (500) ROW_NUMBER() OVER (ORDER BY (SELECT NULL)) AS n FROM sys.all_objects) AS s;
      EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'Member', @role_name = NULL, @capture_instance = N'dbo_Member', @supports_net_changes = 0;`);
    // full waits until the capture job has passed the new instance's first LSN before it records the start.
    const e2e = await createTestEnv({
      tables: { member: { source: 'dbo.Member', target: 'member', shard_key: 'member_id' } },
      extra: {
        source: { kind: 'mssql', url: db.url, trust_server_certificate: true },
        cdc: { mssql: { capture_instances: { member: 'dbo_Member' }, poll_interval_ms: 500 } },
      },
    });
    try {
      expect((await runInit(e2e.config)).ok).toBe(true);
      const copy = await runFullCopy(e2e.config, { logger: silentLogger });
      expect([copy.state, copy.rowsThisRun]).toEqual(['done', 500]);
      await pool.request().batch(`INSERT INTO dbo.Member (member_id, city, name, points) VALUES (1001, 1, N'新会员😀', 99999999999999.99), (1002, 2, NULL, NULL);
        UPDATE dbo.Member SET points = points + 0.01, name = N'改' WHERE member_id BETWEEN 10 AND 39;
        DELETE FROM dbo.Member WHERE member_id BETWEEN 40 AND 59;
        UPDATE dbo.Member SET member_id = 5000 WHERE member_id = 7;`);
      // The capture job harvests the log every few seconds: sync until verify finds the shards equal.
      let applied = 0;
      let verify: Awaited<ReturnType<typeof runVerify>> | undefined;
      for (let i = 0; i < 30; i++) {
        const sync = await runSync(e2e.config, { logger: silentLogger, untilCaughtUp: true });
        expect(sync.source).toBe('mssql');
        expect(sync.deadLetters.open).toBe(0);
        applied += sync.eventsApplied;
        // Sync is not running while verify looks: a short wait for it (see the next part for the wait itself).
        verify = await runVerify(e2e.config, { logger: silentLogger, recheckAfterSeconds: 0, inFlightWaitMs: 1000 });
        if (verify.state === 'clean' && applied >= 53) break;
        await sleep(2000);
      }
      expect(verify!.state).toBe('clean');
      expect(applied).toBeGreaterThanOrEqual(53);
      const status = await collectStatus(e2e.config);
      expect(status.perTable[0]!.sync?.lastLsn).toMatch(/^[0-9a-f]{20}$/);

      // Changes in CDC that sync has not applied yet (it is not running): verify's re-check waits
      // until the sync started after it has applied CDC up to the max LSN of when it saw them.
      const before = (await pool.request().query<{ lsn: Buffer }>('SELECT sys.fn_cdc_get_max_lsn() AS lsn')).recordset[0]!.lsn;
      await pool.request().batch('UPDATE dbo.Member SET points = points + 1 WHERE member_id BETWEEN 100 AND 159;');
      const harvested = async () =>
        (await pool.request().input('before', sql.VarBinary(10), before).query<{ n: number }>('SELECT COUNT(*) AS n FROM cdc.dbo_Member_CT WHERE __$start_lsn > @before')).recordset[0]!.n;
      for (let i = 0; i < 60 && (await harvested()) < 120; i++) await sleep(1000); // before and after image of each row
      const verifying = runVerify(e2e.config, { logger: silentLogger, recheckAfterSeconds: 1 });
      await sleep(6000); // well after the first re-check would have looked
      const late = await runSync(e2e.config, { logger: silentLogger, untilCaughtUp: true });
      const moving = await verifying;
      expect(late.eventsApplied).toBeGreaterThanOrEqual(60);
      expect([moving.state, moving.differences]).toEqual(['clean', []]);

      // The repair queue reads its keys from SQL Server one statement per batch: a damaged row is re-copied.
      const at = shardMapFromConfig(e2e.config).locate('100');
      const shard = await connectMysql(at.server.primary);
      await shard.query(`UPDATE \`${at.database}\`.member SET points = -1 WHERE member_id = 100`);
      await shard.end();
      const store = openControlStore(e2e.config);
      await store.pool.query("INSERT INTO repair_queue (table_name, pk, reason, origin) VALUES ('member', JSON_OBJECT('member_id', '100'), 'test', 'shim')");
      await store.close();
      const repaired = await runVerify(e2e.config, { logger: silentLogger, repair: true, recheckAfterSeconds: 0 });
      expect(repaired.repairQueue).toEqual([{ table: 'member', entries: 1, resolved: 1, left: 0, legacyBehind: 0, unrepresentable: 0, malformed: 0, problems: [] }]);
      expect((await runVerify(e2e.config, { logger: silentLogger, recheckAfterSeconds: 0 })).state).toBe('clean');
    } finally {
      await e2e.cleanup();
    }
  }, 240_000);
});
