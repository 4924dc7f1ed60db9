import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { Logger } from '../log.js';
import { isTransient, writeFindingRefusals } from '../mysql/retry.js';
import { inStatements, packetLimitOf, sqlValuesBytes } from '../mysql/packet.js';
import type { RowValue, TableSpec } from '../rows/types.js';
import { databaseOf, storeLockName } from '../store/lock-name.js';
import type { ShardWriter } from '../target/writer.js';
import { reportKeptDeletes, type WrittenDelete } from './kept-deletes.js';
import type { PoisonEvent } from './types.js';

/**
 * The parking lot (cdc_parked, migration 031) for writes to a shard server that cannot take them
 * now (unreachable, or a transient failure: the same rule as src/cdc/apply.ts, isTransient).
 * Parked writes are durable in the control store, so the offsets that carried them can be
 * committed and the other servers go on; one drainer per server (a named lock makes it one per
 * group) replays them in order once the server answers. While a server has parked writes, every
 * new write for it is parked behind them, so no write ever overtakes an older one for its key.
 */

export interface ParkedWrite {
  table: string;
  shard: number;
  op: 'upsert' | 'delete';
  /** Row (upsert) or key (delete, see parkedDelete) values in target form. */
  values: RowValue[];
  origin: { source: string; partition?: number; offset: string } | null;
}

/**
 * A parked delete's values: its key, then its bound (DeleteOptions.notNewerThan) where known. One
 * value more than the table's key says a bound (parked rows written before bounds have none).
 */
export function parkedDelete(key: RowValue[], notNewerThan: RowValue | undefined): RowValue[] {
  return notNewerThan === undefined || notNewerThan === null ? key : [...key, notNewerThan];
}

function unparkedDeletes(spec: TableSpec, parked: RowValue[][]): WrittenDelete[] {
  const width = spec.primaryKey.length;
  return parked.map((v) => (v.length > width ? { key: v.slice(0, width), notNewerThan: v[width]! } : { key: v }));
}

export interface DrainHooks {
  writer: ShardWriter;
  specs: Map<string, TableSpec>;
  /** Replayed deletes that kept a newer row (src/cdc/kept-deletes.ts), for the metrics. */
  onDeletesKept?: (table: string, count: number) => void;
  /** A parked write the server refused when it was back: dead-letter it. */
  deadLetter: (poison: PoisonEvent) => Promise<void>;
  onDown?: (server: string) => void;
  onDrained?: (server: string) => void;
  /**
   * A stop was requested: no drainer starts then, so a process stopping with a hung server does not
   * wait out a new replay's timeout; the writes stay parked for the next run. A drainer already
   * running goes on until the stop (a server that answers again gets its writes before it).
   */
  stopping?: () => boolean;
}

export async function parkedCounts(pool: Pool): Promise<Map<string, number>> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT server, COUNT(*) AS n FROM cdc_parked GROUP BY server');
  return new Map(rows.map((r) => [r.server as string, Number(r.n)]));
}

/** How many writes of one table (its logical name) wait in the parking lot, on any server. */
export async function parkedWritesOf(pool: Pool, table: string): Promise<number> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM cdc_parked WHERE table_name = ?', [table]);
  return Number(rows[0]!.n);
}

/**
 * For `sync --until-caught-up`, which cannot be caught up while writes are parked: a warning, at
 * most every `everyMs`, naming the servers whose writes it waits for (it waited in silence).
 * Returns whether nothing is parked.
 */
export function waitingForParked(logger: Logger, everyMs = 30_000): (parked: Map<string, number>) => boolean {
  let toldAt = 0;
  return (parked) => {
    if (parked.size > 0 && Date.now() - toldAt >= everyMs) {
      toldAt = Date.now();
      logger.warn({ parked: Object.fromEntries(parked) }, 'not caught up while writes are parked: waiting for their shard servers to take them (SIGINT stops, exit 1)');
    }
    return parked.size === 0;
  };
}

/** How sync waits on a shard server that cannot take writes, first and longest wait (doubling between): apply's retries and parking's drains alike. */
export const SHARD_SERVER_BACKOFF_MS = { first: 200, max: 5000 };

/** About how much parked data one statement carries, into the parking lot or out of it (as the shard writer's statements). */
const PARKED_BYTES = 4 * 1024 * 1024;

const encode = (values: RowValue[]): string => JSON.stringify(values.map((v) => (Buffer.isBuffer(v) ? { $b: v.toString('base64') } : v)));
const decode = (text: string): RowValue[] =>
  (JSON.parse(text) as (string | null | { $b: string })[]).map((v) => (v !== null && typeof v === 'object' ? Buffer.from(v.$b, 'base64') : v));

export class ParkingLot {
  private readonly draining = new Map<string, Promise<void>>();
  /**
   * Servers for which drain() was called while their drainer ran. That drainer may have looked for
   * parked rows already and be on its way out, so it looks again before it ends (see drain()).
   */
  private readonly parkedMeanwhile = new Set<string>();
  private stopped = false;

  constructor(
    private readonly pool: Pool,
    private readonly logger: Logger,
    private readonly hooks: DrainHooks,
    private readonly backoffMs = SHARD_SERVER_BACKOFF_MS,
  ) {}

  async hasParked(server: string): Promise<boolean> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT 1 FROM cdc_parked WHERE server = ? LIMIT 1', [server]);
    return rows.length > 0;
  }

  /** Servers with parked writes, and how many each. */
  counts(): Promise<Map<string, number>> {
    return parkedCounts(this.pool);
  }

  async park(server: string, writes: ParkedWrite[]): Promise<void> {
    // Statements of at most 500 rows and about PARKED_BYTES, under the control server's max_allowed_packet:
    // 500 rows of MB-wide values in one INSERT dropped the connection, which read as the control store down.
    const head = 'INSERT INTO cdc_parked (server, table_name, shard, op, data, origin) VALUES ';
    const rows = writes.map((w): RowValue[] => [server, w.table, String(w.shard), w.op, encode(w.values), w.origin ? JSON.stringify(w.origin) : null]);
    const statements = inStatements(
      rows,
      { maxItems: 500, capBytes: PARKED_BYTES, fixedBytes: head.length, itemBytes: (row) => 4 + sqlValuesBytes(row) },
      await packetLimitOf(this.pool),
      (part) => ({ sql: head + part.map(() => '(?, ?, ?, ?, ?, ?)').join(', '), values: part.flat() }),
      (row) => `the parked ${row[3]} of ${row[1]} for shard ${row[2]} (into the control store)`,
    );
    for (const { sql, values } of statements) await this.pool.query(sql, values);
    this.drain(server);
  }

  /** Starts the server's drainer unless it runs already; it ends when nothing is parked for the server. */
  drain(server: string): void {
    if (this.stopped || this.hooks.stopping?.()) return;
    if (this.draining.has(server)) {
      this.parkedMeanwhile.add(server);
      return;
    }
    const run = this.drainLoop(server).finally(() => {
      this.draining.delete(server);
      // Rows parked after the drainer's last look (e.g. while it released its lock) would
      // otherwise wait for the next write to this server: look again.
      if (this.parkedMeanwhile.has(server)) this.drain(server);
    });
    this.draining.set(server, run);
  }

  /** Resolves once no drainer runs (one that starts again, see drain(), is waited for too). */
  async idle(): Promise<void> {
    while (this.draining.size > 0) await Promise.allSettled([...this.draining.values()]);
  }

  /** Drainers of every server that has parked writes (e.g. left by a stopped process). */
  async resumeAll(): Promise<void> {
    for (const server of (await this.counts()).keys()) this.drain(server);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.draining.values()]);
  }

  private async drainLoop(server: string): Promise<void> {
    let wait = this.backoffMs.first;
    this.hooks.onDown?.(server);
    const lockName = storeLockName(await databaseOf(this.pool), 'drain', server);
    while (!this.stopped) {
      // Every row parked before this point is seen by the look below.
      this.parkedMeanwhile.delete(server);
      const conn = await this.pool.getConnection();
      try {
        const [lock] = await conn.query<RowDataPacket[]>('SELECT GET_LOCK(?, 0) AS got', [lockName]);
        if (lock[0]?.got === 1) {
          try {
            if (await this.drainOnce(server)) {
              this.logger.info({ server }, 'parked writes replayed; the server is written directly again');
              this.hooks.onDrained?.(server);
              return;
            }
            wait = this.backoffMs.first;
            continue;
          } catch (e) {
            if (!isTransient(e)) throw e;
          } finally {
            await conn.query('SELECT RELEASE_LOCK(?)', [lockName]);
          }
        } else if (!(await this.hasParked(server))) {
          return; // another process drained it
        }
      } finally {
        conn.release();
      }
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(this.backoffMs.max, wait * 2);
    }
  }

  /**
   * Replays up to 1000 parked writes (about PARKED_BYTES of data) in id order; true when nothing is left. Throws when the server
   * cannot take them now.
   *
   * Ids are taken at INSERT but seen at COMMIT, so with several sync processes parking for one
   * server a lower id can become visible after higher ones were replayed. Only the rows replayed
   * are deleted (by id, never `id <= last`), and each round reads from the lowest id again, so
   * such a row is replayed by a later round, never skipped or deleted unreplayed. Per-key order
   * holds: a key's writes come from one partition, parked by one process batch after batch (each
   * park committed before the next; a rebalance hands a partition over only after the old owner's
   * in-flight batch, src/cdc/sync.ts), so they become visible, and are replayed, in id order; a
   * row that shows up late holds other keys than the rows that overtook it.
   */
  private async drainOnce(server: string): Promise<boolean> {
    // Up to 1000 rows, but about PARKED_BYTES of data: 1000 parked rows of MB-wide values would all be in memory at once.
    const [heads] = await this.pool.query<RowDataPacket[]>('SELECT id, LENGTH(data) AS bytes FROM cdc_parked WHERE server = ? ORDER BY id LIMIT 1000', [server]);
    if (heads.length === 0) return true;
    let n = 1;
    for (let bytes = Number(heads[0]!.bytes); n < heads.length && bytes + Number(heads[n]!.bytes) <= PARKED_BYTES; n++) bytes += Number(heads[n]!.bytes);
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT id, table_name, shard, op, data, origin FROM cdc_parked WHERE id IN (?) ORDER BY id', [heads.slice(0, n).map((r) => r.id)]);
    // Consecutive writes of the same table, shard and kind go in one statement; order is kept.
    let i = 0;
    while (i < rows.length) {
      const first = rows[i]!;
      let j = i;
      while (j < rows.length && rows[j]!.table_name === first.table_name && rows[j]!.shard === first.shard && rows[j]!.op === first.op && j - i < 500) j++;
      const run = rows.slice(i, j);
      await this.replay(run);
      await this.pool.query('DELETE FROM cdc_parked WHERE id IN (?)', [run.map((r) => r.id)]);
      i = j;
    }
    return false;
  }

  private async replay(run: RowDataPacket[]): Promise<void> {
    const spec = this.hooks.specs.get(run[0]!.table_name);
    const shard = Number(run[0]!.shard);
    let fewerDeleted = false;
    // One refused value fails the statement: the refused rows are dead-lettered, the rest written.
    const refusals = await writeFindingRefusals(run, async (part) => {
      if (!spec) throw new Error(`table ${run[0]!.table_name} is not in the config`);
      const values = part.map((r) => decode(r.data));
      if (part[0]!.op === 'delete') {
        const deletes = unparkedDeletes(spec, values);
        const deleted = await this.hooks.writer.deleteKeys(shard, spec, deletes.map((d) => d.key), { notNewerThan: deletes.map((d) => d.notNewerThan) });
        if (deleted < deletes.length) fewerDeleted = true;
      } else await this.hooks.writer.upsertRows(shard, spec, values, { keepNewer: true });
    });
    if (fewerDeleted && spec) {
      const refused = new Set(refusals.map((r) => r.item));
      const written = unparkedDeletes(spec, run.filter((r) => !refused.has(r)).map((r) => decode(r.data)));
      await reportKeptDeletes({ writer: this.hooks.writer, logger: this.logger, ...(this.hooks.onDeletesKept ? { onKept: this.hooks.onDeletesKept } : {}) }, shard, spec, written);
    }
    for (const { item: r, error } of refusals) {
      const origin = r.origin ? (typeof r.origin === 'string' ? JSON.parse(r.origin) : r.origin) : { source: 'parked', offset: String(r.id) };
      await this.hooks.deadLetter({ origin, table: r.table_name, messageKey: null, rawValue: null, reason: `parked ${r.op} for shard ${shard} refused: ${error.message}` });
    }
  }
}
