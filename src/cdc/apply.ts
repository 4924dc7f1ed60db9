import pLimit from 'p-limit';
import type { Logger } from '../log.js';
import { isTransient, writeFindingRefusals } from '../mysql/retry.js';
import type { Row, RowValue, TableSpec } from '../rows/types.js';
import type { ShardMap } from '../shard/map.js';
import type { ShardWriter } from '../target/writer.js';
import { parkedDelete, SHARD_SERVER_BACKOFF_MS, type ParkedWrite, type ParkingLot } from './parking.js';
import { redoFromLegacy, type LegacyRows } from './legacy-redo.js';
import type { ChangeEvent } from './types.js';
import { valueText } from '../rows/convert.js';
import { shardKeyPosition } from '../rows/ddl.js';
import { queueKeyId } from '../store/repair-queue.js';
import { reportKeptDeletes } from './kept-deletes.js';

/**
 * The one apply path for change events, shared by the Kafka consumer (Debezium) and the direct
 * SQL Server CDC source. A batch of events in log order becomes, per key, its last effect on each
 * shard (an upsert of the final row, or a delete), then one delete and one upsert statement per
 * shard through the shard writer, servers in parallel. Every write is idempotent, so replaying a
 * batch (after a crash, a rebalance or from full's start position) converges to the same rows.
 *
 * A shard-key change moves the row: delete from the old shard, upsert into the new one.
 * A failed write is one of two things, told apart by one rule (isTransient, src/mysql/retry.ts,
 * also used by the parking lot's replay):
 * - the server cannot take writes now (unreachable, a lock wait timeout or deadlock behind an
 *   ALTER, a killed query, read-only during a failover): its writes are parked
 *   (src/cdc/parking.ts) and replayed in order when it takes them again; the batch completes and
 *   other servers go on. Without a parking lot, the batch waits for the server, retrying with
 *   backoff until it takes them or `shouldStop()` says so. Never dead-lettered.
 * - the server refused the row (a value too long or out of range, a constraint, a missing
 *   table): only the events it came from fail, returned to be dead-lettered; the rest applies.
 */

export interface ApplyContext {
  writer: ShardWriter;
  /** Table specs by logical name. */
  specs: Map<string, TableSpec>;
  logger: Logger;
  /** Checked between retries of a server that cannot take writes. */
  shouldStop?: () => boolean;
  /** First and longest wait between retries of a server that cannot take writes. */
  backoffMs?: { first: number; max: number };
  /**
   * Where writes for a server that cannot take them now wait, durably, so the batch can complete
   * and the other servers go on. Without one, the batch waits for the server (retrying with backoff).
   */
  parking?: ParkingLot;
  /**
   * Deletes that kept the row: the shard holds it with a newer updated_at than the delete's before
   * image (a late event, or a writer whose clock runs behind). Logged; for the metrics.
   */
  onDeletesKept?: (table: string, count: number) => void;
  /** Called while a server is being retried (for status and metrics). */
  onServerDown?: (server: string, error: string) => void;
  onServerUp?: (server: string) => void;
  /**
   * Per table, the ids (src/store/repair-queue.ts) of keys whose legacy row is behind MySQL: a
   * MySQL-primary write whose legacy write failed. Legacy's events for them are not applied: a
   * later write reaching both sides carries legacy's whole, older row, which would undo the
   * member's write that only MySQL has. verify --repair holds the same keys.
   */
  heldKeys?: (tables: string[]) => Promise<Map<string, Set<string>>>;
  /**
   * The legacy side, for events whose image is not to be trusted (ChangeEvent.recopy): their keys
   * are copied again from it (src/cdc/legacy-redo.ts). Without it such events apply as they are.
   */
  legacy?: LegacyRows;
}

export interface FailedChange {
  event: ChangeEvent;
  reason: string;
}

export interface ApplyResult {
  /** Row writes done (upserts + deletes) after collapsing. */
  writes: number;
  /** Row writes parked for a server that could not take them (durable; replayed in order when it can). */
  parked: number;
  failed: FailedChange[];
  /** Events not applied: their key's legacy row is behind MySQL (ApplyContext.heldKeys). */
  held: ChangeEvent[];
}

/** Thrown when `shouldStop()` turned true while a server could not take writes: nothing after it is durable. */
export class ApplyInterrupted extends Error {}

interface Write {
  op: 'upsert' | 'delete';
  row: Row | null;
  key: RowValue[];
  /** A delete's bound: a row stored with a newer updated_at is kept (DeleteOptions.notNewerThan). */
  notNewerThan?: RowValue;
  /** The event this write comes from (the key's last in the batch), to dead-letter if the target refuses it. */
  events: ChangeEvent[];
  /** An upsert's earlier delete of the key on the same shard in the batch: written too, before it (putWrite). */
  deleteFirst?: Write;
}

interface ShardWork {
  shard: number;
  spec: TableSpec;
  writes: Write[];
}

/**
 * Applies a batch. `beforeWrites` runs after the control-store and legacy look-ups, right before
 * the first shard write: what must still hold when the writes begin (sync: that this process still
 * owns the partitions, whose events another process may have applied since they were fetched).
 */
export async function applyChanges(ctx: ApplyContext, all: ChangeEvent[], beforeWrites?: () => Promise<void>): Promise<ApplyResult> {
  const failed: FailedChange[] = [];
  const { events: kept, held } = await withoutHeldKeys(ctx, all);
  const events = await withLegacyRedo(ctx, kept, failed);
  const byServer = worksByServer(ctx, finalWrites(ctx, events, failed));
  await beforeWrites?.();
  const outcomes = await Promise.all([...byServer].map(([server, works]) => writeServer(ctx, server, works, beforeWrites)));
  for (const o of outcomes) failed.push(...o.failed);
  return { writes: sum(outcomes.map((o) => o.writes)), parked: sum(outcomes.map((o) => o.parked)), failed, held };
}

/**
 * The batch with each event marked `recopy` replaced, in place, by what legacy holds for its key
 * now. When legacy cannot give the rows (a value it cannot convert), those events fail with why;
 * a legacy server that cannot answer fails the batch, which is applied again.
 */
async function withLegacyRedo(ctx: ApplyContext, events: ChangeEvent[], failed: FailedChange[]): Promise<ChangeEvent[]> {
  const marked = events.filter((e) => e.recopy !== undefined);
  if (marked.length === 0 || !ctx.legacy) return events;
  const redo = await redoFromLegacy(ctx.specs, ctx.legacy, marked);
  if (typeof redo === 'string') {
    for (const event of marked) failed.push({ event, reason: `${event.recopy}; copying it again from legacy failed: ${redo}` });
    return events.filter((e) => e.recopy === undefined);
  }
  const instead = new Map(marked.map((e, i) => [e, redo[i]!]));
  return events.flatMap((e) => instead.get(e) ?? [e]);
}

/** Table → key text → shard → the key's last effect on that shard in the batch. */
type FinalWrites = Map<string, Map<string, Map<number, Write>>>;

/** Collapses the batch into final writes; events that cannot be routed (or of unknown tables) go to `failed`. */
function finalWrites(ctx: ApplyContext, events: ChangeEvent[], failed: FailedChange[]): FinalWrites {
  const map = ctx.writer.map;
  const finals: FinalWrites = new Map();
  for (const event of events) {
    const spec = ctx.specs.get(event.table);
    if (!spec) {
      failed.push({ event, reason: `table ${event.table} is not in the config` });
      continue;
    }
    let perTable = finals.get(spec.name);
    if (!perTable) finals.set(spec.name, (perTable = new Map()));
    const keyValues = spec.primaryKey.map((k) => event.key[k] ?? null);
    const keyText = keyValues.map(valueKey).join('\u0000');
    let perShard = perTable.get(keyText);
    if (!perShard) perTable.set(keyText, (perShard = new Map()));
    try {
      if (event.op === 'upsert') {
        const row = rowOf(spec, event);
        const target = shardOf(map, row[shardKeyPosition(spec)] ?? null, spec);
        putWrite(perShard, target, { op: 'upsert', row, key: keyValues, events: [event] });
        if (event.beforeShardKey !== undefined) {
          // The row moved shards: the old shard's copy is its before image, unless a newer one is there.
          const old = shardOf(map, event.beforeShardKey, spec);
          if (old !== target) putWrite(perShard, old, { op: 'delete', row: null, key: keyValues, notNewerThan: event.beforeUpdatedAt, events: [event] });
        }
      } else {
        const shardKey = event.beforeShardKey !== undefined ? event.beforeShardKey : (event.key[spec.shardKey] ?? null);
        putWrite(perShard, shardOf(map, shardKey, spec), { op: 'delete', row: null, key: keyValues, notNewerThan: event.beforeUpdatedAt, events: [event] });
      }
    } catch (e) {
      failed.push({ event, reason: (e as Error).message });
    }
  }
  return finals;
}

/**
 * The key's write on a shard replaces its earlier one in the batch, except that an upsert after a
 * delete keeps the delete (written first, as writeShard writes deletes before upserts). Collapsed to
 * the upsert alone, a re-insert older than the deleted row (a restore, a writer whose clock runs
 * behind) was kept out by keep-newer, where the same events in two batches stored it.
 */
function putWrite(perShard: Map<number, Write>, shard: number, write: Write): void {
  const earlier = perShard.get(shard);
  const deleteFirst = write.op === 'upsert' ? (earlier?.op === 'delete' ? earlier : earlier?.deleteFirst) : undefined;
  perShard.set(shard, deleteFirst ? { ...write, deleteFirst } : write);
}

/** The final writes as one work per shard, grouped by the shard's server. */
function worksByServer(ctx: ApplyContext, finals: FinalWrites): Map<string, ShardWork[]> {
  const map = ctx.writer.map;
  const byServer = new Map<string, ShardWork[]>();
  for (const [table, perTable] of finals) {
    const spec = ctx.specs.get(table)!;
    const byShard = new Map<number, Write[]>();
    for (const perShard of perTable.values()) {
      for (const [shard, write] of perShard) {
        let list = byShard.get(shard);
        if (!list) byShard.set(shard, (list = []));
        if (write.deleteFirst) list.push(write.deleteFirst);
        list.push(write);
      }
    }
    for (const [shard, writes] of byShard) {
      const server = map.serverOf(shard).name;
      let list = byServer.get(server);
      if (!list) byServer.set(server, (list = []));
      list.push({ shard, spec, writes });
    }
  }
  return byServer;
}

interface ServerOutcome {
  writes: number;
  parked: number;
  failed: FailedChange[];
}

/**
 * One server's shard works, 4 at a time. Without a parking lot it waits for a server that cannot
 * take them (withServerRetry); with one, it parks them: all of them behind writes already parked
 * for the server (so none overtakes an older one), else those that met the server down.
 */
async function writeServer(ctx: ApplyContext, server: string, works: ShardWork[], beforeWrites?: () => Promise<void>): Promise<ServerOutcome> {
  const outcome: ServerOutcome = { writes: 0, parked: 0, failed: [] };
  const wrote = (work: ShardWork, refused: FailedChange[]) => {
    outcome.writes += work.writes.length - refused.length;
    outcome.failed.push(...refused);
  };
  const parkAll = async (parkedWorks: ShardWork[]) => {
    await ctx.parking!.park(server, parkedWorks.flatMap(parkedWrites));
    outcome.parked += sum(parkedWorks.map((w) => w.writes.length));
  };
  const limit = pLimit(4);
  const parking = ctx.parking;
  if (!parking) {
    await Promise.all(works.map((work) => limit(async () => wrote(work, await withServerRetry(ctx, server, () => writeShard(ctx, work))))));
    return outcome;
  }
  if (await parking.hasParked(server)) {
    await parkAll(works);
    return outcome;
  }
  // Once one write finds the server unable to take it, the works still queued are not tried: each
  // would wait out its own timeout (a hung server: 2 x the lock wait each, 4 at a time), and the
  // batch would outlast the Kafka session. They are parked with the rest.
  let down: unknown;
  const settled = await Promise.allSettled(
    works.map((work) =>
      limit(async () => {
        if (down !== undefined) throw down;
        return writeShard(ctx, work).catch((e: unknown) => {
          if (isTransient(e)) down ??= e;
          throw e;
        });
      }),
    ),
  );
  const waiting: ShardWork[] = [];
  let why = '';
  settled.forEach((o, i) => {
    const work = works[i]!;
    if (o.status === 'fulfilled') wrote(work, o.value);
    else if (isTransient(o.reason)) {
      waiting.push(work);
      why = (o.reason as Error).message;
    } else throw o.reason;
  });
  if (waiting.length > 0) {
    // The writes that failed may have taken up to twice the lock wait each: what held before the first
    // write must still hold before they are parked, or a process that lost its partitions meanwhile parks
    // old writes that the drainer later lands over the new owner's.
    await beforeWrites?.();
    ctx.logger.warn({ server, err: why }, 'shard server cannot take writes now; parking its writes until it can (other servers go on)');
    ctx.onServerDown?.(server, why);
    await parkAll(waiting);
  }
  return outcome;
}

const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);

/**
 * The shard's deletes, then its upserts; the events of writes the target refuses come back to be
 * dead-lettered (writeFindingRefusals). A transient failure is thrown: the caller waits for the server.
 */
async function writeShard(ctx: ApplyContext, work: ShardWork): Promise<FailedChange[]> {
  const writer = ctx.writer;
  let fewerDeleted = false;
  const refusals = await writeFindingRefusals(work.writes, async (writes) => {
    const deletes = writes.filter((w) => w.op === 'delete');
    const upserts = writes.filter((w) => w.op === 'upsert');
    if (deletes.length > 0) {
      const deleted = await writer.deleteKeys(work.shard, work.spec, deletes.map((w) => w.key), { notNewerThan: deletes.map((w) => w.notNewerThan) });
      // Fewer rows than keys: most often keys already gone (a replay), but a bound may have kept a row.
      if (deleted < deletes.length) fewerDeleted = true;
    }
    if (upserts.length > 0) await writer.upsertRows(work.shard, work.spec, upserts.map((w) => w.row!), { keepNewer: true });
  });
  if (fewerDeleted) {
    const refused = new Set(refusals.map((r) => r.item));
    // A delete the batch re-inserts after is no late delete: the row it kept is the one the batch ends with.
    const reinserted = new Set(work.writes.flatMap((w) => (w.deleteFirst ? [w.deleteFirst] : [])));
    const written = work.writes.filter((w) => w.op === 'delete' && !refused.has(w) && !reinserted.has(w));
    await reportKeptDeletes({ writer, logger: ctx.logger, ...(ctx.onDeletesKept ? { onKept: ctx.onDeletesKept } : {}) }, work.shard, work.spec, written);
  }
  const where = `${work.spec.name} shard ${work.shard} (${writer.map.databaseOf(work.shard)} on ${writer.map.serverOf(work.shard).name})`;
  return refusals.flatMap(({ item, error }) => item.events.map((event) => ({ event, reason: `${where} refused the ${item.op}: ${error.message}` })));
}

async function withServerRetry<T>(ctx: ApplyContext, server: string, work: () => Promise<T>): Promise<T> {
  const { first, max } = ctx.backoffMs ?? SHARD_SERVER_BACKOFF_MS;
  let wait = first;
  let down = false;
  for (;;) {
    try {
      const result = await work();
      if (down) {
        ctx.logger.info({ server }, 'shard server is back; resuming its writes');
        ctx.onServerUp?.(server);
      }
      return result;
    } catch (e) {
      if (!isTransient(e)) throw e;
      if (!down) ctx.logger.warn({ server, err: (e as Error).message }, 'shard server cannot take writes now; pausing its writes and retrying with backoff');
      down = true;
      ctx.onServerDown?.(server, (e as Error).message);
      if (ctx.shouldStop?.()) throw new ApplyInterrupted(`stopped while shard server ${server} could not take writes (${(e as Error).message})`);
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(max, wait * 2);
    }
  }
}

/** A shard's writes as parked rows, in the order writeShard does them (deletes, then upserts). */
function parkedWrites(work: ShardWork): ParkedWrite[] {
  const ordered = [...work.writes.filter((w) => w.op === 'delete'), ...work.writes.filter((w) => w.op === 'upsert')];
  return ordered.map((w) => ({
    table: work.spec.name,
    shard: work.shard,
    op: w.op,
    values: w.op === 'upsert' ? w.row! : parkedDelete(w.key, w.notNewerThan),
    origin: w.events[0] ? { source: w.events[0].origin.source, offset: w.events[0].origin.offset, ...(w.events[0].origin.partition !== undefined ? { partition: w.events[0].origin.partition } : {}) } : null,
  }));
}

/** Splits off the events of keys whose legacy row is behind MySQL (ApplyContext.heldKeys). */
async function withoutHeldKeys(ctx: ApplyContext, events: ChangeEvent[]): Promise<{ events: ChangeEvent[]; held: ChangeEvent[] }> {
  if (!ctx.heldKeys || events.length === 0) return { events, held: [] };
  const ids = await ctx.heldKeys([...new Set(events.map((e) => e.table))]);
  if (ids.size === 0) return { events, held: [] };
  const out = { events: [] as ChangeEvent[], held: [] as ChangeEvent[] };
  for (const event of events) {
    const spec = ctx.specs.get(event.table);
    const isHeld = spec !== undefined && ids.get(event.table)?.has(queueKeyId(spec.primaryKey.map((k) => valueText(event.key[k] ?? null))));
    (isHeld ? out.held : out.events).push(event);
  }
  if (out.held.length > 0) {
    const keys = out.held.slice(0, 5).map((e) => ({ table: e.table, key: e.key, offset: e.origin.offset }));
    ctx.logger.warn({ held: out.held.length, keys }, "changes not applied: the key's legacy row is behind MySQL (repair_queue, behind = legacy); bring legacy up to date for it");
  }
  return out;
}

function valueKey(v: RowValue): string {
  return v === null ? '\u0001' : Buffer.isBuffer(v) ? `x${v.toString('hex')}` : `s${v}`;
}

function shardOf(map: ShardMap, value: RowValue, spec: TableSpec): number {
  if (value === null) throw new Error(`shard key ${spec.shardKey} is null: cannot route`);
  if (Buffer.isBuffer(value)) throw new Error(`shard key ${spec.shardKey} is binary: cannot route`);
  return map.shardOf(value);
}

function rowOf(spec: TableSpec, event: ChangeEvent): Row {
  const after = event.after!;
  return spec.columns.map((c) => {
    const v = after[c.source];
    if (v === undefined) throw new Error(`column ${c.source} is missing from the change`);
    return v;
  });
}

export type { ShardMap };
