import type { Pool } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../log.js';
import type { Row, RowValue, TableSpec } from '../rows/types.js';
import { createShardMap } from '../shard/map.js';
import type { ShardWriter } from '../target/writer.js';
import { applyChanges, type ApplyContext } from './apply.js';
import { ParkingLot, type ParkedWrite } from './parking.js';
import type { ChangeEvent, PoisonEvent } from './types.js';

/** An error as mysql2 reports a server's answer. */
function sqlError(code: string, errno: number, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code, errno, sqlState: 'HY000' });
}

const TRANSIENT = [
  sqlError('ER_LOCK_WAIT_TIMEOUT', 1205, 'Lock wait timeout exceeded; try restarting transaction'),
  sqlError('ER_LOCK_DEADLOCK', 1213, 'Deadlock found when trying to get lock; try restarting transaction'),
  sqlError('ER_QUERY_INTERRUPTED', 1317, 'Query execution was interrupted'),
  sqlError('ER_OPTION_PREVENTS_STATEMENT', 1290, 'The MySQL server is running with the --read-only option so it cannot execute this statement'),
];
const TOO_LONG = sqlError('ER_DATA_TOO_LONG', 1406, "Data too long for column 'name' at row 1");

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

// Two shards (mod 2): even ids on server a, odd ids on server b.
const map = createShardMap({
  count: 2,
  function: 'mod',
  database: 'member_{shard}',
  serverOf: ['a', 'b'],
  servers: { a: { name: 'a', primary: 'mysql://a', replicas: [] }, b: { name: 'b', primary: 'mysql://b', replicas: [] } },
});

/** A writer whose upserts fail as `fail` says (per shard and row), recording what it wrote. */
function fakeWriter(fail: (shard: number, rows: Row[]) => Error | undefined): ShardWriter & { written: RowValue[] } {
  const written: RowValue[] = [];
  return {
    map,
    written,
    async upsertRows(shard, _spec, rows) {
      const e = fail(shard as number, rows);
      if (e) throw e;
      written.push(...rows.map((r) => r[0]!));
    },
    async deleteKeys() {
      return 0;
    },
    loadShards: () => Promise.reject(new Error('not used')),
    loadBlocks: () => Promise.reject(new Error('not used')),
    poolOf: () => {
      throw new Error('not used');
    },
    close: async () => {},
  };
}

function upsert(id: number, name: string, offset: number): ChangeEvent {
  return { table: 'member', op: 'upsert', key: { id: String(id) }, after: { id: String(id), name }, origin: { source: 't', partition: 0, offset: String(offset) } };
}

/** A parking lot stand-in that only records what apply parks. */
function recordingParking(): ParkingLot & { parkedWrites: Map<string, ParkedWrite[]> } {
  const parkedWrites = new Map<string, ParkedWrite[]>();
  return {
    parkedWrites,
    hasParked: async (server: string) => parkedWrites.has(server),
    park: async (server: string, writes: ParkedWrite[]) => void parkedWrites.set(server, [...(parkedWrites.get(server) ?? []), ...writes]),
  } as unknown as ParkingLot & { parkedWrites: Map<string, ParkedWrite[]> };
}

describe('apply: a write the server cannot take now waits; only a refused row is dead-lettered', () => {
  const events = [upsert(2, 'two', 1), upsert(3, 'three', 2), upsert(4, 'four', 3)];

  for (const error of TRANSIENT) {
    it(`parks, never dead-letters, on ${error.code}`, async () => {
      const writer = fakeWriter((shard) => (shard === 0 ? error : undefined));
      const parking = recordingParking();
      const ctx: ApplyContext = { writer, specs: new Map([[spec.name, spec]]), logger: silentLogger, parking };
      const result = await applyChanges(ctx, events);
      expect(result.failed).toEqual([]);
      expect(result.parked).toBe(2);
      expect(parking.parkedWrites.get('a')?.map((w) => w.values[0])).toEqual(['2', '4']);
      expect(writer.written).toEqual(['3']); // server b goes on
    });

    it(`without a parking lot, retries the server on ${error.code} until it takes the write`, async () => {
      let attempts = 0;
      const writer = fakeWriter((shard) => (shard === 0 && attempts++ < 2 ? error : undefined));
      const ctx: ApplyContext = { writer, specs: new Map([[spec.name, spec]]), logger: silentLogger, backoffMs: { first: 1, max: 1 } };
      const result = await applyChanges(ctx, events);
      expect(result.failed).toEqual([]);
      expect(result.writes).toBe(3);
      expect(writer.written.sort()).toEqual(['2', '3', '4']);
    });
  }

  it('dead-letters only the row the server refused (data too long); the rest applies', async () => {
    const writer = fakeWriter((_shard, rows) => (rows.some((r) => (r[1] as string).length > 5) ? TOO_LONG : undefined));
    const parking = recordingParking();
    const ctx: ApplyContext = { writer, specs: new Map([[spec.name, spec]]), logger: silentLogger, parking };
    const result = await applyChanges(ctx, [upsert(2, 'two', 1), upsert(4, 'too long', 2), upsert(3, 'three', 3)]);
    expect(result.failed.map((f) => f.event.origin.offset)).toEqual(['2']);
    expect(result.failed[0]!.reason).toMatch(/refused the upsert: Data too long/);
    expect(result.parked).toBe(0);
    expect(writer.written.sort()).toEqual(['2', '3']);
  });
});

/** Just enough of a mysql2 pool for the parking lot: cdc_parked rows in memory, named locks always granted. */
function fakeControlPool(parked: { id: number; table_name: string; shard: number; op: string; data: string; origin: string | null }[]): Pool {
  const query = async (sql: string, params: unknown[] = []): Promise<[unknown[], unknown]> => {
    if (sql.includes('GET_LOCK')) return [[{ got: 1 }], []];
    if (sql.includes('RELEASE_LOCK')) return [[], []];
    if (sql.startsWith('SELECT id, table_name')) return [parked.slice(0, 1000), []];
    if (sql.startsWith('SELECT 1 FROM cdc_parked')) return [parked.length > 0 ? [{ 1: 1 }] : [], []];
    if (sql.startsWith('DELETE FROM cdc_parked')) {
      const upTo = Number(params[1]);
      parked.splice(0, parked.filter((r) => r.id <= upTo).length);
      return [[], []];
    }
    throw new Error(`unexpected query ${sql}`);
  };
  return { query, getConnection: async () => ({ query, release: () => {} }) } as unknown as Pool;
}

describe('parking lot replay: the same rule', () => {
  const parkedRow = (id: number, name: string) => ({ id, table_name: 'member', shard: 0, op: 'upsert', data: JSON.stringify([String(id), name]), origin: JSON.stringify({ source: 't', partition: 0, offset: String(id) }) });

  async function drain(writer: ShardWriter, rows: ReturnType<typeof parkedRow>[]): Promise<PoisonEvent[]> {
    const deadLettered: PoisonEvent[] = [];
    let drained!: () => void;
    const done = new Promise<void>((resolve) => (drained = resolve));
    const lot = new ParkingLot(fakeControlPool(rows), silentLogger, { writer, specs: new Map([[spec.name, spec]]), deadLetter: async (p) => void deadLettered.push(p), onDrained: () => drained() }, { first: 1, max: 1 });
    lot.drain('a');
    await done;
    await lot.stop();
    return deadLettered;
  }

  for (const error of TRANSIENT) {
    it(`waits and replays again on ${error.code}, never dead-letters`, async () => {
      let attempts = 0;
      const writer = fakeWriter(() => (attempts++ < 3 ? error : undefined));
      const rows = [parkedRow(2, 'two'), parkedRow(4, 'four')];
      expect(await drain(writer, rows)).toEqual([]);
      expect(writer.written).toEqual(['2', '4']);
      expect(rows).toEqual([]);
    });
  }

  it('dead-letters a parked row the server refuses, and replays the rest', async () => {
    const writer = fakeWriter((_shard, rows) => (rows.some((r) => (r[1] as string).length > 5) ? TOO_LONG : undefined));
    const dead = await drain(writer, [parkedRow(2, 'two'), parkedRow(4, 'too long'), parkedRow(6, 'six')]);
    expect(dead.map((d) => d.origin.offset)).toEqual(['4']);
    expect(dead[0]!.reason).toMatch(/refused: Data too long/);
    expect(writer.written).toEqual(['2', '6']);
  });
});
