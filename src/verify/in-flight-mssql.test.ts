import type { Pool } from 'mysql2/promise';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/index.js';
import { MysqlSourceReader } from '../source/mysql/reader.js';
import { scratchControlStore } from '../../test/support/scratch-control.js';
import { Lsn } from '../cdc/mssql/lsn.js';
import { coversLsn, savePosition } from '../cdc/mssql/position.js';
import { createLogger, silentLogger } from '../log.js';
import { freePort } from '../sandbox/mariadb.js';
import { MssqlReader } from '../source/mssql/reader.js';
import { ChangesInFlight } from './in-flight.js';
import { CaptureInstancesProbe } from './in-flight-mssql.js';

const L = (hex: string) => Lsn.parse(hex);

describe('coversLsn', () => {
  const end = L('0000002b000000500003');
  it('a position at a transaction boundary covers its own LSN and below', () => {
    expect(coversLsn({ lsn: end, seqval: null }, end)).toBe(true);
    expect(coversLsn({ lsn: L('0000002b000000600000'), seqval: null }, end)).toBe(true);
    expect(coversLsn({ lsn: L('0000002b000000500002'), seqval: null }, end)).toBe(false);
  });
  it('a position inside the transaction at the LSN does not cover it; inside a later one does', () => {
    expect(coversLsn({ lsn: end, seqval: L('0000002b000000500003') }, end)).toBe(false);
    expect(coversLsn({ lsn: L('0000002b000000500004'), seqval: L('0000002b000000500001') }, end)).toBe(true);
  });
});

/**
 * How far a direct-CDC sync has applied, read from a real control store (a scratch database on the
 * test MariaDB server). The SQL Server side (sys.fn_cdc_get_max_lsn) is in the live suite; here
 * the end is given, as verify would have read it.
 */
describe('verify waiting for a direct-CDC sync (CaptureInstancesProbe)', () => {
  const store = scratchControlStore('inflight');
  let pool: Pool;
  const end = L('0000002b000000500003');
  // No SQL Server here: a reader of a port nobody listens on (freePort: taken, then let go), which these tests never ask but the last.
  let noServer: MssqlReader;
  const save = (instance: string, lsn: string, seqval: string | null = null) =>
    savePosition(pool, { instance, table: instance.toLowerCase(), position: { lsn: L(lsn), seqval: seqval ? L(seqval) : null, commandId: null }, eventsApplied: 1, lastSourceTsMs: null });

  beforeAll(async () => {
    pool = await store.open();
    noServer = new MssqlReader({ url: `mssql://sa@127.0.0.1:${await freePort()}/Members`, logger: silentLogger });
  });
  beforeEach(() => pool.query('DELETE FROM cdc_lsn_positions'));
  afterAll(async () => {
    await noServer?.close();
    await store.drop();
  });

  it('names the capture instances not yet applied up to the end: never read, behind, or inside its transaction', async () => {
    const probe = new CaptureInstancesProbe(noServer, pool, ['dbo_Member', 'dbo_Address', 'dbo_Order', 'dbo_Idle']);
    await save('dbo_Member', '0000002b000000400000');
    await save('dbo_Order', '0000002b000000500003', '0000002b000000500002');
    await save('dbo_Idle', '0000002b000000500003'); // an idle instance's poll saves the window's end, the max LSN
    expect(await probe.behind(end)).toEqual(['capture instance dbo_Member', 'capture instance dbo_Address', 'capture instance dbo_Order']);
    await save('dbo_Member', '0000002b000000600000');
    await save('dbo_Address', '0000002b000000500003');
    await save('dbo_Order', '0000002b000000500003');
    expect(await probe.behind(end)).toEqual([]);
  });

  it('a re-check waits until sync saves a position that covers the end', async () => {
    await save('dbo_Member', '0000002b000000400000');
    const inFlight = new ChangesInFlight(new CaptureInstancesProbe(noServer, pool, ['dbo_Member']), createLogger('warn', new PassThrough()), 30_000);
    const started = Date.now();
    let done = false;
    const waiting = inFlight.waitApplied(end).then(() => (done = true));
    await new Promise((r) => setTimeout(r, 1000));
    expect(done).toBe(false);
    await save('dbo_Member', '0000002b000000500003');
    await waiting;
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('with no sync running, gives up once with a warning naming the instance, and waits again in the next pass', async () => {
    const out = new PassThrough();
    let logs = '';
    out.on('data', (d: Buffer) => (logs += d.toString()));
    const inFlight = new ChangesInFlight(new CaptureInstancesProbe(noServer, pool, ['dbo_Member']), createLogger('warn', out), 600);
    await inFlight.waitApplied(end);
    expect(logs).toMatch(/sync has not applied the changes in capture instance dbo_Member within 0.6 s/);
    const started = Date.now();
    await inFlight.waitApplied(end); // given up for this pass: no wait
    expect(Date.now() - started).toBeLessThan(300);
    inFlight.beginPass();
    await inFlight.waitApplied(end);
    expect(logs.match(/sync has not applied/g)).toHaveLength(2);
  });

  it('a SQL Server that cannot be asked leaves the re-checks as they were, with one warning', async () => {
    const out = new PassThrough();
    let logs = '';
    out.on('data', (d: Buffer) => (logs += d.toString()));
    const inFlight = new ChangesInFlight(new CaptureInstancesProbe(noServer, pool, ['dbo_Member']), createLogger('warn', out));
    expect(await inFlight.ends()).toBeNull();
    expect(await inFlight.ends()).toBeNull(); // given up: not asked again in this pass
    expect(logs.match(/cannot ask SQL Server CDC how far sync is \(cannot connect to SQL Server at 127\.0\.0\.1:\d+\/Members: /g)).toHaveLength(1);
    expect(logs).not.toContain('mssql://');
  });

  it('verify waits on the capture instances of the tables it checks, when sync reads CDC directly', async () => {
    const config = (source: string, cdc: string) =>
      parseConfig(
        `control: { url: "${store.url}" }\n${source}\nservers: { a: { primary: "mysql://root@127.0.0.1:3306/" } }\n` +
          `shards: { count: 4, function: mod, database: "m_{shard}", placement: [{ shards: "0-3", server: a }] }\n` +
          `tables: { member: { source: dbo.Member, target: member, shard_key: member_id }, note: { source: dbo.Note, target: note, shard_key: member_id } }\n${cdc}`,
        'membermig.yaml',
      );
    const direct = config('source: { kind: mssql, url: "mssql://sa@127.0.0.1:1/Members" }', 'cdc: { mssql: { capture_instances: { member: dbo_Member } } }');
    const sides = (tables: string[]) => ({ tables, reader: noServer, control: pool });
    await save('dbo_Member', '0000002b000000400000');
    const member = ChangesInFlight.fromConfig(direct, sides(['member', 'note']), silentLogger, 300);
    expect(member).toBeInstanceOf(ChangesInFlight);
    const started = Date.now();
    await member!.waitApplied(end); // dbo_Member is behind: waits its 300 ms
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    // Nothing to wait on: a table without a capture instance, or a MySQL source without Kafka.
    expect(ChangesInFlight.fromConfig(direct, sides(['note']), silentLogger)).toBeNull();
    const mysqlSource = config('source: { kind: mysql, url: "mysql://root@127.0.0.1:3306/legacy" }', '');
    const mysqlReader = new MysqlSourceReader(mysqlSource, silentLogger);
    expect(ChangesInFlight.fromConfig(mysqlSource, { tables: ['member'], reader: mysqlReader, control: pool }, silentLogger)).toBeNull();
    await mysqlReader.close();
  });
});
