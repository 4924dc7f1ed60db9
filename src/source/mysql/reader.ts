import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { Config, TableConfig } from '../../config/schema.js';
import { namedFailure, RefusedError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { createMysqlPool, quoteId } from '../../mysql/connect.js';
import { rowsQuery } from '../../mysql/pool.js';
import { convertRow } from '../../rows/convert.js';
import { mysqlTypeMap } from '../../rows/mysql.js';
import { LineBlocks } from '../../rows/tsv.js';
import { BATCH_BYTES, rowBytes, ValueTooLargeError, type ColumnConversion, type Row, type TableSpec } from '../../rows/types.js';
import type { ShardMap } from '../../shard/map.js';
import type { ChunkKey } from '../../store/leases.js';
import { UnrepresentableError, type ReadRangeOptions, type RejectedRow, type SourceReader, type StartPosition, type TsvChunk, type TsvHandOff } from '../reader.js';
import { describeMysqlTable } from './catalog.js';
import { readMysqlRowsByKey } from './keys.js';
import { orderBy, qualifiedSource, rangeWhere, rawKeyText } from './sql.js';
import { tsvSelect } from './tsv.js';
import { copyWorkers } from '../../copy/workers.js';
import { hasIntegerKey, valueRangeBounds, VALUE_RANGES_MIN_CHUNKS } from '../value-ranges.js';
import { ColumnCursor, forEachRowBytes } from '../../mysql/row-packets.js';

/**
 * Every session reads in UTC, as the shard writer writes: TIMESTAMP values keep their instant.
 * Two modes of the server's own sql_mode are taken out of the session: NO_BACKSLASH_ESCAPES (key
 * literals are escaped with backslashes) and PAD_CHAR_TO_FULL_LENGTH (CHAR values would come
 * padded: copied and hashed for their shard with the spaces, which the target's CHAR, the shim
 * and every other path drop).
 */
export const SESSION_SETUP = "SET time_zone = '+00:00', sql_mode = REPLACE(REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', ''), 'PAD_CHAR_TO_FULL_LENGTH', '')";

/** The conversions of a spec's columns, derived again from their source types (one rule, no cache needed). */
export function mysqlConversions(spec: TableSpec): ColumnConversion[] {
  return spec.columns.map((c) => mysqlTypeMap.conversion(c.sourceType, `${c.source} of table ${spec.name}`));
}

/** Rows the row path's read has parsed ahead of its caller (the socket is paused beyond). */
const STREAM_ROWS = 8;

/** Lines gathered per shard as a TsvChunk (the blocks sealed). */
function tsvChunkOf(byShard: Map<number, LineBlocks>): TsvChunk {
  const chunk: TsvChunk = { rows: 0, byShard: new Map(), rowsByShard: new Map() };
  for (const [shard, blocks] of byShard) {
    chunk.byShard.set(shard, blocks.done());
    chunk.rowsByShard.set(shard, blocks.lines);
    chunk.rows += blocks.lines;
  }
  return chunk;
}

/** The legacy side when it is MySQL or MariaDB. */
export class MysqlSourceReader implements SourceReader {
  /** Per table: bytes of lines per shard in its last chunk (a hint for the next chunk's first blocks). */
  private readonly shardBytesSeen = new Map<string, number>();
  readonly kind = 'mysql' as const;
  readonly pool: Pool;

  constructor(
    config: Pick<Config, 'source' | 'copy' | 'shards'>,
    private readonly logger: Logger,
    // At least 6: verify's checksums and sync's re-copies share this pool, and their concurrency is not
    // copy.workers (2 by default above 256 shards). Connections open only when needed.
    poolSize = Math.max(4, copyWorkers(config)) + 2,
  ) {
    this.pool = createMysqlPool(config.source.url, { connectionLimit: poolSize }, config.source.tls);
    this.pool.on('connection', (conn) => conn.query(SESSION_SETUP));
  }

  /** The first use of the legacy server in full and verify: a failure to reach it says which server (the driver names a host at most). */
  describeTable(name: string, table: TableConfig): Promise<TableSpec> {
    return describeMysqlTable(this.pool, name, table).catch((e: unknown) => Promise.reject(namedFailure('legacy source (source.url)', e)));
  }

  /**
   * A single integer key is cut by value (src/source/value-ranges.ts): its smallest and largest
   * key and the optimizer's estimates, no pass over the table. Other keys, and tables estimated at
   * under VALUE_RANGES_MIN_CHUNKS chunks (stale statistics of a just-filled table say 0), take
   * keyset boundaries: exact, at the price of reading the keys.
   */
  async *chunkBoundaries(spec: TableSpec, chunkRows: number, after: ChunkKey | null = null): AsyncIterable<ChunkKey> {
    if (hasIntegerKey(spec)) {
      const estimate = await this.estimatedRows(spec);
      if (estimate >= VALUE_RANGES_MIN_CHUNKS * chunkRows) {
        const span = await this.keySpan(spec, after);
        if (!span) return;
        const rangeRows = (lower: bigint, upper: bigint) => this.estimatedRowsIn(spec, [String(lower)], [String(upper)]);
        for await (const bound of valueRangeBounds(span[0], span[1], estimate, chunkRows, rangeRows)) yield [String(bound)];
        return;
      }
    }
    const keys = spec.primaryKey.map(quoteId).join(', ');
    let last = after;
    for (;;) {
      // A bounded skip of chunkRows index entries from the last bound: never an OFFSET from the start.
      const [rows] = await this.pool.query<RowDataPacket[]>({
        sql: `SELECT ${keys} FROM ${qualifiedSource(spec)} ${rangeWhere(spec, last, null)} ORDER BY ${orderBy(spec)} LIMIT 1 OFFSET ${chunkRows - 1}`,
        rowsAsArray: true,
      });
      const row = rows[0] as unknown[] | undefined;
      if (!row) return;
      last = row.map(rawKeyText);
      yield last;
    }
  }

  /** The catalog's row estimate of the table (InnoDB statistics: approximate, free). */
  async estimatedRows(spec: TableSpec): Promise<number> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [spec.sourceSchema, spec.sourceTable]);
    return Number(rows[0]?.n ?? 0);
  }

  /** The optimizer's estimate of the rows with lower < key <= upper (a few index dives, no rows read; 0 when it sees none). */
  async estimatedRowsIn(spec: TableSpec, lower: ChunkKey | null, upper: ChunkKey | null): Promise<number> {
    const [rows] = await this.pool.query<RowDataPacket[]>(`EXPLAIN SELECT ${quoteId(spec.primaryKey[0]!)} FROM ${qualifiedSource(spec)} ${rangeWhere(spec, lower, upper)}`);
    return Number(rows[0]?.rows ?? 0) || 0;
  }

  /** Smallest and largest value of a single integer key after `after`; null when there is none. */
  private async keySpan(spec: TableSpec, after: ChunkKey | null): Promise<[bigint, bigint] | null> {
    const key = quoteId(spec.primaryKey[0]!);
    const [rows] = await this.pool.query<RowDataPacket[]>({ sql: `SELECT MIN(${key}), MAX(${key}) FROM ${qualifiedSource(spec)} ${rangeWhere(spec, after, null)}`, rowsAsArray: true });
    const row = rows[0] as unknown[] | undefined;
    return !row || row[0] === null ? null : [BigInt(String(row[0])), BigInt(String(row[1]))];
  }

  async *readRange(spec: TableSpec, lower: ChunkKey | null, upper: ChunkKey | null, batchRows: number, options: ReadRangeOptions = {}): AsyncIterable<Row[]> {
    const conversions = mysqlConversions(spec);
    const select = spec.columns.map((c, i) => conversions[i]!.selectExpression(quoteId(c.source))).join(', ');
    const sql = `SELECT ${select} FROM ${qualifiedSource(spec)} ${rangeWhere(spec, lower, upper)} ORDER BY ${orderBy(spec)}`;
    // One statement streamed (the socket paused while the caller writes), batches cut at batchRows rows
    // or BATCH_BYTES of values: pages of batchRows rows held whole were batch_rows x the row width
    // (5,000 rows of 1 MB values is 5 GB, and its INSERT statements several times that).
    const conn = await this.pool.getConnection();
    let finished = false;
    try {
      const core = (conn as unknown as { connection: { query(o: { sql: string; rowsAsArray: boolean }): { stream(o: { highWaterMark: number }): AsyncIterable<unknown[]> } } }).connection;
      let batch: Row[] = [];
      let bytes = 0;
      for await (const raw of core.query({ sql, rowsAsArray: true }).stream({ highWaterMark: STREAM_ROWS })) {
        const { row, rejected } = convertRow(spec, conversions, raw);
        if (rejected.length === 0) {
          batch.push(row);
          bytes += rowBytes(row);
        } else if (options.onRejected) for (const r of rejected) options.onRejected(r);
        else throw new UnrepresentableError(rejected[0]!);
        if (batch.length >= batchRows || bytes >= BATCH_BYTES) {
          yield batch;
          batch = [];
          bytes = 0;
        }
      }
      if (batch.length > 0) yield batch;
      finished = true;
    } finally {
      // Left early (a failure, a refused value): the rest of the result is not read, the connection is closed.
      if (finished) conn.release();
      else conn.destroy();
    }
  }

  /**
   * The bulk path of full copy: the source server gives each row's columns in LOAD DATA text and
   * (where SQL can) its shard; Node joins them into lines straight from the row packets and routes
   * the lines into blocks as they arrive. Null when a value in the range cannot be converted, or
   * is bytes too large for the server's HEX() (then the caller takes the row path, which flags the
   * one or reads the other as it is).
   * Rows are not grouped by shard in SQL: GROUP BY sorts the range and re-reads every row by key,
   * which cost the source more than building the lines (6.4 s against 2.8 s of server CPU for 1M
   * member rows).
   */
  async readTsv(spec: TableSpec, lower: ChunkKey | null, upper: ChunkKey | null, map: ShardMap, handOff?: TsvHandOff): Promise<TsvChunk | null> {
    const q = tsvSelect(spec, map);
    let byShard = new Map<number, LineBlocks>();
    // First blocks sized from the last chunk's bytes per shard: ~10 KB with 1,024 shards, 256 KB (the most) with 16.
    const firstBlock = this.shardBytesSeen.get(spec.name);
    let convertible = true;
    /** Bytes of lines in byShard, and of all lines read (for the next chunk's first blocks). */
    let held = 0;
    let bytesRead = 0;
    let shardsSeen = 0;
    const column = new ColumnCursor();
    const sql = `SELECT ${q.select} FROM ${qualifiedSource(spec)} ${rangeWhere(spec, lower, upper)}`;
    await forEachRowBytes(this.pool, sql, (buffer, start, end) => {
      if (!convertible) return; // the rest of the result is only drained
      column.reset(buffer, start);
      column.next();
      // The row path records or refuses it by rows.on_unrepresentable.
      if (column.isNull) return void (convertible = false);
      const shard = q.shardInSql ? column.digits() : map.shardOf(column.text()!);
      if (!Number.isInteger(shard)) throw new Error(`table ${spec.name}: the source gave shard ${column.text()} for a row`);
      if (q.flagged) {
        column.next();
        if (column.digits() !== 1) return void (convertible = false);
      }
      let blocks = byShard.get(shard);
      if (!blocks) byShard.set(shard, (blocks = new LineBlocks(undefined, firstBlock)));
      const before = blocks.bytes;
      try {
        blocks.addRow(buffer, column.at, end, q.escaped);
      } catch (e) {
        // Bytes too large for the server's HEX(): the row path reads them as they are.
        if (!(e instanceof ValueTooLargeError)) throw e;
        return void (convertible = false);
      }
      held += blocks.bytes - before;
      // A part big enough goes to the writers now, the result paused meanwhile: memory per chunk in
      // flight is bounded by partBytes, not by chunk_rows x the row width.
      if (handOff && held >= handOff.partBytes) {
        const part = tsvChunkOf(byShard);
        bytesRead += held;
        shardsSeen = Math.max(shardsSeen, byShard.size);
        byShard = new Map();
        held = 0;
        return handOff.onPart(part);
      }
    });
    if (!convertible) return null;
    bytesRead += held;
    shardsSeen = Math.max(shardsSeen, byShard.size);
    if (shardsSeen > 0) this.shardBytesSeen.set(spec.name, Math.max(1024, Math.ceil((Math.min(bytesRead, handOff?.partBytes ?? Infinity) / shardsSeen) * 1.1)));
    return tsvChunkOf(byShard);
  }

  async rowsByKey(spec: TableSpec, keys: ChunkKey[]): Promise<{ rows: Row[]; rejected: RejectedRow[] }> {
    const { rows, rejected } = await readMysqlRowsByKey(rowsQuery(this.pool), spec, keys);
    return { rows, rejected: rejected.map((r) => ({ key: r.key, message: new UnrepresentableError(r).message })) };
  }

  async startPosition(): Promise<StartPosition> {
    const status = await this.binaryLogStatus();
    const gtid = await this.firstValue(['SELECT @@global.gtid_binlog_pos AS v', 'SELECT @@global.gtid_executed AS v']);
    const file = status[0]?.File ?? null;
    const pos = status[0]?.Position === undefined ? null : Number(status[0].Position);
    if (file === null) this.logger.warn('the source has no binary log: sync will have no position to start from');
    return { kind: 'mysql', position: { file, pos, gtid } };
  }

  /** MySQL 8.4 dropped SHOW MASTER STATUS for SHOW BINARY LOG STATUS (8.2+), which MariaDB does not know. */
  private async binaryLogStatus(): Promise<RowDataPacket[]> {
    try {
      try {
        const [rows] = await this.pool.query<RowDataPacket[]>('SHOW BINARY LOG STATUS');
        return rows;
      } catch (e) {
        if ((e as { code?: string }).code !== 'ER_PARSE_ERROR') throw e;
        const [rows] = await this.pool.query<RowDataPacket[]>('SHOW MASTER STATUS');
        return rows;
      }
    } catch (e) {
      if ((e as { code?: string }).code === 'ER_SPECIFIC_ACCESS_DENIED_ERROR') {
        throw new RefusedError(
          `legacy source (source.url): cannot read the binary log position that sync starts from: the account needs BINLOG MONITOR (MariaDB) or REPLICATION CLIENT (MySQL) on *.* (${(e as Error).message})`,
        );
      }
      throw namedFailure('legacy source (source.url): reading the binary log position', e);
    }
  }

  private async firstValue(queries: string[]): Promise<string | null> {
    for (const sql of queries) {
      try {
        const [rows] = await this.pool.query<RowDataPacket[]>(sql);
        return rows[0]?.v ?? null;
      } catch {
        // Not this server flavour: try the next spelling.
      }
    }
    return null;
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
