import { Readable } from 'node:stream';
import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { Config } from '../config/schema.js';
import { createMysqlPool, quoteId } from '../mysql/connect.js';
import { onConnection, unusable } from '../mysql/pool.js';
import { keyPositions, respellableKeyPositions } from '../rows/ddl.js';
import { LOAD_DATA_FORMAT } from '../rows/tsv.js';
import { valueText } from '../rows/convert.js';
import { BATCH_BYTES, type ColumnSpec, type Row, type RowValue, type TableSpec } from '../rows/types.js';
import { shardMapFromConfig, type ShardLocation, type ShardMap } from '../shard/map.js';
import { inStatements, packetLimitOf, sqlValuesBytes, type Statement } from '../mysql/packet.js';

/**
 * The shard writer: the one way rows get into shard tables, used by full copy, sync and
 * verify --repair. Every write is idempotent and keyed by primary key, so replaying it
 * (after a crash, a retry, or a change the copy already saw) converges to the same rows.
 *
 * - `upsertRows(shard, spec, rows)`: multi-row INSERT ... ON DUPLICATE KEY UPDATE of every
 *   non-key column (statements of up to 1000 rows), atomic per call (see `atomically`). Rows are in the spec's column order, values in
 *   target form (src/rows/types.ts). All rows must belong to that shard (the caller routes them
 *   with the shard map); the writer does not re-route.
 * - `deleteKeys(shard, spec, keys, options)`: DELETE by primary key (values in key order, target
 *   form); deleting a missing key is a no-op. Returns the number of rows deleted. With
 *   `notNewerThan`, a row stored with a newer updated_at is kept (see DeleteOptions).
 * - `loadShards(parts)`: the bulk path of full copy: for each part, LOAD DATA LOCAL ... REPLACE of
 *   text lines (src/rows/tsv.ts) in blocks of whole lines into one shard table; all parts on one
 *   server, in one transaction that is rolled back if the server reports any warning (LOAD DATA
 *   LOCAL turns bad values into warnings instead of errors) or reads another number of rows than
 *   a part has lines. `loadBlocks(shard, spec, blocks, rows)` is the one-part case.
 *
 * `shard` is a logical shard number or a ShardLocation from the shard map. Sessions run in UTC
 * with a strict sql_mode, so a value the target cannot take exactly is an error, never bent.
 * One pool per physical server, of `servers.<name>.max_connections` connections.
 */
export interface ShardWriter {
  readonly map: ShardMap;
  upsertRows(shard: number | ShardLocation, spec: TableSpec, rows: Row[], options?: UpsertOptions): Promise<void>;
  deleteKeys(shard: number | ShardLocation, spec: TableSpec, keys: RowValue[][], options?: DeleteOptions): Promise<number>;
  /**
   * Of keys given with bounds (as to deleteKeys' notNewerThan), those the shard holds with a newer
   * updated_at: the rows bounded deletes kept. Keys as the shard stores them; none without an
   * ordering updated_at (orderingStamp).
   */
  keysKeptNewer(shard: number | ShardLocation, spec: TableSpec, keys: RowValue[][], notNewerThan: RowValue[]): Promise<RowValue[][]>;
  loadShards(parts: ShardLoad[]): Promise<number>;
  loadBlocks(shard: number | ShardLocation, spec: TableSpec, blocks: Buffer[], rows: number): Promise<number>;
  /** The pool of a physical server, e.g. for reading back in tests or verify. */
  poolOf(server: string): Pool;
  close(): Promise<void>;
}

/** Lines for one shard table: `rows` lines in blocks of whole lines. */
export interface ShardLoad {
  shard: number | ShardLocation;
  spec: TableSpec;
  blocks: Buffer[];
  rows: number;
}

/**
 * STRICT_ALL_TABLES: out-of-range or malformed values fail instead of being adjusted; zero dates stay allowed.
 * autocommit on whatever the server's default: a single write statement commits by itself (see `atomically`).
 */
export const WRITER_SESSION = ["SET time_zone = '+00:00'", "SET sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'", 'SET autocommit = 1'];

/**
 * How long a write waits for a table's metadata lock (held by someone's LOCK TABLES, or an ALTER
 * on a shard table) or a row lock before it fails with ER_LOCK_WAIT_TIMEOUT, which is retried with
 * backoff and logged. The server's default for metadata locks is a year: the write would hang,
 * silent, for as long as the lock. 50 s, as long as InnoDB lets a row lock wait by default.
 */
export const WRITER_LOCK_WAIT_SECONDS = 50;

/**
 * A statement the server has not answered in twice the lock wait fails (a timeout, transient like
 * a lost connection) and its connection is thrown away. A server that hangs (a frozen process, a
 * stalled disk) keeps its connections open and acks their packets: without this, a write to it
 * waited forever, and sync with it, for every server, instead of parking that server's writes.
 */
const STATEMENT_TIMEOUT_LOCK_WAITS = 2;

/** The longest one write of the default writer runs before it fails (what a process still writing may land after). */
export const WRITE_LIMIT_SECONDS = STATEMENT_TIMEOUT_LOCK_WAITS * WRITER_LOCK_WAIT_SECONDS;

const UPSERT_ROWS = 1000;
const KEYS_PER_STATEMENT = 500;

export interface UpsertOptions {
  /**
   * A row whose updated_at (spec.updatedAt) is older than the stored row's leaves that row as it
   * is: sync's writes, where legacy's event of a dual write can arrive after a newer write of the
   * same row reached MySQL. Without spec.updatedAt every row is written.
   */
  keepNewer?: boolean;
}

export interface DeleteOptions {
  /**
   * Per key (in the order of the keys), the updated_at (spec.updatedAt) of the row version being
   * deleted, or undefined/null where unknown: a row stored with a newer updated_at is kept. Sync
   * deletes so, since a late delete (a replay, legacy's event of a dual write's delete) would
   * remove a row created again since. As with keepNewer, a NULL stored updated_at cannot tell: the
   * row is deleted.
   */
  notNewerThan?: (RowValue | undefined)[];
}

export interface ShardWriterOptions {
  /** Overrides each server's max_connections. */
  connectionsPerServer?: number;
  /** Overrides WRITER_LOCK_WAIT_SECONDS (sync bounds its waits by the Kafka session; tests). */
  lockWaitSeconds?: number;
}

export function createShardWriter(config: Pick<Config, 'servers' | 'shards'>, options: ShardWriterOptions = {}): ShardWriter {
  const map = shardMapFromConfig(config);
  const pools = new Map<string, Pool>();
  const lockWait = Math.max(1, Math.round(options.lockWaitSeconds ?? WRITER_LOCK_WAIT_SECONDS));
  const timeoutMs = STATEMENT_TIMEOUT_LOCK_WAITS * lockWait * 1000;
  const poolOf = (server: string): Pool => {
    let pool = pools.get(server);
    if (!pool) {
      const s = config.servers[server];
      if (!s) throw new Error(`unknown shard server ${server}`);
      pool = createMysqlPool(s.primary, { connectionLimit: options.connectionsPerServer ?? s.max_connections, database: undefined }, s.tls);
      pool.on('connection', (conn) => {
        for (const sql of WRITER_SESSION) conn.query(sql);
        conn.query(`SET lock_wait_timeout = ${lockWait}, innodb_lock_wait_timeout = ${lockWait}`);
      });
      pools.set(server, pool);
    }
    return pool;
  };
  const locate = (shard: number | ShardLocation): ShardLocation =>
    typeof shard === 'number' ? { shard, database: map.databaseOf(shard), server: map.serverOf(shard) } : shard;
  const tableOf = (loc: ShardLocation, spec: TableSpec) => `${quoteId(loc.database)}.${quoteId(spec.target)}`;

  const writer: ShardWriter = {
    map,
    poolOf,
    async upsertRows(shard, spec, rows, options = {}) {
      if (rows.length === 0) return;
      const loc = locate(shard);
      const pool = poolOf(loc.server.name);
      const table = tableOf(loc, spec);
      // Statements of at most UPSERT_ROWS rows and BATCH_BYTES, under the server's max_allowed_packet
      // (src/target/packet.ts): 1,000 rows of 1 MB values in one statement is a GB string.
      const cut = { maxItems: UPSERT_ROWS, capBytes: BATCH_BYTES, fixedBytes: Buffer.byteLength(upsertSql(table, spec, 0, options)), itemBytes: (row: Row) => 4 + sqlValuesBytes(row) };
      const statements = inStatements(
        rows,
        cut,
        await packetLimitOf(pool),
        (part) => ({ sql: upsertSql(table, spec, part.length, options), values: flatten(part) }),
        (row) => `the upsert of ${spec.name} key ${keyPositions(spec).map((i) => valueText(row[i]!)).join(', ')}`,
      );
      await atomically(pool, statements, timeoutMs);
    },
    async deleteKeys(shard, spec, keys, options = {}) {
      if (keys.length === 0) return 0;
      const loc = locate(shard);
      const pool = poolOf(loc.server.name);
      const table = tableOf(loc, spec);
      const bounds = options.notNewerThan ?? [];
      const conditionBytes = keyConditionBytes(spec);
      const cut = { maxItems: KEYS_PER_STATEMENT, capBytes: BATCH_BYTES, fixedBytes: Buffer.byteLength(deleteStatement(table, spec, [], []).sql), itemBytes: (i: number) => conditionBytes + sqlValuesBytes([...keys[i]!, bounds[i] ?? null]) };
      const statements = inStatements(
        keys.map((_k, i) => i),
        cut,
        await packetLimitOf(pool),
        (part) => deleteStatement(table, spec, part.map((i) => keys[i]!), part.map((i) => bounds[i])),
        (i) => `the delete of ${spec.name} key ${keys[i]!.map(valueText).join(', ')}`,
      );
      const results = await atomically(pool, statements, timeoutMs);
      return results.reduce((n, r) => n + r.affectedRows, 0);
    },
    async keysKeptNewer(shard, spec, keys, notNewerThan) {
      const column = orderingStamp(spec);
      if (!column || keys.length === 0) return [];
      const loc = locate(shard);
      const pool = poolOf(loc.server.name);
      const { names, byKey } = keyMatch(spec);
      const select = `SELECT ${names.join(', ')} FROM ${tableOf(loc, spec)} WHERE `;
      const condition = `(${byKey} AND ${quoteId(column.target)} > ?)`;
      const cut = { maxItems: KEYS_PER_STATEMENT, capBytes: BATCH_BYTES, fixedBytes: Buffer.byteLength(select), itemBytes: (i: number) => Buffer.byteLength(condition) + 4 + sqlValuesBytes([...keys[i]!, notNewerThan[i]!]) };
      const statements = inStatements(
        keys.map((_k, i) => i),
        cut,
        await packetLimitOf(pool),
        (part) => ({ sql: select + part.map(() => condition).join(' OR '), values: part.flatMap((i) => [...keys[i]!, notNewerThan[i]!]) }),
        (i) => `the look-up of ${spec.name} key ${keys[i]!.map(valueText).join(', ')}`,
      );
      const kept: RowValue[][] = [];
      for (const { sql, values } of statements) {
        const [rows] = await pool.query<RowDataPacket[]>({ sql, values, rowsAsArray: true, timeout: timeoutMs });
        kept.push(...(rows as unknown as RowValue[][]));
      }
      return kept;
    },
    async loadShards(parts) {
      const loads = parts.filter((p) => p.rows > 0).map((p) => ({ ...p, loc: locate(p.shard) }));
      if (loads.length === 0) return 0;
      const server = loads[0]!.loc.server.name;
      const elsewhere = loads.find((l) => l.loc.server.name !== server);
      if (elsewhere) throw new Error(`loadShards: shard ${elsewhere.loc.shard} is on server ${elsewhere.loc.server.name}, not ${server}`);
      return inTransaction(poolOf(server), timeoutMs, async (conn) => {
        let rows = 0;
        for (const { loc, spec, blocks, rows: lines } of loads) rows += await loadInto(conn, timeoutMs, tableOf(loc, spec), `${loc.database}.${spec.target}`, spec, blocks, lines);
        return rows;
      });
    },
    loadBlocks(shard, spec, blocks, rows) {
      return writer.loadShards([{ shard, spec, blocks, rows }]);
    },
    async close() {
      await Promise.all([...pools.values()].map((p) => p.end()));
      pools.clear();
    },
  };
  return writer;
}

/** One LOAD DATA in the caller's transaction; throws on any warning or a record count other than `lines`. */
async function loadInto(conn: PoolConnection, timeoutMs: number, table: string, name: string, spec: TableSpec, blocks: Buffer[], lines: number): Promise<number> {
  const [res] = await conn.query<ResultSetHeader>({
    sql: loadDataSql(table, spec),
    timeout: timeoutMs,
    infileStreamFactory: () => Readable.from(infilePackets(blocks)),
  });
  if (res.warningStatus > 0) {
    const [warnings] = await conn.query<RowDataPacket[]>({ sql: 'SHOW WARNINGS LIMIT 3', timeout: timeoutMs });
    throw new Error(`LOAD DATA into ${name} reported ${res.warningStatus} warnings: ${warnings.map((w) => w.Message).join('; ')}`);
  }
  const records = /Records: (\d+)/.exec(res.info ?? '');
  if (!records || Number(records[1]) !== lines) {
    throw new Error(`LOAD DATA into ${name} read ${records?.[1] ?? 'an unknown number of'} records from ${lines} lines`);
  }
  return lines;
}

/**
 * The LOAD DATA stream's packets, each one socket write: small blocks (many shards, each with a
 * few lines of a chunk) joined up to INFILE_PACKET, a block larger than MAX_INFILE_PACKET (one
 * line of a row of large values) cut in pieces, since the server refuses a packet over its
 * max_allowed_packet while lines may span packets. With 1,024 shards the blocks were ~10 KB and
 * their writes a fifth of membermig's CPU.
 */
export function* infilePackets(blocks: Buffer[]): Iterable<Buffer> {
  let group: Buffer[] = [];
  let bytes = 0;
  for (const block of blocks) {
    if (bytes + block.length > INFILE_PACKET && group.length > 0) {
      yield group.length === 1 ? group[0]! : Buffer.concat(group, bytes);
      group = [];
      bytes = 0;
    }
    if (block.length > MAX_INFILE_PACKET) {
      for (let at = 0; at < block.length; at += MAX_INFILE_PACKET) yield block.subarray(at, at + MAX_INFILE_PACKET);
      continue;
    }
    group.push(block);
    bytes += block.length;
  }
  if (group.length > 0) yield group.length === 1 ? group[0]! : Buffer.concat(group, bytes);
}

/** Small blocks are joined up to this (a full block of src/rows/tsv.ts goes alone). */
const INFILE_PACKET = 256 * 1024;
/** 1 MB: far under any max_allowed_packet in use (MySQL's default is 64 MB, MariaDB's 16 MB; 1 MB before MySQL 8). */
const MAX_INFILE_PACKET = 1 << 20;

/** INSERT ... ON DUPLICATE KEY UPDATE every non-key column (a key-only table just keeps the row). */
export function upsertSql(table: string, spec: TableSpec, rowCount: number, options: UpsertOptions = {}): string {
  const names = spec.columns.map((c) => quoteId(c.target));
  // A respellable key column is set too: the row takes the spelling of the key written ('K1' over 'k1').
  const fixed = new Set(keyPositions(spec).filter((i) => !respellableKeyPositions(spec).includes(i)));
  const updated = spec.columns.filter((_c, i) => !fixed.has(i)).map((c) => quoteId(c.target));
  const tuple = `(${names.map(() => '?').join(', ')})`;
  const onDuplicate = updated.length > 0 ? assignments(spec, updated, options) : `${names[0]} = ${names[0]}`;
  return `INSERT INTO ${table} (${names.join(', ')}) VALUES ${new Array(rowCount).fill(tuple).join(', ')} ON DUPLICATE KEY UPDATE ${onDuplicate}`;
}

/**
 * The ON DUPLICATE KEY UPDATE list. Kept newer: each column keeps its value when the incoming
 * updated_at is older than the stored one (a NULL on either side cannot tell: written), and
 * updated_at itself comes last, since MySQL assigns left to right and the others compare with
 * its stored value.
 */
function assignments(spec: TableSpec, columns: string[], options: UpsertOptions): string {
  const column = options.keepNewer ? orderingStamp(spec) : undefined;
  const stamp = column ? quoteId(column.target) : undefined;
  if (!stamp || !columns.includes(stamp)) return columns.map((c) => `${c} = VALUES(${c})`).join(', ');
  const ordered = [...columns.filter((c) => c !== stamp), stamp];
  return ordered.map((c) => `${c} = IF(VALUES(${stamp}) < ${stamp}, ${c}, VALUES(${c}))`).join(', ');
}

/**
 * The updated_at column when its shard type sorts by time (DATETIME, TIMESTAMP, DATE, an integer);
 * not text (SQL Server's datetimeoffset is kept as text with its offset, which compares as text).
 */
export function orderingStamp(spec: TableSpec): ColumnSpec | undefined {
  const column = spec.updatedAt === undefined ? undefined : spec.columns.find((c) => c.source === spec.updatedAt);
  return column && /^\s*(datetime|timestamp|date|tinyint|smallint|mediumint|int|bigint)\b/i.test(column.targetType) ? column : undefined;
}

/** The shard table's key columns, quoted, and the condition that matches one key (values in key order). */
function keyMatch(spec: TableSpec): { names: string[]; byKey: string } {
  const names = spec.primaryKey.map((k) => quoteId(spec.columns.find((c) => c.source === k)!.target));
  return { names, byKey: names.map((k) => `${k} = ?`).join(' AND ') };
}

/** The most bytes one key's condition in a DELETE takes besides its values (deleteStatement's longer form), with the OR before it. */
function keyConditionBytes(spec: TableSpec): number {
  const stamp = quoteId(orderingStamp(spec)?.target ?? '');
  return Buffer.byteLength(` OR (${keyMatch(spec).byKey} AND (${stamp} IS NULL OR ${stamp} <= ?))`);
}

/**
 * One DELETE of keys, each `(key = ?)`, or `(key = ? AND (stamp IS NULL OR stamp <= ?))` where its
 * bound is known and the table's updated_at sorts by time (orderingStamp).
 */
function deleteStatement(table: string, spec: TableSpec, keys: RowValue[][], notNewerThan: (RowValue | undefined)[] = []): Statement {
  const { byKey } = keyMatch(spec);
  const column = orderingStamp(spec);
  const stamp = column ? quoteId(column.target) : undefined;
  const conditions: string[] = [];
  const values: RowValue[] = [];
  keys.forEach((key, i) => {
    const bound = notNewerThan[i];
    values.push(...key);
    if (stamp === undefined || bound === undefined || bound === null) conditions.push(`(${byKey})`);
    else {
      conditions.push(`(${byKey} AND (${stamp} IS NULL OR ${stamp} <= ?))`);
      values.push(bound);
    }
  });
  return { sql: `DELETE FROM ${table} WHERE ${conditions.join(' OR ')}`, values };
}

/** LOAD DATA of the bulk text form (src/rows/tsv.ts); hex columns go through a user variable and UNHEX. */
export function loadDataSql(table: string, spec: TableSpec): string {
  const targets = spec.columns.map((c, i) => (c.wire === 'hex' ? `@h${i}` : quoteId(c.target)));
  const sets = spec.columns.flatMap((c, i) => (c.wire === 'hex' ? [`${quoteId(c.target)} = UNHEX(@h${i})`] : []));
  return (
    `LOAD DATA LOCAL INFILE 'membermig-rows' REPLACE INTO TABLE ${table} CHARACTER SET utf8mb4 ${LOAD_DATA_FORMAT} (${targets.join(', ')})` +
    (sets.length > 0 ? ` SET ${sets.join(', ')}` : '')
  );
}

/** The values of rows in one list (a loop: Array.prototype.flat is over ten times slower, per statement of the sync path). */
function flatten(rows: RowValue[][]): RowValue[] {
  const out: RowValue[] = [];
  for (const row of rows) for (const v of row) out.push(v);
  return out;
}

/**
 * Runs the statements all or none: a single statement alone, since autocommit makes it a
 * transaction of its own (two round trips fewer than BEGIN ... COMMIT, which sync pays per shard
 * and batch), several in one transaction.
 */
async function atomically(pool: Pool, statements: Statement[], timeoutMs: number): Promise<ResultSetHeader[]> {
  const run = async (conn: PoolConnection) => {
    const results: ResultSetHeader[] = [];
    for (const s of statements) results.push((await conn.query<ResultSetHeader>({ sql: s.sql, values: s.values, timeout: timeoutMs }))[0]);
    return results;
  };
  return statements.length === 1 ? onConnection(pool, run) : inTransaction(pool, timeoutMs, run);
}

async function inTransaction<T>(pool: Pool, timeoutMs: number, work: (conn: PoolConnection) => Promise<T>): Promise<T> {
  return onConnection(pool, async (conn, lost) => {
    await conn.query({ sql: 'START TRANSACTION', timeout: timeoutMs });
    try {
      const result = await work(conn);
      await conn.query({ sql: 'COMMIT', timeout: timeoutMs });
      return result;
    } catch (e) {
      // A connection that cannot even roll back is not handed to the next caller.
      if (!unusable(e)) await conn.query({ sql: 'ROLLBACK', timeout: timeoutMs }).catch(lost);
      throw e;
    }
  });
}

