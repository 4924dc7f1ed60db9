import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection, Pool, RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type { Config } from '../config/schema.js';
import { silentLogger } from '../log.js';
import { connectMysql, createMysqlPool, quoteId } from '../mysql/connect.js';
import type { TableSpec } from '../rows/types.js';
import { startMariaDb, type MariaDbInstance } from '../sandbox/mariadb.js';
import type { ShardLocation } from '../shard/map.js';
import { setupControlStore } from '../store/control.js';
import { createShardWriter, type ShardWriter } from '../target/writer.js';
import { applyChanges } from './apply.js';
import { openDeadLetters, recordDeadLetters } from './deadletters.js';
import { ParkingLot, type ParkedWrite } from './parking.js';
import type { ChangeEvent } from './types.js';

/**
 * applyChanges (src/cdc/apply.ts) and the parking lot's replay (src/cdc/parking.ts) against real
 * servers, with real errors: one rule (isTransient, src/mysql/retry.ts) tells a write the server
 * will take later (parked, or retried without a parking lot; never dead-lettered; the other
 * server goes on) from a row the server refuses (dead-lettered alone; the rest applies).
 *
 * Two shards (mod 2): shard 0 (even ids) on server A, a private mariadbd this file starts and may
 * lock, kill queries on, set read-only or stop; shard 1 (odd ids) on server B, the shared shardB.
 * The writer is the real one (createShardWriter), reaching A as a user without SUPER / READ ONLY
 * ADMIN, so read_only applies to it. The parking lot is the real ParkingLot on a scratch control
 * store (setupControlStore on the legacy test server), dead-lettering into its real dead_letters.
 * How each error is made:
 * - ER_LOCK_WAIT_TIMEOUT: another session holds LOCK TABLES <shard 0>.member WRITE; the writer's
 *   sessions wait lock_wait_timeout = 1 s.
 * - ER_QUERY_INTERRUPTED: the same lock (writer waits up to 30 s), and another session KILL QUERYs
 *   every writer statement waiting for it.
 * - ER_OPTION_PREVENTS_STATEMENT: SET GLOBAL read_only = 1 on server A.
 * - ECONNREFUSED: server A stopped (restarted on the same port and data to end the outage).
 * - ER_DATA_TOO_LONG: 'too long' into VARCHAR(5) under the writer's strict sql_mode.
 * A second suite puts ten shards on server A: apply writes 4 at a time per server, and once one
 * finds the server down the works still queued are parked without being tried.
 * ER_LOCK_DEADLOCK is left out: it takes the same path (isTransient) as the codes above, and the
 * writer's single autocommit statements give no natural way to make a real one.
 */

const tag = randomBytes(4).toString('hex');
const prefix = `mmapply_${tag}`;
// Server names are also part of the drainers' lock names (GET_LOCK, per control store): unique per run all the same.
const A = `a-${tag}`;
const B = `b-${tag}`;
const dbOf = (shard: number) => `${prefix}_s${shard}`;
const WRITER_USER = 'mm_writer';
const WRITER_PASSWORD = randomBytes(8).toString('hex');
const BACKOFF = { first: 20, max: 200 };

const urls = inject('mysql');
const controlUrl = Object.assign(new URL(urls.legacy), { pathname: `/${prefix}_control` }).toString();

const spec: TableSpec = {
  name: 'member',
  sourceSchema: 'dbo',
  sourceTable: 'Member',
  target: 'member',
  primaryKey: ['id'],
  shardKey: 'id',
  columns: [
    { source: 'id', target: 'id', sourceType: { dataType: 'int' }, targetType: 'INT', nullable: false },
    { source: 'name', target: 'name', sourceType: { dataType: 'varchar', length: 5 }, targetType: 'VARCHAR(5)', nullable: true },
  ],
};
const specs = new Map([[spec.name, spec]]);
const TABLE_DDL = 'CREATE TABLE member (id INT NOT NULL PRIMARY KEY, name VARCHAR(5) NULL) ENGINE=InnoDB';

let dir: string;
let serverA: MariaDbInstance;
let control: Pool;
/** What the running test started (outage, parking lot, writer): undone after it, passed or not, newest first. */
let cleanups: (() => Promise<unknown>)[] = [];
const undoAfter = <T>(thing: T, undo: (thing: T) => Promise<unknown>): T => {
  cleanups.push(() => undo(thing));
  return thing;
};

function shardConfig(): Pick<Config, 'servers' | 'shards'> {
  return {
    servers: {
      [A]: { primary: `mysql://${WRITER_USER}:${WRITER_PASSWORD}@127.0.0.1:${serverA.port}/`, replicas: [], max_connections: 4 },
      [B]: { primary: urls.shardB, replicas: [], max_connections: 4 },
    },
    shards: {
      count: 2,
      function: 'mod',
      database: `${prefix}_s{shard}`,
      placement: [
        { shards: '0', server: A },
        { shards: '1', server: B },
      ],
    },
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Runs statements as root on a server, on a connection of their own. */
async function onServer(url: string, ...statements: string[]): Promise<RowDataPacket[]> {
  const conn = await connectMysql(url);
  try {
    let last: RowDataPacket[] = [];
    for (const sql of statements) last = (await conn.query<RowDataPacket[]>(sql))[0];
    return last;
  } finally {
    await conn.end();
  }
}

/** A shard's rows, read back from its server, as [id, name]. */
async function rowsOf(shard: number): Promise<string[][]> {
  const rows = await onServer(shard === 0 ? serverA.url : urls.shardB, `SELECT id, name FROM ${quoteId(dbOf(shard))}.member ORDER BY id`);
  return rows.map((r) => [String(r.id), r.name as string]);
}

/** What the real cdc_parked holds for a server, in replay order, as [op, values]. */
async function parkedFor(server: string): Promise<[string, unknown][]> {
  const [rows] = await control.query<RowDataPacket[]>('SELECT op, data FROM cdc_parked WHERE server = ? ORDER BY id', [server]);
  return rows.map((r) => [r.op as string, JSON.parse(r.data as string)]);
}

async function deadLetterCount(): Promise<number> {
  const [rows] = await control.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM dead_letters');
  return Number(rows[0]!.n);
}

interface SeenError {
  server: string;
  code: string | undefined;
}

/**
 * The real writer, noting each error a server answered (and telling `onError`) before throwing it
 * on unchanged: how a test sees which real error apply or the drainer met, and when.
 */
function watched(writer: ShardWriter, onError: () => void = () => {}): ShardWriter & { errors: SeenError[] } {
  const errors: SeenError[] = [];
  const note = async <T>(shard: number | ShardLocation, work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (e) {
      errors.push({ server: typeof shard === 'number' ? writer.map.serverOf(shard).name : shard.server.name, code: (e as { code?: string }).code });
      onError();
      throw e;
    }
  };
  return {
    map: writer.map,
    errors,
    upsertRows: (shard, s, rows, options) => note(shard, () => writer.upsertRows(shard, s, rows, options)),
    deleteKeys: (shard, s, keys, options) => note(shard, () => writer.deleteKeys(shard, s, keys, options)),
    keysKeptNewer: (shard, s, keys, bounds) => note(shard, () => writer.keysKeptNewer(shard, s, keys, bounds)),
    loadShards: (parts) => writer.loadShards(parts),
    loadBlocks: (shard, s, blocks, rows) => writer.loadBlocks(shard, s, blocks, rows),
    poolOf: (server) => writer.poolOf(server),
    close: () => writer.close(),
  };
}

/** Something done to server A that makes it fail writes until end() (idempotent). */
interface Outage {
  begin(): Promise<void>;
  end(): Promise<void>;
}

/** Another session holds shard 0's table lock; with `killWaiting`, a third KILL QUERYs every writer statement waiting for it. */
function tableLocked(killWaiting: boolean): Outage {
  let locker: Connection | undefined;
  let killer: Connection | undefined;
  let killing: Promise<void> | undefined;
  let stopKilling = false;
  return {
    async begin() {
      locker = await connectMysql(serverA.url);
      await locker.query(`LOCK TABLES ${quoteId(dbOf(0))}.member WRITE`);
      if (!killWaiting) return;
      const k = (killer = await connectMysql(serverA.url));
      killing = (async () => {
        while (!stopKilling) {
          const [waiting] = await k.query<RowDataPacket[]>(
            "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ? AND COMMAND = 'Query' AND STATE = 'Waiting for table metadata lock'",
            [WRITER_USER],
          );
          for (const w of waiting) {
            await k.query(`KILL QUERY ${Number(w.id)}`).catch((e: { code?: string }) => {
              if (e.code !== 'ER_NO_SUCH_THREAD') throw e; // the session went away meanwhile
            });
          }
          await sleep(20);
        }
      })();
    },
    async end() {
      stopKilling = true;
      const kill = killing;
      killing = undefined;
      await kill;
      await killer?.end();
      killer = undefined;
      if (locker) {
        const l = locker;
        locker = undefined;
        await l.query('UNLOCK TABLES');
        await l.end();
      }
    },
  };
}

const readOnly = (): Outage => ({
  begin: async () => void (await onServer(serverA.url, 'SET GLOBAL read_only = 1')),
  end: async () => void (await onServer(serverA.url, 'SET GLOBAL read_only = 0')),
});

function stopped(): Outage {
  let down = false;
  return {
    async begin() {
      await serverA.stop();
      down = true;
    },
    async end() {
      if (!down) return;
      serverA = await startMariaDb({ dir, port: serverA.port });
      down = false;
    },
  };
}

interface Kind {
  code: string;
  how: string;
  lockWaitSeconds: number;
  outage: () => Outage;
}

const KINDS: Kind[] = [
  { code: 'ER_LOCK_WAIT_TIMEOUT', how: "a table lock outlasting the writer's lock_wait_timeout", lockWaitSeconds: 1, outage: () => tableLocked(false) },
  { code: 'ER_QUERY_INTERRUPTED', how: "KILL QUERY of the writer's waiting statement", lockWaitSeconds: 30, outage: () => tableLocked(true) },
  { code: 'ER_OPTION_PREVENTS_STATEMENT', how: 'the server set read_only', lockWaitSeconds: 1, outage: readOnly },
  { code: 'ECONNREFUSED', how: 'the server stopped', lockWaitSeconds: 1, outage: stopped },
];

function upsert(id: number, name: string, offset: number): ChangeEvent {
  return { table: 'member', op: 'upsert', key: { id: String(id) }, after: { id: String(id), name }, origin: { source: 't', partition: 0, offset: String(offset) } };
}

/** A real parking lot on the scratch control store, dead-lettering into its dead_letters as sync does; `drained` resolves when server A's drainer ends, done. */
function parkingLot(writer: ShardWriter, tableSpecs = specs): { lot: ParkingLot; drained: Promise<void> } {
  let done!: () => void;
  const drained = new Promise<void>((resolve) => (done = resolve));
  const lot = new ParkingLot(
    control,
    silentLogger,
    { writer, specs: tableSpecs, deadLetter: (poison) => recordDeadLetters(control, [poison]), onDrained: (server) => server === A && done() },
    BACKOFF,
  );
  undoAfter(lot, (l) => l.stop());
  return { lot, drained };
}

// Server A (private) and the scratch control store serve both suites below.
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'membermig-apply-'));
  [serverA] = await Promise.all([startMariaDb({ dir }), setupControlStore({ control: { url: controlUrl } })]);
  control = createMysqlPool(controlUrl);
  await onServer(
    serverA.url,
    `CREATE DATABASE ${quoteId(dbOf(0))}`,
    `USE ${quoteId(dbOf(0))}`,
    TABLE_DDL,
    `CREATE USER '${WRITER_USER}'@'%' IDENTIFIED BY '${WRITER_PASSWORD}'`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ${quoteId(dbOf(0))}.* TO '${WRITER_USER}'@'%'`,
  );
  await onServer(urls.shardB, `CREATE DATABASE ${quoteId(dbOf(1))}`, `USE ${quoteId(dbOf(1))}`, TABLE_DDL);
});

afterAll(async () => {
  await control?.end();
  await onServer(urls.legacy, `DROP DATABASE IF EXISTS ${quoteId(`${prefix}_control`)}`).catch(() => {});
  await onServer(urls.shardB, `DROP DATABASE IF EXISTS ${quoteId(dbOf(1))}`).catch(() => {});
  await serverA?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('apply and parking-lot replay on real servers: a write the server cannot take now waits; only a refused row is dead-lettered', () => {
  afterEach(async () => {
    const undo = cleanups.reverse();
    cleanups = [];
    for (const u of undo) await u();
  });

  beforeEach(async () => {
    await onServer(serverA.url, `DELETE FROM ${quoteId(dbOf(0))}.member`);
    await onServer(urls.shardB, `DELETE FROM ${quoteId(dbOf(1))}.member`);
    await control.query('DELETE FROM cdc_parked');
    await control.query('DELETE FROM dead_letters');
  });

  const events = [upsert(2, 'two', 1), upsert(3, 'three', 2), upsert(4, 'four', 3)];

  for (const kind of KINDS) {
    it(`${kind.code} (${kind.how}): apply parks server A's writes, server B goes on; the drainer waits it out and replays them`, async () => {
      const writer = undoAfter(watched(createShardWriter(shardConfig(), { lockWaitSeconds: kind.lockWaitSeconds })), (w) => w.close());
      const { lot, drained } = parkingLot(writer);
      const outage = undoAfter(kind.outage(), (o) => o.end());
      await outage.begin();
      const result = await applyChanges({ writer, specs, logger: silentLogger, parking: lot }, events);
      expect(result).toEqual({ writes: 1, parked: 2, failed: [], held: [] });
      expect(await rowsOf(1)).toEqual([['3', 'three']]); // server B went on
      // The drainer started by park() meets the same error: the writes stay parked, in order.
      await until('the drainer to meet the error', () => writer.errors.length >= 2);
      expect(await parkedFor(A)).toEqual([
        ['upsert', ['2', 'two']],
        ['upsert', ['4', 'four']],
      ]);
      await outage.end();
      await drained;
      expect(await rowsOf(0)).toEqual([
        ['2', 'two'],
        ['4', 'four'],
      ]);
      expect(await parkedFor(A)).toEqual([]);
      expect(await deadLetterCount()).toBe(0);
      expect(writer.errors.every((e) => e.server === A && e.code === kind.code)).toBe(true);
    });

    it(`${kind.code} (${kind.how}): without a parking lot, apply retries server A until it takes the writes; server B goes on`, async () => {
      const outage = kind.outage();
      let lifted: Promise<void> | undefined;
      let liftFailed: unknown;
      // At server A's first real error: once server B's row is there (it did not wait for A), lift the outage.
      const writer = watched(createShardWriter(shardConfig(), { lockWaitSeconds: kind.lockWaitSeconds }), () => {
        lifted ??= (async () => {
          await until("server B's row", async () => (await rowsOf(1)).length === 1);
          await outage.end();
        })().catch((e: unknown) => void (liftFailed = e ?? new Error('lifting the outage failed')));
      });
      undoAfter(writer, (w) => w.close());
      undoAfter(outage, (o) => o.end());
      await outage.begin();
      const stopIfStuck = () => liftFailed !== undefined;
      const result = await applyChanges({ writer, specs, logger: silentLogger, backoffMs: BACKOFF, shouldStop: stopIfStuck }, events).catch((e: unknown) => {
        throw liftFailed ?? e;
      });
      await lifted;
      expect(result).toEqual({ writes: 3, parked: 0, failed: [], held: [] });
      expect(await rowsOf(0)).toEqual([
        ['2', 'two'],
        ['4', 'four'],
      ]);
      expect(await rowsOf(1)).toEqual([['3', 'three']]);
      expect(writer.errors.length).toBeGreaterThan(0);
      expect(writer.errors.every((e) => e.server === A && e.code === kind.code)).toBe(true);
    });
  }

  it('a process that lost its partitions while its writes failed parks nothing: the check before the first write is made again before parking', async () => {
    const kind = KINDS[0]!;
    const writer = undoAfter(watched(createShardWriter(shardConfig(), { lockWaitSeconds: kind.lockWaitSeconds })), (w) => w.close());
    const { lot } = parkingLot(writer);
    const outage = undoAfter(kind.outage(), (o) => o.end());
    await outage.begin();
    let checks = 0;
    // Still a member before the first write; no longer once the failed writes come back (a rebalance meanwhile).
    const stillMember = async () => {
      if (++checks > 1) throw new Error('The coordinator is not aware of this member');
    };
    await expect(applyChanges({ writer, specs, logger: silentLogger, parking: lot }, events, stillMember)).rejects.toThrow('not aware of this member');
    expect(checks).toBe(2);
    expect(await parkedFor(A)).toEqual([]);
    await lot.stop();
  });

  it('ER_DATA_TOO_LONG: apply returns only the refused event to dead-letter; the rest applies, nothing is parked', async () => {
    const writer = undoAfter(watched(createShardWriter(shardConfig())), (w) => w.close());
    const { lot } = parkingLot(writer);
    const result = await applyChanges({ writer, specs, logger: silentLogger, parking: lot }, [upsert(2, 'two', 1), upsert(4, 'too long', 2), upsert(3, 'three', 3)]);
    expect(result.failed.map((f) => f.event.origin.offset)).toEqual(['2']);
    expect(result.failed[0]!.reason).toMatch(/refused the upsert: Data too long for column 'name'/);
    expect(result.writes).toBe(2);
    expect(result.parked).toBe(0);
    // Shard 0's two-row statement, then the bad row alone.
    expect(writer.errors).toEqual([
      { server: A, code: 'ER_DATA_TOO_LONG' },
      { server: A, code: 'ER_DATA_TOO_LONG' },
    ]);
    expect(await rowsOf(0)).toEqual([['2', 'two']]);
    expect(await rowsOf(1)).toEqual([['3', 'three']]);
    expect(await parkedFor(A)).toEqual([]);
  });

  it('ER_DATA_TOO_LONG: the drainer dead-letters only the parked write the server refuses, and replays the rest', async () => {
    const writer = undoAfter(watched(createShardWriter(shardConfig())), (w) => w.close());
    const { lot, drained } = parkingLot(writer);
    const write = (id: number, name: string): ParkedWrite => ({ table: 'member', shard: 0, op: 'upsert', values: [String(id), name], origin: { source: 't', partition: 0, offset: String(id) } });
    await lot.park(A, [write(2, 'two'), write(4, 'too long'), write(6, 'six')]);
    await drained;
    const dead = await openDeadLetters(control);
    expect(dead.map((d) => [d.source, d.partition, d.offset, d.table])).toEqual([['t', 0, '4', 'member']]);
    expect(dead[0]!.reason).toMatch(/parked upsert for shard 0 refused: Data too long for column 'name'/);
    expect(writer.errors.every((e) => e.code === 'ER_DATA_TOO_LONG')).toBe(true);
    expect(await rowsOf(0)).toEqual([
      ['2', 'two'],
      ['6', 'six'],
    ]);
    expect(await parkedFor(A)).toEqual([]);
  });
});

describe('apply on a server holding many shards: once one write finds it down, the works still queued are parked untried', () => {
  // Ten shards on server A (mod 11: shards 0-9), one on server B; apply writes 4 shards at a time per server.
  const SHARDS_ON_A = 10;
  const manyDb = (shard: number) => `${prefix}_m${shard}`;
  const manyShards = (): Pick<Config, 'servers' | 'shards'> => {
    const { servers } = shardConfig();
    return {
      servers,
      shards: {
        count: SHARDS_ON_A + 1,
        function: 'mod',
        database: `${prefix}_m{shard}`,
        placement: [
          { shards: `0-${SHARDS_ON_A - 1}`, server: A },
          { shards: String(SHARDS_ON_A), server: B },
        ],
      },
    };
  };

  beforeAll(async () => {
    for (let shard = 0; shard < SHARDS_ON_A; shard++) {
      await onServer(
        serverA.url,
        `CREATE DATABASE ${quoteId(manyDb(shard))}`,
        `CREATE TABLE ${quoteId(manyDb(shard))}.member (id INT NOT NULL PRIMARY KEY, name VARCHAR(5) NULL) ENGINE=InnoDB`,
        `GRANT SELECT, INSERT, UPDATE, DELETE ON ${quoteId(manyDb(shard))}.* TO '${WRITER_USER}'@'%'`,
      );
    }
    await onServer(urls.shardB, `CREATE DATABASE ${quoteId(manyDb(SHARDS_ON_A))}`, `CREATE TABLE ${quoteId(manyDb(SHARDS_ON_A))}.member (id INT NOT NULL PRIMARY KEY, name VARCHAR(5) NULL) ENGINE=InnoDB`);
  });

  afterAll(async () => {
    await onServer(urls.shardB, `DROP DATABASE IF EXISTS ${quoteId(manyDb(SHARDS_ON_A))}`).catch(() => {});
  });

  afterEach(async () => {
    const undo = cleanups.reverse();
    cleanups = [];
    for (const u of undo) await u();
    await control.query('DELETE FROM cdc_parked');
  });

  it('read_only on A: at most the 4 writes already started meet it, all 10 of its shards are parked in order, B is written; replayed once A takes writes', async () => {
    const writer = undoAfter(watched(createShardWriter(manyShards(), { lockWaitSeconds: 1 })), (w) => w.close());
    const { lot, drained } = parkingLot(writer);
    const outage = undoAfter(readOnly(), (o) => o.end());
    await outage.begin();
    let triedBeforeParking = -1;
    const events = Array.from({ length: SHARDS_ON_A + 1 }, (_, id) => upsert(id, `n${id}`, id + 1));
    const result = await applyChanges(
      { writer, specs, logger: silentLogger, parking: lot, onServerDown: (server) => server === A && (triedBeforeParking = writer.errors.length) },
      events,
    );
    expect(result).toEqual({ writes: 1, parked: SHARDS_ON_A, failed: [], held: [] });
    // Without the rule each of the 10 works would have tried A (and, on a hung server, waited out its timeout).
    expect(triedBeforeParking).toBeGreaterThanOrEqual(1);
    expect(triedBeforeParking).toBeLessThanOrEqual(4);
    expect((await parkedFor(A)).map(([, values]) => values)).toEqual(Array.from({ length: SHARDS_ON_A }, (_, id) => [String(id), `n${id}`]));
    const onB = await onServer(urls.shardB, `SELECT id, name FROM ${quoteId(manyDb(SHARDS_ON_A))}.member`);
    expect(onB.map((r) => [r.id, r.name])).toEqual([[SHARDS_ON_A, `n${SHARDS_ON_A}`]]);
    await outage.end();
    await drained;
    for (let shard = 0; shard < SHARDS_ON_A; shard++) {
      expect(await onServer(serverA.url, `SELECT id, name FROM ${quoteId(manyDb(shard))}.member`)).toEqual([{ id: shard, name: `n${shard}` }]);
    }
    expect(await parkedFor(A)).toEqual([]);
  });
});

describe("a row over a shard server's max_allowed_packet is refused and dead-lettered alone, not taken for the server down", () => {
  // Server A takes packets of 1 MB: it drops the connection of a longer statement, which reads as ECONNRESET (transient).
  const doc: TableSpec = {
    ...spec,
    name: 'doc',
    target: 'doc',
    columns: [spec.columns[0]!, { source: 'body', target: 'body', sourceType: { dataType: 'longtext' }, targetType: 'LONGTEXT', nullable: true }],
  };
  const docSpecs = new Map([[doc.name, doc]]);
  const DOC_DDL = 'CREATE TABLE doc (id INT NOT NULL PRIMARY KEY, body LONGTEXT CHARACTER SET utf8mb4 NULL) ENGINE=InnoDB';
  const body = (id: number) => (id === 4 ? 'x'.repeat(1100 * 1024) : `body ${id}`);
  const docUpsert = (id: number): ChangeEvent => ({ table: 'doc', op: 'upsert', key: { id: String(id) }, after: { id: String(id), body: body(id) }, origin: { source: 't', partition: 0, offset: String(id) } });
  const docIds = async (shard: number) => (await onServer(shard === 0 ? serverA.url : urls.shardB, `SELECT id FROM ${quoteId(dbOf(shard))}.doc ORDER BY id`)).map((r) => Number(r.id));

  beforeAll(async () => {
    await onServer(serverA.url, `USE ${quoteId(dbOf(0))}`, DOC_DDL, 'SET GLOBAL max_allowed_packet = 1048576');
    await onServer(urls.shardB, `USE ${quoteId(dbOf(1))}`, DOC_DDL);
  });
  afterAll(async () => {
    await onServer(serverA.url, 'SET GLOBAL max_allowed_packet = 16777216');
  });
  beforeEach(async () => {
    await onServer(serverA.url, `DELETE FROM ${quoteId(dbOf(0))}.doc`);
    await onServer(urls.shardB, `DELETE FROM ${quoteId(dbOf(1))}.doc`);
    await control.query('DELETE FROM cdc_parked');
    await control.query('DELETE FROM dead_letters');
  });
  afterEach(async () => {
    const undo = cleanups.reverse();
    cleanups = [];
    for (const u of undo) await u();
  });

  it('apply: only the event of the row too large fails, with why; the rest of server A and server B are written, nothing is parked', async () => {
    const writer = undoAfter(createShardWriter(shardConfig()), (w) => w.close());
    const { lot } = parkingLot(writer, docSpecs);
    const result = await applyChanges({ writer, specs: docSpecs, logger: silentLogger, parking: lot }, [2, 4, 3, 6].map(docUpsert));
    expect(result.failed.map((f) => f.event.origin.offset)).toEqual(['4']);
    expect(result.failed[0]!.reason).toMatch(/doc shard 0 .* refused the upsert: the upsert of doc key 4 takes \d+ bytes of SQL, over the server's max_allowed_packet of 1048576 bytes/);
    expect({ writes: result.writes, parked: result.parked }).toEqual({ writes: 3, parked: 0 });
    expect(await docIds(0)).toEqual([2, 6]);
    expect(await docIds(1)).toEqual([3]);
    expect(await parkedFor(A)).toEqual([]);
  });

  it('the drainer: a parked write too large for the server is dead-lettered, the others are replayed', async () => {
    const writer = undoAfter(createShardWriter(shardConfig()), (w) => w.close());
    const { lot, drained } = parkingLot(writer, docSpecs);
    const write = (id: number): ParkedWrite => ({ table: 'doc', shard: 0, op: 'upsert', values: [String(id), body(id)], origin: { source: 't', partition: 0, offset: String(id) } });
    await lot.park(A, [write(2), write(4), write(6)]);
    await drained;
    const dead = await openDeadLetters(control);
    expect(dead.map((d) => [d.offset, d.table])).toEqual([['4', 'doc']]);
    expect(dead[0]!.reason).toMatch(/max_allowed_packet of 1048576 bytes/);
    expect(await docIds(0)).toEqual([2, 6]);
    expect(await parkedFor(A)).toEqual([]);
  });

  it('a control store on such a server: parked writes and dead letters of large rows go in INSERTs it takes; one it cannot take is refused by name', async () => {
    const smallControlUrl = Object.assign(new URL(serverA.url), { pathname: `/${prefix}_small_control` }).toString();
    await setupControlStore({ control: { url: smallControlUrl } });
    const smallControl = undoAfter(createMysqlPool(smallControlUrl), (p) => p.end());
    const lot = new ParkingLot(smallControl, silentLogger, { writer: undoAfter(createShardWriter(shardConfig()), (w) => w.close()), specs: docSpecs, deadLetter: async () => {}, onDrained: () => {} }, BACKOFF);
    await lot.stop(); // parks only: no drainer replays them here
    // Ten rows of 300 KB: 3 MB in all, 6 MB as hex, where the server takes 1 MB a statement.
    const raw = (i: number, kb: number) => Buffer.alloc(kb * 1024, 0x30 + i);
    const poison = (i: number, kb: number) => ({ origin: { source: 't', partition: 0, offset: String(i) }, table: 'doc', messageKey: null, rawValue: raw(i, kb), reason: 'test' });
    await recordDeadLetters(smallControl, Array.from({ length: 10 }, (_v, i) => poison(i, 300)));
    const dead = await openDeadLetters(smallControl);
    expect(dead.map((d) => [d.offset, d.rawValue!.equals(raw(Number(d.offset), 300))])).toEqual(Array.from({ length: 10 }, (_v, i) => [String(i), true]));
    await expect(recordDeadLetters(smallControl, [poison(10, 600)])).rejects.toThrow(/^the dead letter of t partition 0 offset 10 \(into the control store\) takes \d+ bytes of SQL, over the server's max_allowed_packet of 1048576 bytes/);
    await lot.park(A, Array.from({ length: 10 }, (_v, i) => ({ table: 'doc', shard: 0, op: 'upsert' as const, values: [String(i), 'y'.repeat(300 * 1024)], origin: null })));
    const [parked] = await smallControl.query<RowDataPacket[]>('SELECT COUNT(*) AS n, SUM(LENGTH(data)) AS bytes FROM cdc_parked WHERE server = ?', [A]);
    expect(Number(parked[0]!.n)).toBe(10);
    expect(Number(parked[0]!.bytes)).toBeGreaterThan(3_000_000);
    await onServer(serverA.url, `DROP DATABASE ${quoteId(`${prefix}_small_control`)}`);
  });
});
