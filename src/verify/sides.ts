import { namedFailure } from '../errors.js';
import { quoteId } from '../mysql/connect.js';
import { rowsQuery, type RowsQuery } from '../mysql/pool.js';
import { canonicalKind, canonicalKinds, emptyChecksum, foldHash, rowHash, type CanonicalHash, type RangeChecksum } from '../rows/canonical.js';
import { keyText, nullShardKeyRejection, type RejectedValue } from '../rows/convert.js';
import { keyPositions, shardKeyPosition, shardKeyText } from '../rows/ddl.js';
import { doubleExpression, floatExpression } from '../rows/mysql.js';
import type { ColumnSpec, Row, RowValue, TableSpec } from '../rows/types.js';
import type { ShardMap } from '../shard/map.js';
import { readMysqlRowsByKey } from '../source/mysql/keys.js';
import { MysqlSourceReader } from '../source/mysql/reader.js';
import { rawKeyText } from '../source/mysql/sql.js';
import { UnrepresentableError, type RejectedRow, type SourceReader } from '../source/reader.js';
import type { ChunkKey } from '../store/leases.js';
import {
  bucketChecksumQuery,
  checksumQuery,
  keySpanQuery,
  keysQuery,
  keysWhere,
  legacyKeyBits,
  legacyTableSql,
  rowHashesQuery,
  shardBitsInMultiplier,
  shardChecksumsQuery,
  shardTableSql,
  subRangeChecksumsQuery,
  subRanges,
  whereClause,
  type KeyRange,
  type MysqlTableSql,
  type RowFilter,
} from './sql.js';

/** One row as drill-down sees it: its key (text), its shard key (text) and its canonical hash. */
export interface HashedRow {
  key: ChunkKey;
  /** null: the shard key is NULL, which routes to no shard (the row is reported, not copied). */
  shardKey: string | null;
  hash: bigint;
}

/** Smallest and largest value of a single integer key. */
export type KeySpan = [bigint, bigint];

async function readSpan(query: RowsQuery, sql: string): Promise<KeySpan | null> {
  const r = (await query(sql))[0]!;
  return r[0] === null ? null : [BigInt(String(r[0])), BigInt(String(r[1]))];
}

export const keyId = (key: ChunkKey): string => JSON.stringify(key);

/** The legacy side of one table: checksums, drill-down reads and rows by key. */
export interface LegacySide {
  /** True when it can checksum sub-ranges in one scan (pushdown); false: drill-down reads row hashes directly. */
  readonly canBucket: boolean;
  /** True when rowsByKey reads just those keys; false: it scans the `within` range (too much for the repair queue). */
  readonly readsByKey: boolean;
  checksum(range: KeyRange, filter: RowFilter): Promise<RangeChecksum>;
  bucketChecksums(range: KeyRange, filter: RowFilter, bounds: ChunkKey[]): Promise<RangeChecksum[]>;
  keys(range: KeyRange, filter: RowFilter): Promise<ChunkKey[]>;
  /** Smallest and largest key in a range, for a single integer key; undefined when the side cannot tell cheaply. */
  keySpan?(range: KeyRange, filter: RowFilter): Promise<KeySpan | null>;
  rowHashes(range: KeyRange, filter: RowFilter): Promise<HashedRow[]>;
  /** Rows in target form (row pipeline), by key; `within` is a range that holds them all. */
  rowsByKey(keys: ChunkKey[], within: KeyRange): Promise<LegacyRows>;
}

/**
 * Legacy rows by keyId. A row with a value the target cannot hold (src/rows) is in
 * `unrepresentable` (keyId → why), never taken for absent: repair would delete its copies.
 */
export interface LegacyRows {
  rows: Map<string, Row>;
  unrepresentable: Map<string, string>;
}

export const noLegacyRows = (): LegacyRows => ({ rows: new Map(), unrepresentable: new Map() });

/**
 * LegacyRows from rows read by key and the reader's rejections. A row whose shard key is NULL is
 * unrepresentable too (copy rejects it the same way): it routes to no shard, so it is reported
 * and its copies, if any, are kept, never deleted or rewritten by repair.
 */
export function legacyRowsOf(spec: TableSpec, rows: Iterable<Row>, rejected: Iterable<RejectedRow>): LegacyRows {
  const out = noLegacyRows();
  const shardAt = shardKeyPosition(spec);
  for (const row of rows) {
    if (row[shardAt] === null || row[shardAt] === undefined) {
      const key = keyText(spec, row);
      out.unrepresentable.set(keyId(key), rejectedText(nullShardKeyRejection(spec, key)));
    }
    else out.rows.set(keyId(keyText(spec, row)), row);
  }
  for (const r of rejected) out.unrepresentable.set(keyId(r.key), r.message);
  return out;
}

/** A rejected value as LegacyRows keeps it: its key and what was wrong. */
const rejectedText = (r: RejectedValue): string => new UnrepresentableError(r).message;
const rejectedRow = (r: RejectedValue): RejectedRow => ({ key: r.key, message: rejectedText(r) });

/** A driver value read from a shard table, in target form (src/rows/types.ts). */
export function targetValue(v: unknown): RowValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || Buffer.isBuffer(v)) return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  throw new TypeError(`unexpected driver value of type ${typeof v}`);
}

/** Rows (bucket, count, digest) of a bucketed checksum query → one checksum per bucket (empty ones included). */
const bucketsFrom = (rows: unknown[][], count: number): RangeChecksum[] => {
  const out = Array.from({ length: count }, emptyChecksum);
  for (const r of rows) out[Number(r[0])] = { count: Number(r[1]), digest: BigInt(String(r[2])) };
  return out;
};

/** MySQL legacy side: everything computed by the legacy server (pushdown). */
export class MysqlLegacySide implements LegacySide {
  readonly canBucket = true;
  readonly readsByKey = true;
  private readonly t: MysqlTableSql;
  /** The checks' statements, each failing when the legacy server does not answer in time. */
  private readonly query: RowsQuery;
  constructor(
    private readonly reader: MysqlSourceReader,
    private readonly spec: TableSpec,
    hash: CanonicalHash,
    map: ShardMap,
    statementTimeoutMs: number,
  ) {
    this.t = legacyTableSql(spec, hash, legacyKeyBits(spec, map, hash));
    const query = rowsQuery(reader.pool, statementTimeoutMs);
    this.query = (sql) => query(sql).catch((e: unknown) => Promise.reject(namedFailure('legacy server', e)));
  }

  private where(range: KeyRange, filter: RowFilter): string {
    return whereClause(this.t, range, filter, 'legacy');
  }

  async checksum(range: KeyRange, filter: RowFilter): Promise<RangeChecksum> {
    const r = (await this.query(checksumQuery(this.t, this.where(range, filter))))[0]!;
    return { count: Number(r[0]), digest: BigInt(String(r[1])) };
  }

  async bucketChecksums(range: KeyRange, filter: RowFilter, bounds: ChunkKey[]): Promise<RangeChecksum[]> {
    const sql = subRangeChecksumsQuery(this.t, subRanges(range, bounds), (sub) => this.where(sub, filter));
    return bucketsFrom(await this.query(sql), bounds.length + 1);
  }

  async keys(range: KeyRange, filter: RowFilter): Promise<ChunkKey[]> {
    return (await this.query(keysQuery(this.t, this.where(range, filter)))).map((r) => r.map(rawKeyText));
  }

  keySpan(range: KeyRange, filter: RowFilter): Promise<KeySpan | null> {
    return readSpan(this.query, keySpanQuery(this.t, this.where(range, filter)));
  }

  /** The optimizer's estimate of the rows in a key range (a few index dives, no rows read; 0 when it sees none). */
  estimatedRowsIn(range: KeyRange): Promise<number> {
    return this.reader.estimatedRowsIn(this.spec, range.lower, range.upper);
  }

  /** The catalog's row estimate (InnoDB statistics: approximate, free). */
  estimatedRows(): Promise<number> {
    return this.reader.estimatedRows(this.spec);
  }

  async rowHashes(range: KeyRange, filter: RowFilter): Promise<HashedRow[]> {
    const rows = await this.query(rowHashesQuery(this.t, this.where(range, filter)));
    const width = this.t.keyColumns.length;
    return rows.map((r) => ({ key: r.slice(0, width).map(rawKeyText), shardKey: r[width] === null ? null : rawKeyText(r[width]), hash: BigInt(String(r[width + 1])) }));
  }

  async rowsByKey(keys: ChunkKey[]): Promise<LegacyRows> {
    const { rows, rejected } = await readMysqlRowsByKey(this.query, this.spec, keys);
    return legacyRowsOf(this.spec, rows, rejected.map(rejectedRow));
  }
}

/**
 * Any legacy side, through SourceReader.readRange: rows converted by the row pipeline and hashed
 * in Node. Used where the legacy database cannot compute the canonical hash itself (e.g. a SQL
 * Server column type without an exact T-SQL canonical form).
 */
export class StreamingLegacySide implements LegacySide {
  readonly canBucket = false;
  readonly readsByKey: boolean = false;
  private readonly kinds;
  private readonly keyAt: number[];
  private readonly keyBits: number;
  constructor(
    private readonly reader: SourceReader,
    protected readonly spec: TableSpec,
    private readonly hash: CanonicalHash,
    private readonly map: ShardMap,
    private readonly batchRows = 2000,
  ) {
    this.kinds = canonicalKinds(spec.columns);
    this.keyAt = keyPositions(spec);
    this.keyBits = legacyKeyBits(spec, map, hash);
  }

  private keep(filter: RowFilter): (row: Row) => boolean {
    const sinceAt = filter.since ? this.spec.columns.findIndex((c) => c.source === filter.since!.legacyColumn) : -1;
    const shards = filter.shards ? new Set(filter.shards.list) : null;
    const shardAt = shardKeyPosition(this.spec);
    return (row) => {
      if (sinceAt >= 0 && !(row[sinceAt] !== null && sinceText(String(row[sinceAt])) >= filter.since!.value)) return false;
      // A NULL shard key is in no shard, so in none of those selected.
      if (shards && (row[shardAt] === null || !shards.has(this.map.shardOf(shardKeyText(this.spec, row, shardAt))))) return false;
      return true;
    };
  }

  private async *rows(range: KeyRange, filter: RowFilter): AsyncIterable<Row> {
    const keep = this.keep(filter);
    for await (const batch of this.reader.readRange(this.spec, range.lower, range.upper, this.batchRows)) for (const row of batch) if (keep(row)) yield row;
  }

  async checksum(range: KeyRange, filter: RowFilter): Promise<RangeChecksum> {
    const c = emptyChecksum();
    for await (const row of this.rows(range, filter)) {
      c.count++;
      c.digest = foldHash(this.hash, c.digest, rowHash(this.hash, this.kinds, row, this.keyAt, this.keyBits));
    }
    return c;
  }

  bucketChecksums(): Promise<RangeChecksum[]> {
    return Promise.reject(new Error('the streaming legacy side has no bucketed checksums'));
  }

  async keys(range: KeyRange, filter: RowFilter): Promise<ChunkKey[]> {
    const out: ChunkKey[] = [];
    for await (const row of this.rows(range, filter)) out.push(keyText(this.spec, row));
    return out;
  }

  async rowHashes(range: KeyRange, filter: RowFilter): Promise<HashedRow[]> {
    const out: HashedRow[] = [];
    const shardAt = shardKeyPosition(this.spec);
    for await (const row of this.rows(range, filter)) {
      const shardKey = row[shardAt] === null ? null : shardKeyText(this.spec, row, shardAt);
      out.push({ key: keyText(this.spec, row), shardKey, hash: rowHash(this.hash, this.kinds, row, this.keyAt, this.keyBits) });
    }
    return out;
  }

  async rowsByKey(keys: ChunkKey[], within: KeyRange): Promise<LegacyRows> {
    const wanted = new Set(keys.map(keyId));
    const rows: Row[] = [];
    const rejected: RejectedRow[] = [];
    const onRejected = (r: RejectedValue) => {
      if (wanted.has(keyId(r.key))) rejected.push(rejectedRow(r));
    };
    for await (const batch of this.reader.readRange(this.spec, within.lower, within.upper, this.batchRows, { onRejected })) {
      for (const row of batch) if (wanted.has(keyId(keyText(this.spec, row)))) rows.push(row);
    }
    return legacyRowsOf(this.spec, rows, rejected);
  }
}

/**
 * A date/time value in --since's form (src/cli/commands/verify.ts parseSince: 'YYYY-MM-DD
 * HH:MM:SS.ffffff'), so that text order is time order: a DATETIME(0) or DATE value equal to --since
 * was a shorter text, so "less", and left out on this side only. Other text is left as it is.
 */
export function sinceText(value: string): string {
  const m = /^(\d{4}-\d\d-\d\d)(?:[ T](\d\d:\d\d:\d\d)(?:\.(\d+))?)?/.exec(value);
  if (!m) return value;
  return `${m[1]} ${m[2] ?? '00:00:00'}.${(m[3] ?? '').padEnd(6, '0').slice(0, 6)}${value.slice(m[0].length)}`;
}

/**
 * How a shard column is read for comparison: FLOAT and DOUBLE as their exact text
 * (src/rows/mysql.ts); YEAR as its four digits, as the legacy side gives it (mysql2 makes a YEAR
 * a number, and 0000 then read as 0: a repaired row never compared equal).
 */
function readExpression(column: ColumnSpec): string {
  const quoted = quoteId(column.target);
  const kind = canonicalKind(column.targetType);
  if (kind === 'float') return floatExpression(quoted);
  if (kind === 'double') return doubleExpression(quoted);
  if (/^year\b/i.test(column.targetType)) return `CAST(${quoted} AS CHAR)`;
  return quoted;
}

/** Per shard: count, digest, and whether it holds rows the shard map routes to another shard. */
export interface ShardChecksum extends RangeChecksum {
  shard: number;
  misrouted: boolean;
}

/** Every checked shard of one table, on every shard server (always MySQL, always pushdown). */
export class ShardSide {
  private readonly tables = new Map<number, MysqlTableSql>();
  private readonly checked: number[];
  /** Checked shards grouped by server name. */
  private readonly byServer = new Map<string, number[]>();
  private readonly width: number;
  /** Low bits of the key multiplier that are the row's shard (0: routing is checked apart). */
  private readonly shardBits: number;

  constructor(
    /** Statements on a shard server, each failing when it does not answer in time. */
    private readonly queryOn: (server: string) => RowsQuery,
    private readonly spec: TableSpec,
    private readonly hash: CanonicalHash,
    private readonly map: ShardMap,
    shards: number[],
  ) {
    this.checked = shards;
    for (const shard of shards) {
      const server = map.serverOf(shard).name;
      this.byServer.set(server, [...(this.byServer.get(server) ?? []), shard]);
    }
    this.width = spec.primaryKey.length;
    this.shardBits = shardBitsInMultiplier(spec, map, hash);
  }

  /** The shards this run checks (all, or those of --shards). */
  get shards(): number[] {
    return this.checked;
  }

  private t(shard: number): MysqlTableSql {
    let t = this.tables.get(shard);
    if (!t) {
      const database = this.map.databaseOf(shard);
      t = this.shardBits > 0 ? shardTableSql(this.spec, database, this.hash, this.shardBits, shard) : shardTableSql(this.spec, database, this.hash);
      this.tables.set(shard, t);
    }
    return t;
  }

  /** Runs one statement per server over the given shards (the checked shards by default), in parallel. */
  private async perServer<T>(shards: number[] | undefined, run: (query: RowsQuery, shards: number[]) => Promise<T[]>): Promise<T[]> {
    let groups = this.byServer;
    if (shards) {
      groups = new Map();
      for (const shard of shards) {
        const server = this.map.serverOf(shard).name;
        groups.set(server, [...(groups.get(server) ?? []), shard]);
      }
    }
    return (await Promise.all([...groups].map(([server, list]) => this.onServer(server, (query) => run(query, list))))).flat();
  }

  /** Runs work on one server's pool; a failure names the server (the driver's "Access denied" does not). */
  private onServer<T>(server: string, work: (query: RowsQuery) => Promise<T>): Promise<T> {
    return work(this.queryOn(server)).catch((e: unknown) => Promise.reject(namedFailure(`shard server ${server}`, e)));
  }

  /**
   * The SQL shard function for the per-row routing check (the `misrouted` flag); undefined where
   * the row hash checks routing itself (shardBits > 0) or the function has no SQL form (then Node
   * routes the keys).
   */
  private misroutedExpression(): ((column: string) => string) | undefined {
    return this.shardBits > 0 ? undefined : this.sqlShardExpression();
  }

  async checksums(range: KeyRange, filter: RowFilter): Promise<ShardChecksum[]> {
    const expression = this.misroutedExpression();
    const results = await this.perServer(undefined, async (query, shards) => {
      const sql = shardChecksumsQuery(
        shards.map((shard) => ({ shard, t: this.t(shard), where: whereClause(this.t(shard), range, filter) })),
        expression,
      );
      return (await query(sql)).map((r) => ({ shard: Number(r[0]), count: Number(r[1]), digest: BigInt(String(r[2])), misrouted: Number(r[3]) === 1 }));
    });
    if (this.shardBits === 0 && expression === undefined) await this.countMisroutedInNode(results, range, filter);
    return results;
  }

  /** Shard functions without an SQL form (murmur3): route each shard's keys in Node. */
  private async countMisroutedInNode(results: ShardChecksum[], range: KeyRange, filter: RowFilter): Promise<void> {
    for (const r of results) {
      if (r.count === 0) continue;
      const rows = await this.rowHashes(range, filter, [r.shard]);
      r.misrouted = rows.some((h) => h.shardKey === null || this.map.shardOf(h.shardKey) !== r.shard);
    }
  }

  /** Per shard and sub-range: count, hash sum, whether it holds misrouted rows (SQL shard functions only; else false). */
  async bucketChecksums(range: KeyRange, filter: RowFilter, bounds: ChunkKey[], shards: number[]): Promise<Map<number, ShardChecksum[]>> {
    const expression = this.misroutedExpression();
    const rows = await this.perServer(shards, async (query, list) => {
      const sql = list
        .map((shard) => bucketChecksumQuery(this.t(shard), whereClause(this.t(shard), range, filter), bounds, { shard, ...(expression ? { expression } : {}) }))
        .join(' UNION ALL ');
      return query(sql);
    });
    const out = new Map<number, ShardChecksum[]>();
    for (const shard of shards) out.set(shard, Array.from({ length: bounds.length + 1 }, () => ({ shard, count: 0, digest: 0n, misrouted: false })));
    for (const r of rows) out.get(Number(r[0]))![Number(r[1])] = { shard: Number(r[0]), count: Number(r[2]), digest: BigInt(String(r[3])), misrouted: Number(r[4]) === 1 };
    return out;
  }

  /** The SQL form of the shard function, when it has one (mod, crc32). */
  sqlShardExpression(): ((column: string) => string) | undefined {
    return this.map.sqlShardExpression('k') === undefined ? undefined : (c) => this.map.sqlShardExpression(c)!;
  }

  async keys(range: KeyRange, filter: RowFilter, shard: number): Promise<ChunkKey[]> {
    const rows = await this.onServer(this.map.serverOf(shard).name, (query) => query(keysQuery(this.t(shard), whereClause(this.t(shard), range, filter))));
    return rows.map((r) => r.map(rawKeyText));
  }

  keySpan(range: KeyRange, filter: RowFilter, shard: number): Promise<KeySpan | null> {
    return this.onServer(this.map.serverOf(shard).name, (query) => readSpan(query, keySpanQuery(this.t(shard), whereClause(this.t(shard), range, filter))));
  }

  async rowHashes(range: KeyRange, filter: RowFilter, shards: number[]): Promise<(HashedRow & { shard: number })[]> {
    const w = this.width;
    return this.perServer(shards, async (query, list) => {
      const sql = list.map((shard) => rowHashesQuery(this.t(shard), whereClause(this.t(shard), range, filter), shard)).join(' UNION ALL ');
      return (await query(sql)).map((r) => ({
        shard: Number(r[0]),
        key: r.slice(1, 1 + w).map(rawKeyText),
        shardKey: r[1 + w] === null ? null : rawKeyText(r[1 + w]),
        hash: BigInt(String(r[2 + w])),
      }));
    });
  }

  /**
   * Full rows (target form) of some keys, each looked for on the shards given for it: shard → keys
   * to look for there. Answer: shard → key id → row.
   */
  async rowsByKey(keysByShard: Map<number, ChunkKey[]>): Promise<Map<number, Map<string, Row>>> {
    const out = new Map<number, Map<string, Row>>();
    const positions = keyPositions(this.spec);
    const columns = this.spec.columns.map(readExpression).join(', ');
    await this.perServer([...keysByShard.keys()], async (query, list) => {
      for (const shard of list) {
        const found = new Map<string, Row>();
        const keys = keysByShard.get(shard)!;
        for (let i = 0; i < keys.length; i += 500) {
          const rows = await query(`SELECT ${columns} FROM ${this.t(shard).table} ${keysWhere(this.t(shard), keys.slice(i, i + 500))}`);
          for (const raw of rows) {
            const row = raw.map(targetValue);
            found.set(keyId(positions.map((p) => rawKeyText(row[p]))), row);
          }
        }
        out.set(shard, found);
      }
      return [];
    });
    return out;
  }
}
