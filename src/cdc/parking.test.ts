import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scratchControlStore } from '../../test/support/scratch-control.js';
import { silentLogger } from '../log.js';
import type { Row, RowValue, TableSpec } from '../rows/types.js';
import type { ShardWriter } from '../target/writer.js';
import { PassThrough } from 'node:stream';
import { createLogger } from '../log.js';
import { databaseOf, storeLockName } from '../store/lock-name.js';
import { ParkingLot, waitingForParked, type ParkedWrite } from './parking.js';

/**
 * The parking lot against a real control store (a scratch database on the test MariaDB server):
 * a park() that races the end of the server's drainer must still end with its rows replayed.
 * The races are made deterministic by running the test's park() inside the drainer's last steps.
 */

const spec: TableSpec = {
  name: 'member',
  sourceSchema: 'dbo',
  sourceTable: 'Member',
  target: 'member',
  primaryKey: ['id'],
  shardKey: 'id',
  columns: [{ source: 'id', target: 'id', sourceType: { dataType: 'int' }, targetType: 'INT', nullable: false }],
};

/** The shard side is not under test: a writer that records what it was given. */
function recordingWriter(): ShardWriter & { written: RowValue[] } {
  const written: RowValue[] = [];
  return {
    written,
    async upsertRows(_shard: number, _spec: TableSpec, rows: Row[]) {
      written.push(...rows.map((r) => r[0]!));
    },
    async deleteKeys() {
      return 0;
    },
  } as unknown as ShardWriter & { written: RowValue[] };
}

const write = (id: string): ParkedWrite => ({ table: 'member', shard: 0, op: 'upsert', values: [id], origin: null });

/** The real pool, with `before` run ahead of every statement sent on it or on its connections. */
function hooked(pool: Pool, before: (sql: string) => Promise<void>): Pool {
  const query = async (sql: string, params?: unknown[]) => {
    await before(sql);
    return pool.query(sql, params);
  };
  return {
    query,
    getConnection: async () => {
      const conn = await pool.getConnection();
      return {
        query: async (sql: string, params?: unknown[]) => {
          await before(sql);
          return conn.query(sql, params);
        },
        release: () => conn.release(),
      };
    },
  } as unknown as Pool;
}

/** Writes parked for a server, on the store. */
async function parkedCount(pool: Pool, server: string): Promise<number> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM cdc_parked WHERE server = ?', [server]);
  return Number(rows[0]!.n);
}

describe('parking lot: rows parked while the drainer finishes are drained', () => {
  const store = scratchControlStore('parking');
  let pool: Pool;

  beforeAll(async () => {
    pool = await store.open();
  });
  afterAll(() => store.drop());

  const parkedRows = (server: string) => parkedCount(pool, server);

  it('a process stopping starts no drainer: its parked writes wait for the next run instead of a replay against a hung server', async () => {
    const stopping = recordingWriter();
    const lot = new ParkingLot(pool, silentLogger, { writer: stopping, specs: new Map([[spec.name, spec]]), deadLetter: async () => {}, stopping: () => true }, { first: 1, max: 1 });
    await lot.park('e', [write('9')]);
    await lot.idle();
    await lot.stop();
    expect(stopping.written).toEqual([]);
    expect(await parkedRows('e')).toBe(1);
    const next = recordingWriter();
    const nextRun = new ParkingLot(pool, silentLogger, { writer: next, specs: new Map([[spec.name, spec]]), deadLetter: async () => {} }, { first: 1, max: 1 });
    await nextRun.resumeAll();
    await nextRun.idle();
    await nextRun.stop();
    expect(next.written).toEqual(['9']);
    expect(await parkedRows('e')).toBe(0);
  });

  it('a park() while the drainer releases its lock after finding nothing', async () => {
    const writer = recordingWriter();
    let raced = false;
    // The drainer's RELEASE_LOCK after a look that found nothing: the drainer is on its way out.
    const lot: ParkingLot = new ParkingLot(
      hooked(pool, async (sql) => {
        if (raced || !sql.includes('RELEASE_LOCK') || (await parkedRows('a')) > 0) return;
        raced = true;
        await lot.park('a', [write('1'), write('2')]);
      }),
      silentLogger,
      { writer, specs: new Map([[spec.name, spec]]), deadLetter: async () => {} },
      { first: 1, max: 1 },
    );
    lot.drain('a');
    await lot.idle();
    expect(raced).toBe(true);
    expect(writer.written).toEqual(['1', '2']);
    expect(await parkedRows('a')).toBe(0);
    await lot.stop();
  });

  it('a park() right after the drainer found that another process drained the server', async () => {
    const writer = recordingWriter();
    // Another process's drainer holds the server's lock; it finishes while ours checks for rows.
    const other = await pool.getConnection();
    try {
      const lockName = storeLockName(await databaseOf(pool), 'drain', 'b');
      await other.query('SELECT GET_LOCK(?, 0)', [lockName]);
      let raced = false;
      const lot = new ParkingLot(
        pool,
        silentLogger,
        { writer, specs: new Map([[spec.name, spec]]), deadLetter: async () => {} },
        { first: 1, max: 1 },
      );
      const probe = lot.hasParked.bind(lot);
      lot.hasParked = async (server) => {
        const found = await probe(server);
        if (!found && !raced) {
          raced = true;
          await other.query('SELECT RELEASE_LOCK(?)', [lockName]);
          await lot.park('b', [write('3')]);
        }
        return found;
      };
      lot.drain('b');
      await lot.idle();
      expect(raced).toBe(true);
      expect(writer.written).toEqual(['3']);
      expect(await parkedRows('b')).toBe(0);
      await lot.stop();
    } finally {
      other.release();
    }
  });
});

describe('parking lot: two control stores on one server (staging and production) drain a server of the same name apart', () => {
  const stores = [scratchControlStore('parking_one'), scratchControlStore('parking_two')];
  let pools: Pool[];
  beforeAll(async () => {
    pools = await Promise.all(stores.map((s) => s.open()));
  });
  afterAll(() => Promise.all(stores.map((s) => s.drop())));

  it("one store's drainer stuck on a hung server does not hold the other's back (the drain lock is per control store)", async () => {
    let unhang!: () => void;
    const hung = new Promise<void>((resolve) => (unhang = resolve));
    const stuck = { ...recordingWriter(), upsertRows: () => hung } as unknown as ShardWriter;
    const staging = new ParkingLot(pools[0]!, silentLogger, { writer: stuck, specs: new Map([[spec.name, spec]]), deadLetter: async () => {} }, { first: 1, max: 1 });
    const production = recordingWriter();
    const prod = new ParkingLot(pools[1]!, silentLogger, { writer: production, specs: new Map([[spec.name, spec]]), deadLetter: async () => {} }, { first: 1, max: 1 });
    try {
      await staging.park('shard-a', [write('1')]);
      await new Promise((r) => setTimeout(r, 200)); // staging's drainer holds its lock, waiting on the hung write
      await prod.park('shard-a', [write('2')]);
      for (const deadline = Date.now() + 5000; (await parkedCount(pools[1]!, 'shard-a')) > 0; ) {
        if (Date.now() > deadline) throw new Error("production's parked write was not drained while staging's drainer hung");
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(production.written).toEqual(['2']);
      expect(await parkedCount(pools[0]!, 'shard-a')).toBe(1);
    } finally {
      unhang();
      await Promise.all([staging.idle(), prod.idle()]);
      await Promise.all([staging.stop(), prod.stop()]);
    }
  });
});

describe('parking lot: a lower id committed late (another process parking for the server) is replayed', () => {
  const store = scratchControlStore('parking_late');
  let pool: Pool;

  beforeAll(async () => {
    pool = await store.open();
  });
  afterAll(() => store.drop());

  const parkedRows = (server: string) => parkedCount(pool, server);
  const lotOn = (on: Pool, writer: ShardWriter) => new ParkingLot(on, silentLogger, { writer, specs: new Map([[spec.name, spec]]), deadLetter: async () => {} }, { first: 1, max: 1 });

  /**
   * Another sync process's park(), left open: its row takes its id now (lower than ours) but is
   * seen only once `other` commits.
   */
  const openPark = async (other: PoolConnection, server: string, id: string) => {
    await other.query('BEGIN');
    await other.query("INSERT INTO cdc_parked (server, table_name, shard, op, data) VALUES (?, 'member', 0, 'upsert', ?)", [server, JSON.stringify([id])]);
  };

  /** Fails instead of waiting: the drainer must not wait for another process's open park(). */
  const within = <T>(ms: number, what: string, p: Promise<T>): Promise<T> =>
    Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms))]);

  it('committed between the drainer reading the rows and deleting them', async () => {
    const writer = recordingWriter();
    const other = await pool.getConnection();
    try {
      await openPark(other, 'c', 'late');
      let committed = false;
      const lot = lotOn(
        hooked(pool, async (sql) => {
          if (committed || !sql.startsWith('DELETE FROM cdc_parked')) return;
          committed = true;
          await other.query('COMMIT');
        }),
        writer,
      );
      await lot.park('c', [write('early')]);
      await lot.idle();
      expect(committed).toBe(true);
      // 'late' is replayed by the drainer's next round, once: not deleted along with 'early'.
      expect(writer.written).toEqual(['early', 'late']);
      expect(await parkedRows('c')).toBe(0);
      await lot.stop();
    } finally {
      await other.query('ROLLBACK');
      other.release();
    }
  });

  it('committed after a drain round that could not see it', async () => {
    const writer = recordingWriter();
    const other = await pool.getConnection();
    try {
      await openPark(other, 'd', 'late');
      const lot = lotOn(pool, writer);
      await lot.park('d', [write('early')]);
      await within(10_000, 'drain with a lower id uncommitted', lot.idle());
      expect(writer.written).toEqual(['early']);
      await other.query('COMMIT');
      lot.drain('d'); // as the other process's park() does after its insert
      await lot.idle();
      expect(writer.written).toEqual(['early', 'late']);
      expect(await parkedRows('d')).toBe(0);
      await lot.stop();
    } finally {
      await other.query('ROLLBACK');
      other.release();
    }
  });
});

describe('sync --until-caught-up waiting for parked writes', () => {
  it('says which servers it waits for, at most once per interval, and is done when nothing is parked', async () => {
    const out = new PassThrough();
    let logs = '';
    out.on('data', (d: Buffer) => (logs += d.toString()));
    const nothingParked = waitingForParked(createLogger('warn', out), 50);
    expect(nothingParked(new Map([['shard-b', 3]]))).toBe(false);
    expect(nothingParked(new Map([['shard-b', 3]]))).toBe(false);
    await new Promise((r) => setTimeout(r, 60));
    expect(nothingParked(new Map([['shard-b', 2]]))).toBe(false);
    expect(nothingParked(new Map())).toBe(true);
    const lines = logs.trim().split('\n').map((l) => JSON.parse(l) as { parked: Record<string, number>; msg: string });
    expect(lines.map((l) => l.parked)).toEqual([{ 'shard-b': 3 }, { 'shard-b': 2 }]);
    expect(lines[0]!.msg).toMatch(/waiting for their shard servers to take them/);
  });
});

describe('parking lot: wide rows (MEDIUMTEXT / LONGBLOB values of MBs)', () => {
  const store = scratchControlStore('parkwide');
  let pool: Pool;
  beforeAll(async () => {
    pool = await store.open();
  });
  afterAll(() => store.drop());

  const wideSpec: TableSpec = { ...spec, columns: [...spec.columns, { source: 'data', target: 'data', sourceType: { dataType: 'longblob' }, targetType: 'LONGBLOB', nullable: true }] };
  // 3 MB each, 4 MB as parked JSON (base64): ten are over the server's 16 MB max_allowed_packet.
  const wide = (i: number): ParkedWrite => ({ table: 'member', shard: 0, op: 'upsert', values: [String(i), Buffer.alloc(3 * 1024 * 1024, i)], origin: null });

  it('are parked in statements the control store takes, and drained a few MB at a time, not 1,000 rows at once', async () => {
    const written: number[] = [];
    const writer = {
      async upsertRows(_shard: number, _spec: TableSpec, rows: Row[]) {
        written.push(...rows.map((r) => Number(r[0])));
      },
      async deleteKeys() {
        return 0;
      },
    } as unknown as ShardWriter;
    let largestRead = 0;
    const measured = {
      ...hooked(pool, async () => {}),
      query: async (sql: string, params?: unknown[]) => {
        const result = await pool.query(sql, params);
        if (sql.includes('data') && sql.startsWith('SELECT') && Array.isArray(result[0])) {
          const bytes = (result[0] as RowDataPacket[]).reduce((n, r) => n + (typeof r.data === 'string' ? r.data.length : 0), 0);
          largestRead = Math.max(largestRead, bytes);
        }
        return result;
      },
    } as unknown as Pool;
    let drained = false;
    const lot = new ParkingLot(measured, silentLogger, { writer, specs: new Map([[wideSpec.name, wideSpec]]), deadLetter: async () => {}, stopping: () => !drained }, { first: 1, max: 1 });
    // Nothing drains while parking (stopping): the park is what is under test first.
    const parking = lot.park('w', Array.from({ length: 10 }, (_, i) => wide(i)));
    await Promise.race([parking, new Promise((_, reject) => setTimeout(() => reject(new Error('park() still waiting after 20 s')), 20_000))]);
    expect(await parkedCount(pool, 'w')).toBe(10);
    drained = true;
    lot.drain('w');
    await lot.idle();
    expect(written).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await parkedCount(pool, 'w')).toBe(0);
    // The whole backlog is 40 MB: a read holds a few rows' worth, whatever the 1,000-row limit allows.
    expect(largestRead).toBeLessThanOrEqual(12 * 1024 * 1024);
    await lot.stop();
  });
});
