import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { Config, TableConfig } from '../../config/schema.js';
import type { Logger } from '../../log.js';
import { createMysqlPool, quoteId } from '../../mysql/connect.js';
import { convertRow } from '../../rows/convert.js';
import { mysqlTypeMap } from '../../rows/mysql.js';
import type { ColumnConversion, Row, TableSpec } from '../../rows/types.js';
import type { ShardMap } from '../../shard/map.js';
import type { ChunkKey } from '../../store/leases.js';
import { UnrepresentableError, type ReadRangeOptions, type SourceReader, type StartPosition, type TsvChunk } from '../reader.js';
import { describeMysqlTable } from './catalog.js';
import { readMysqlRowsByKey } from './keys.js';
import { orderBy, qualifiedSource, rangeWhere, rawKeyText } from './sql.js';
import { tsvSelect } from './tsv.js';

/**
 * Every session reads in UTC, as the shard writer writes: TIMESTAMP values keep their instant.
 * GROUP_CONCAT may hold a whole chunk's lines for one shard (checked against the line count).
 * Key literals are escaped with backslashes, so NO_BACKSLASH_ESCAPES is taken out of the session.
 */
const SESSION_SETUP =
  "SET time_zone = '+00:00', group_concat_max_len = 1073741824, sql_mode = REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', '')";

/** The conversions of a spec's columns, derived again from their source types (one rule, no cache needed). */
export function mysqlConversions(spec: TableSpec): ColumnConversion[] {
  return spec.columns.map((c) => mysqlTypeMap.conversion(c.sourceType, `${c.source} of table ${spec.name}`));
}

function countLines(body: Buffer): number {
  let n = 0;
  for (let at = body.indexOf(0x0a); at !== -1; at = body.indexOf(0x0a, at + 1)) n++;
  return n;
}

/** The legacy side when it is MySQL or MariaDB. */
export class MysqlSourceReader implements SourceReader {
  readonly kind = 'mysql' as const;
  readonly pool: Pool;

  constructor(
    config: Pick<Config, 'source' | 'copy'>,
    private readonly logger: Logger,
    poolSize = config.copy.workers + 2,
  ) {
    this.pool = createMysqlPool(config.source.url, { connectionLimit: poolSize }, config.source.tls);
    this.pool.on('connection', (conn) => conn.query(SESSION_SETUP));
  }

  describeTable(name: string, table: TableConfig): Promise<TableSpec> {
    return describeMysqlTable(this.pool, name, table);
  }

  async *chunkBoundaries(spec: TableSpec, chunkRows: number): AsyncIterable<ChunkKey> {
    const keys = spec.primaryKey.map(quoteId).join(', ');
    let last: ChunkKey | null = null;
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

  async *readRange(spec: TableSpec, lower: ChunkKey | null, upper: ChunkKey | null, batchRows: number, options: ReadRangeOptions = {}): AsyncIterable<Row[]> {
    const conversions = mysqlConversions(spec);
    const select = [...spec.columns.map((c, i) => conversions[i]!.selectExpression(quoteId(c.source))), ...spec.primaryKey.map(quoteId)].join(', ');
    const width = spec.columns.length;
    let after = lower;
    for (;;) {
      const [rows] = await this.pool.query<RowDataPacket[]>({
        sql: `SELECT ${select} FROM ${qualifiedSource(spec)} ${rangeWhere(spec, after, upper)} ORDER BY ${orderBy(spec)} LIMIT ${batchRows}`,
        rowsAsArray: true,
      });
      if (rows.length === 0) return;
      const batch: Row[] = [];
      for (const raw of rows as unknown as unknown[][]) {
        const { row, rejected } = convertRow(spec, conversions, raw);
        if (rejected.length === 0) batch.push(row);
        else if (options.onRejected) for (const r of rejected) options.onRejected(r);
        else throw new UnrepresentableError(rejected[0]!);
      }
      if (batch.length > 0) yield batch;
      if (rows.length < batchRows) return;
      after = (rows[rows.length - 1] as unknown as unknown[]).slice(width).map(rawKeyText);
    }
  }

  /**
   * The bulk path of full copy: the source server computes each row's shard and its LOAD DATA
   * text line, and (where SQL can compute the shard) concatenates the lines of each shard, so
   * Node only moves a few large buffers per chunk. Null when a value in the range cannot be
   * converted (then the caller takes the row path, which flags it).
   */
  async readTsv(spec: TableSpec, lower: ChunkKey | null, upper: ChunkKey | null, map: ShardMap): Promise<TsvChunk | null> {
    const q = tsvSelect(spec, map);
    const from = `${qualifiedSource(spec)} ${rangeWhere(spec, lower, upper)}`;
    if (q.shardInSql) {
      const grouped = await this.readTsvGrouped(q.select, from);
      if (grouped !== 'truncated') return grouped;
      this.logger.warn({ table: spec.name, lower, upper }, 'a shard block of this chunk is too large to concatenate; reading it row by row (lower copy.chunk_rows)');
    }
    return this.readTsvRows(q.select, from, q.shardInSql, map, spec);
  }

  /**
   * One row per shard: line count and the concatenated lines. Escaping leaves exactly one raw
   * newline per line, so counting them proves GROUP_CONCAT cut nothing off.
   */
  private async readTsvGrouped(select: string, from: string): Promise<TsvChunk | null | 'truncated'> {
    const [rows] = await this.pool.query<RowDataPacket[]>({
      sql: `SELECT shard, COUNT(*), MIN(ok), GROUP_CONCAT(line SEPARATOR '') FROM (SELECT ${select} FROM ${from}) AS r GROUP BY shard`,
      rowsAsArray: true,
    });
    const chunk: TsvChunk = { rows: 0, byShard: new Map(), rowsByShard: new Map() };
    for (const [shard, count, ok, body] of rows as unknown as [number | string, number | string, number | string, Buffer | null][]) {
      if (Number(ok) !== 1) return null;
      if (body === null || countLines(body) !== Number(count) || body[body.length - 1] !== 0x0a) return 'truncated';
      chunk.byShard.set(Number(shard), [body]);
      chunk.rowsByShard.set(Number(shard), Number(count));
      chunk.rows += Number(count);
    }
    return chunk;
  }

  private async readTsvRows(select: string, from: string, shardInSql: boolean, map: ShardMap, spec: TableSpec): Promise<TsvChunk | null> {
    const [rows] = await this.pool.query<RowDataPacket[]>({ sql: `SELECT ${select} FROM ${from}`, rowsAsArray: true });
    const chunk: TsvChunk = { rows: rows.length, byShard: new Map(), rowsByShard: new Map() };
    for (const raw of rows as unknown as [number | string, Buffer | null, number | string][]) {
      if (Number(raw[2]) !== 1) return null;
      if (raw[1] === null) throw new Error(`table ${spec.name}: a row's text form is NULL (longer than the source's max_allowed_packet?)`);
      const shard = shardInSql ? Number(raw[0]) : map.shardOf(String(raw[0]));
      let lines = chunk.byShard.get(shard);
      if (!lines) chunk.byShard.set(shard, (lines = []));
      lines.push(raw[1]);
      chunk.rowsByShard.set(shard, lines.length);
    }
    return chunk;
  }

  async rowsByKey(spec: TableSpec, keys: ChunkKey[]): Promise<{ rows: Row[]; rejected: string[] }> {
    const { rows, rejected } = await readMysqlRowsByKey(this.pool, spec, keys);
    return { rows, rejected: rejected.map((r) => new UnrepresentableError(r).message) };
  }

  async startPosition(): Promise<StartPosition> {
    const [status] = await this.pool.query<RowDataPacket[]>('SHOW MASTER STATUS');
    const gtid = await this.firstValue(['SELECT @@global.gtid_binlog_pos AS v', 'SELECT @@global.gtid_executed AS v']);
    const file = status[0]?.File ?? null;
    const pos = status[0]?.Position === undefined ? null : Number(status[0].Position);
    if (file === null) this.logger.warn('the source has no binary log: sync will have no position to start from');
    return { kind: 'mysql', position: { file, pos, gtid } };
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
