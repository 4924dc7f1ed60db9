import { randomBytes } from 'node:crypto';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { scratchControlStore } from '../../test/support/scratch-control.js';
import type { Config } from '../config/schema.js';
import { silentLogger } from '../log.js';
import { connectMysql, quoteId } from '../mysql/connect.js';
import type { TableSpec } from '../rows/types.js';
import { createShardWriter, type ShardWriter } from '../target/writer.js';
import { applyChanges } from './apply.js';
import { parkedDelete, ParkingLot } from './parking.js';
import type { ChangeEvent } from './types.js';

/**
 * A delete carries its before image's updated_at and keeps a row stored with a newer one: a late
 * delete (a replay after a crash, a fenced process's write, legacy's event of a dual write's
 * delete arriving after the member created the row again in MySQL) must not remove the newer row.
 * Real shard servers (shard 0 on shardA, shard 1 on shardB), the real writer, apply path and
 * parking lot (on a scratch control store).
 */

const tag = randomBytes(4).toString('hex');
const dbOf = (shard: number) => `mmlate_${tag}_s${shard}`;
const urls = inject('mysql');
const control = scratchControlStore('late_delete');

const spec: TableSpec = {
  name: 'member',
  sourceSchema: 'dbo',
  sourceTable: 'Member',
  target: 'member',
  primaryKey: ['id'],
  shardKey: 'city',
  updatedAt: 'updated_at',
  columns: [
    { source: 'id', target: 'id', sourceType: { dataType: 'int' }, targetType: 'INT', nullable: false },
    { source: 'city', target: 'city', sourceType: { dataType: 'int' }, targetType: 'INT', nullable: false },
    { source: 'updated_at', target: 'updated_at', sourceType: { dataType: 'datetime2', scale: 6 }, targetType: 'DATETIME(6)', nullable: true },
  ],
};
const specs = new Map([[spec.name, spec]]);
const config: Pick<Config, 'servers' | 'shards'> = {
  servers: {
    a: { primary: urls.shardA, replicas: [], max_connections: 2 },
    b: { primary: urls.shardB, replicas: [], max_connections: 2 },
  },
  shards: { count: 2, function: 'mod', database: `mmlate_${tag}_s{shard}`, placement: [{ shards: '0', server: 'a' }, { shards: '1', server: 'b' }] },
};

let writer: ShardWriter;
let controlPool: Pool;

async function onShard(shard: number, sql: string, values: unknown[] = []): Promise<RowDataPacket[]> {
  const conn = await connectMysql(shard === 0 ? urls.shardA : urls.shardB);
  try {
    return (await conn.query<RowDataPacket[]>(sql, values))[0];
  } finally {
    await conn.end();
  }
}

/** A shard's rows as `id@updated_at` (or `id@null`). */
async function rowsOf(shard: number): Promise<string[]> {
  const rows = await onShard(shard, `SELECT id, DATE_FORMAT(updated_at, '%Y-%m-%d %H:%i:%s.%f') AS at FROM ${quoteId(dbOf(shard))}.member ORDER BY id`);
  return rows.map((r) => `${r.id}@${r.at}`);
}

const T0 = '2026-11-29 10:00:00.000000';
const T1 = '2026-11-29 10:00:00.000001';
const T2 = '2026-11-29 10:00:00.000002';
const origin = { source: 'legacy.member', partition: 0, offset: '1' };

const deleteOf = (id: number, city: number, beforeUpdatedAt?: string | null): ChangeEvent => ({
  table: 'member',
  op: 'delete',
  key: { id: String(id) },
  after: null,
  beforeShardKey: String(city),
  ...(beforeUpdatedAt !== undefined ? { beforeUpdatedAt } : {}),
  origin,
});

beforeAll(async () => {
  controlPool = await control.open();
  for (const shard of [0, 1]) {
    await onShard(shard, `CREATE DATABASE ${quoteId(dbOf(shard))}`);
    await onShard(shard, `CREATE TABLE ${quoteId(dbOf(shard))}.member (id INT NOT NULL PRIMARY KEY, city INT NOT NULL, updated_at DATETIME(6) NULL) ENGINE=InnoDB`);
  }
  writer = createShardWriter(config);
});

afterAll(async () => {
  await writer?.close();
  for (const shard of [0, 1]) await onShard(shard, `DROP DATABASE IF EXISTS ${quoteId(dbOf(shard))}`).catch(() => undefined);
  await control.drop();
});

beforeEach(async () => {
  for (const shard of [0, 1]) await onShard(shard, `DELETE FROM ${quoteId(dbOf(shard))}.member`);
  // Shard 0 (even cities): 1 stored at T2, 2 at T1, 3 with no updated_at, 4 at T2.
  await writer.upsertRows(0, spec, [['1', '10', T2], ['2', '10', T1], ['3', '10', null], ['4', '10', T2]]);
});

describe('a delete keeps a row stored with a newer updated_at than its before image', () => {
  it('apply: a delete older than the stored row leaves it, and says so; as old or older, or a NULL on either side, deletes', async () => {
    const kept: [string, number][] = [];
    const onDeletesKept = (table: string, count: number) => void kept.push([table, count]);
    // Key 5 is not there at all (a replayed delete): not a kept row.
    await applyChanges({ writer, specs, logger: silentLogger, onDeletesKept }, [deleteOf(1, 10, T1), deleteOf(2, 10, T1), deleteOf(3, 10, T1), deleteOf(4, 10, null), deleteOf(5, 10, T1)]);
    expect(await rowsOf(0)).toEqual([`1@${T2}`]);
    expect(kept).toEqual([['member', 1]]);
    // Without a before image's time (a key-only delete), the key goes whatever its time.
    await applyChanges({ writer, specs, logger: silentLogger }, [deleteOf(1, 10)]);
    expect(await rowsOf(0)).toEqual([]);
  });

  it('apply: a replayed shard move leaves the row the key moved back with (newer) on the old shard', async () => {
    // Row 1 (at T0) moved 10 -> 11 at T1 and back 11 -> 10 at T2, both applied; the first move is replayed.
    const replayed: ChangeEvent = { table: 'member', op: 'upsert', key: { id: '1' }, after: { id: '1', city: '11', updated_at: T1 }, beforeShardKey: '10', beforeUpdatedAt: T0, origin };
    await applyChanges({ writer, specs, logger: silentLogger }, [replayed]);
    expect((await rowsOf(0))[0]).toBe(`1@${T2}`);
    // Its own move back, replayed next, takes the stray copy off shard 1 again.
    const back: ChangeEvent = { table: 'member', op: 'upsert', key: { id: '1' }, after: { id: '1', city: '10', updated_at: T2 }, beforeShardKey: '11', beforeUpdatedAt: T1, origin };
    await applyChanges({ writer, specs, logger: silentLogger }, [back]);
    expect(await rowsOf(1)).toEqual([]);
    expect((await rowsOf(0))[0]).toBe(`1@${T2}`);
  });

  it('apply: a delete and a re-insert older than the deleted row give the same row in one batch as in two', async () => {
    // Row 1 is stored at T2; legacy deletes it, then a restore (or a writer whose clock runs behind) inserts it at T1.
    const reinsert: ChangeEvent = { table: 'member', op: 'upsert', key: { id: '1' }, after: { id: '1', city: '10', updated_at: T1 }, origin };
    const kept: [string, number][] = [];
    const onDeletesKept = (table: string, count: number) => void kept.push([table, count]);
    await applyChanges({ writer, specs, logger: silentLogger, onDeletesKept }, [deleteOf(1, 10, T2), reinsert]);
    expect((await rowsOf(0))[0]).toBe(`1@${T1}`); // collapsed to the upsert alone, keep-newer kept the deleted row (T2)
    // Replayed: the delete keeps the re-inserted row (T1 is newer than T0's bound) but it is what the batch ends
    // with, so no kept delete is reported.
    await applyChanges({ writer, specs, logger: silentLogger, onDeletesKept }, [deleteOf(1, 10, T0), reinsert]);
    expect((await rowsOf(0))[0]).toBe(`1@${T1}`);
    expect(kept).toEqual([]);
  });

  it('parking: a parked delete keeps its bound through the control store; one parked without a bound deletes by key', async () => {
    const kept: [string, number][] = [];
    const onDeletesKept = (table: string, count: number) => void kept.push([table, count]);
    const lot = new ParkingLot(controlPool, silentLogger, { writer, specs, deadLetter: async () => undefined, onDeletesKept }, { first: 10, max: 50 });
    await lot.park('a', [
      { table: 'member', shard: 0, op: 'delete', values: parkedDelete(['1'], T1), origin: null },
      { table: 'member', shard: 0, op: 'delete', values: parkedDelete(['2'], T1), origin: null },
      { table: 'member', shard: 0, op: 'delete', values: parkedDelete(['4'], undefined), origin: null },
    ]);
    await lot.idle();
    await lot.stop();
    expect(await rowsOf(0)).toEqual([`1@${T2}`, '3@null']);
    expect(kept).toEqual([['member', 1]]);
  });
});
