import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type sql from 'mssql';
import { Lsn } from '../../cdc/mssql/lsn.js';
import type { TableConfig } from '../../config/schema.js';
import { RefusedError } from '../../errors.js';
import { checkTableConfig, targetColumnName } from '../table-config.js';
import type { Logger } from '../../log.js';
import { mssqlTypeMap, type MssqlColumnConversion, type MssqlTypeMap } from '../../rows/mssql/typemap.js';
import { BATCH_BYTES, rowBytes, Unrepresentable, type ColumnConversion, type ColumnSpec, type Row, type SourceType, type TableSpec } from '../../rows/types.js';
import type { ChunkKey } from '../../store/leases.js';
import { UnrepresentableError, type ReadRangeOptions, type RejectedRow, type SourceReader, type StartPosition } from '../reader.js';
import { bindRequest, describeMssqlUrl, openMssqlPool, type MssqlConnectOptions } from './connect.js';
import {
  boundaryQuery,
  characterLength,
  DESCRIBE_COLUMNS_SQL,
  FIND_OBJECT_SQL,
  KEY_HISTOGRAM_SQL,
  keySpanQuery,
  MAX_LSN_SQL,
  MAX_PARAMS,
  rowsByKeyQuery,
  CAPTURE_INSTANCES_SQL,
  captureJobBehind,
  type CaptureInstanceRow,
  pageQuery,
  PRIMARY_KEY_SQL,
  quoteName,
  quoteTable,
  TABLE_ROWS_SQL,
  type KeyColumn,
  type SqlStatement,
} from './tsql.js';
import { histogramEstimate, type HistogramStep } from './histogram.js';
import { hasIntegerKey, valueRangeBounds, VALUE_RANGES_MIN_CHUNKS, type RangeEstimate } from '../value-ranges.js';

/** A value the target cannot hold, with where it was found (rows.on_unrepresentable: record). */
export interface RejectedValue {
  table: string;
  /** Primary key values (key text) by source column name. */
  key: Record<string, string>;
  column: string;
  value: string;
  reason: string;
}

/** Rows the row path's read takes ahead of its caller (the request is paused beyond). */
const STREAM_ROWS = 64;

/**
 * An UnrepresentableError (what `full` stops on under rows.on_unrepresentable: fail, as it does for
 * a MySQL source), its key named by column.
 */
export class UnrepresentableValueError extends UnrepresentableError {
  override name = 'UnrepresentableValueError';
  constructor(readonly found: RejectedValue) {
    super({ table: found.table, key: Object.values(found.key), column: found.column, value: found.value, reason: found.reason });
    this.message =
      `table ${found.table}, row ${JSON.stringify(found.key)}, column ${found.column}: ${found.reason}` +
      ' (set rows.on_unrepresentable: record to record such values and go on)';
  }
}

export interface MssqlReaderOptions {
  url: string;
  connect?: MssqlConnectOptions;
  logger: Logger;
  typeMap?: MssqlTypeMap;
  /**
   * The type map for describing tables (their target DDL), resolved on first use; default typeMap.
   * Lets the factory ask the shard servers whether they are MySQL or MariaDB.
   */
  describeTypeMap?: () => Promise<MssqlTypeMap>;
  /** Rows per keyset page (one SELECT TOP (n)); batches are cut from the streamed page. */
  pageRows?: number;
  /** Called by close(), e.g. to close the pool the rejected values are written to. */
  onClose?: () => Promise<void>;
}

/** Column facts from sys.columns, as DESCRIBE_COLUMNS_SQL returns them. */
export interface CatalogColumn {
  column_name: string;
  type_name: string;
  max_length: number;
  precision: number;
  scale: number;
  collation_name: string | null;
  is_nullable: boolean;
  is_computed: boolean;
}

const DECIMAL_TYPES = new Set(['decimal', 'numeric']);
const SCALED_TEMPORAL_TYPES = new Set(['datetime2', 'time', 'datetimeoffset']);

/** sys.columns row → SourceType (pure). */
export function sourceTypeOf(c: CatalogColumn): SourceType {
  const dataType = c.type_name.toLowerCase();
  const type: SourceType = { dataType };
  if (['char', 'varchar', 'nchar', 'nvarchar', 'sysname', 'binary', 'varbinary'].includes(dataType)) {
    type.length = characterLength(dataType, c.max_length);
  }
  if (['text', 'ntext', 'image', 'xml'].includes(dataType)) type.length = -1;
  if (DECIMAL_TYPES.has(dataType)) {
    type.precision = c.precision;
    type.scale = c.scale;
  }
  if (SCALED_TEMPORAL_TYPES.has(dataType)) type.scale = c.scale;
  if (c.collation_name) type.collation = c.collation_name;
  return type;
}

/**
 * Builds the TableSpec from catalog rows (pure): checks the primary key, the shard key and the
 * excluded columns, and maps every column through the type map. Throws RefusedError naming the
 * table and column.
 */
export function buildTableSpec(
  name: string,
  table: TableConfig,
  catalog: CatalogColumn[],
  primaryKey: string[],
  typeMap: MssqlTypeMap = mssqlTypeMap,
): TableSpec {
  const [schema, tableName] = splitSource(table.source);
  const where = `table ${name} (source ${table.source})`;
  checkTableConfig(name, where, table, new Set(catalog.map((c) => c.column_name)), primaryKey);

  const columns: ColumnSpec[] = [];
  for (const c of catalog) {
    if (table.exclude_columns.includes(c.column_name)) continue;
    const sourceType = sourceTypeOf(c);
    const conversion = typeMap.conversion(sourceType, `${where}, column ${c.column_name}`);
    if (primaryKey.includes(c.column_name) && !conversion.key) {
      throw new RefusedError(`${where}: primary key column ${c.column_name} has type ${sourceType.dataType}, which membermig cannot page by`);
    }
    const targetType = (primaryKey.includes(c.column_name) && conversion.keyTargetType) || conversion.targetType;
    columns.push({ source: c.column_name, target: targetColumnName(table, c.column_name), sourceType, targetType, nullable: c.is_nullable });
  }
  const shardKeyType = columns.find((c) => c.source === table.shard_key)!.sourceType;
  if (!isShardableType(shardKeyType)) {
    throw new RefusedError(
      `${where}: shard key column ${table.shard_key} has type ${shardKeyType.dataType}; it must be an integer (tinyint, smallint, int, bigint, or decimal/numeric with scale 0) or a text column (char, varchar, nchar, nvarchar) (config: tables.${name}.shard_key)`,
    );
  }
  return {
    name,
    sourceSchema: schema,
    sourceTable: tableName,
    target: table.target,
    columns,
    primaryKey,
    shardKey: table.shard_key,
    ...(table.updated_at ? { updatedAt: table.updated_at } : {}),
  };
}

/**
 * The shard key's text is what the shard function hashes, here as in the services' shim: integers
 * and text have one text form; bytes, GUIDs (which casing?), dates and floats do not.
 */
function isShardableType(type: SourceType): boolean {
  if (['tinyint', 'smallint', 'int', 'bigint'].includes(type.dataType)) return true;
  if (['decimal', 'numeric'].includes(type.dataType)) return type.scale === 0;
  return ['char', 'varchar', 'nchar', 'nvarchar', 'sysname'].includes(type.dataType) && type.length !== -1;
}

export function splitSource(source: string): [string, string] {
  const dot = source.indexOf('.');
  return [source.slice(0, dot), source.slice(dot + 1)];
}

/** The conversions and key bindings the reader needs for a spec (the spec itself is plain data). */
export interface ReadPlan {
  table: string;
  conversions: MssqlColumnConversion[];
  columns: string[];
  keys: KeyColumn[];
}

export function readPlan(spec: TableSpec, typeMap: MssqlTypeMap = mssqlTypeMap): ReadPlan {
  const conversions = spec.columns.map((c) => typeMap.conversion(c.sourceType, `table ${spec.name}, column ${c.source}`));
  const keys = spec.primaryKey.map((k) => {
    const i = spec.columns.findIndex((c) => c.source === k);
    const binding = conversions[i]?.key;
    if (!binding) throw new RefusedError(`table ${spec.name}: primary key column ${k} cannot be paged by`);
    return { quoted: quoteName(k), binding };
  });
  return {
    table: quoteTable(spec.sourceSchema, spec.sourceTable),
    conversions,
    columns: spec.columns.map((c, i) => conversions[i]!.selectExpression(quoteName(c.source))),
    keys,
  };
}

/** The reader for `source.kind: mssql`. Connects on first use. */
export class MssqlReader implements SourceReader {
  readonly kind = 'mssql' as const;
  private pool: Promise<sql.ConnectionPool> | null = null;
  private readonly typeMap: MssqlTypeMap;
  private describeMap: Promise<MssqlTypeMap> | undefined;
  private readonly pageRows: number;

  constructor(private readonly options: MssqlReaderOptions) {
    this.typeMap = options.typeMap ?? mssqlTypeMap;
    this.pageRows = options.pageRows ?? 20_000;
  }

  /** The connection pool, opened on first use (also used by the CDC source). */
  connection(): Promise<sql.ConnectionPool> {
    if (!this.pool) {
      this.options.logger.debug({ server: describeMssqlUrl(this.options.url) }, 'connecting to SQL Server');
      this.pool = openMssqlPool(this.options.url, this.options.connect);
      this.pool.catch(() => (this.pool = null));
    }
    return this.pool;
  }

  async request(statement: SqlStatement): Promise<sql.Request> {
    return bindRequest((await this.connection()).request(), statement.params);
  }

  async describeTable(name: string, table: TableConfig): Promise<TableSpec> {
    const [schema, tableName] = splitSource(table.source);
    const found = await this.query<{ object_id: number }>(FIND_OBJECT_SQL, [
      { name: 'schema', type: 'nvarchar', value: schema },
      { name: 'table', type: 'nvarchar', value: tableName },
    ]);
    if (found.length === 0) throw new RefusedError(`table ${name}: ${table.source} does not exist in SQL Server database ${describeMssqlUrl(this.options.url)} (config: tables.${name}.source)`);
    const objectId = found[0]!.object_id;
    const catalog = await this.query<CatalogColumn>(DESCRIBE_COLUMNS_SQL, [{ name: 'object_id', type: 'int', value: objectId }]);
    const pk = await this.query<{ column_name: string }>(PRIMARY_KEY_SQL, [{ name: 'object_id', type: 'int', value: objectId }]);
    this.describeMap ??= this.options.describeTypeMap?.() ?? Promise.resolve(this.typeMap);
    return buildTableSpec(name, table, catalog, pk.map((r) => r.column_name), await this.describeMap);
  }

  /**
   * A single integer key is cut by value (src/source/value-ranges.ts): its smallest and largest key,
   * the rows the partitions count and the statistics histogram of its index, no pass over the table.
   * Other keys, tables of under VALUE_RANGES_MIN_CHUNKS chunks, and a key without a histogram to
   * read take keyset bounds: exact, at the price of reading the keys.
   */
  async *chunkBoundaries(spec: TableSpec, chunkRows: number, after: ChunkKey | null = null): AsyncIterable<ChunkKey> {
    const plan = readPlan(spec, this.typeMap);
    const byValue = hasIntegerKey(spec) ? await this.valueRangePlan(spec, plan, chunkRows, after) : null;
    if (byValue) {
      for await (const bound of valueRangeBounds(byValue.min, byValue.max, byValue.rows, chunkRows, byValue.estimate)) yield [String(bound)];
      return;
    }
    let lower = after;
    for (;;) {
      const stmt = boundaryQuery(plan.table, plan.keys, lower, chunkRows);
      const rows = await this.query<Record<string, unknown>>(stmt.text, stmt.params);
      if (rows.length === 0) return;
      lower = keyOf(spec, rows[0]!, plan.keys.length);
      yield lower;
    }
  }

  /** What cutting by value takes; null where keyset bounds are the way (a small table, no key after `after`, no histogram). */
  private async valueRangePlan(spec: TableSpec, plan: ReadPlan, chunkRows: number, after: ChunkKey | null): Promise<{ min: bigint; max: bigint; rows: number; estimate: RangeEstimate } | null> {
    const table = [{ name: 'table', type: 'nvarchar' as const, value: plan.table }];
    const rows = Number((await this.query<{ n: number | string | null }>(TABLE_ROWS_SQL, table))[0]?.n ?? 0);
    if (rows < VALUE_RANGES_MIN_CHUNKS * chunkRows) return null;
    const spanStatement = keySpanQuery(plan.table, plan.keys[0]!, after);
    const span = (await this.query<{ lo: string | null; hi: string | null }>(spanStatement.text, spanStatement.params))[0];
    if (!span || span.lo === null || span.hi === null) return null;
    let steps: HistogramStep[];
    try {
      steps = (await this.query<{ high_key: string; range_rows: number; equal_rows: number }>(KEY_HISTOGRAM_SQL, table)).map((r) => ({
        high: BigInt(r.high_key),
        rangeRows: Number(r.range_rows),
        equalRows: Number(r.equal_rows),
      }));
    } catch (e) {
      // An older server (no sys.dm_db_stats_histogram) or no right to read statistics: the keys, read, plan it.
      this.options.logger.warn({ table: spec.name, err: (e as Error).message }, 'cannot read the key histogram: chunk bounds are read from the keys instead');
      return null;
    }
    if (steps.length === 0) return null;
    const [min, max] = [BigInt(span.lo), BigInt(span.hi)];
    return { min, max, rows, estimate: histogramEstimate(steps, rows, max) };
  }

  async *readRange(spec: TableSpec, lower: ChunkKey | null, upper: ChunkKey | null, batchRows: number, options: ReadRangeOptions = {}): AsyncIterable<Row[]> {
    const plan = readPlan(spec, this.typeMap);
    let after = lower;
    let batch: Row[] = [];
    let batchBytes = 0;
    for (;;) {
      const stmt = pageQuery({ table: plan.table, columns: plan.columns, keys: plan.keys, lower: after, upper, limit: this.pageRows });
      const request = await this.request(stmt);
      // The readable stream pauses the request while its buffer is full: backpressure down to the socket.
      // Rows read ahead are held too: a few dozen, not batchRows (5,000 rows of MB-sized values).
      const stream: Readable = request.toReadableStream({ highWaterMark: Math.min(batchRows, STREAM_ROWS) });
      let count = 0;
      let done = false;
      try {
        // Callback form: in stream mode errors arrive on the stream, not as a rejected promise.
        request.query(stmt.text, () => {});
        for await (const raw of stream as AsyncIterable<Record<string, unknown>>) {
          count++;
          after = keyOf(spec, raw, plan.keys.length);
          const { row, rejected } = convertMssqlRow(spec, plan.conversions, raw, after);
          if (rejected.length === 0) {
            batch.push(row);
            batchBytes += rowBytes(row);
          }
          // As the SourceReader contract says: the caller records them (copy, under rows.on_unrepresentable:
          // record, into rejected_values), else the read stops at the first.
          else if (options.onRejected) for (const r of rejected) options.onRejected({ table: r.table, key: after, column: r.column, value: r.value, reason: r.reason });
          else throw new UnrepresentableValueError(rejected[0]!);
          // Cut at BATCH_BYTES too: batchRows rows of MB-sized values would be held whole.
          if (batch.length >= batchRows || batchBytes >= BATCH_BYTES) {
            yield batch;
            batch = [];
            batchBytes = 0;
          }
        }
        done = true;
      } finally {
        if (!done) request.cancel();
      }
      if (count < this.pageRows) break;
    }
    if (batch.length > 0) yield batch;
  }

  /** The rows with these keys, one keyed statement per batch below SQL Server's parameter limit. */
  async rowsByKey(spec: TableSpec, keys: ChunkKey[]): Promise<{ rows: Row[]; rejected: RejectedRow[] }> {
    const plan = readPlan(spec, this.typeMap);
    const perStatement = Math.max(1, Math.floor(MAX_PARAMS / plan.keys.length));
    const rows: Row[] = [];
    const rejected: RejectedRow[] = [];
    for (let i = 0; i < keys.length; i += perStatement) {
      const stmt = rowsByKeyQuery({ table: plan.table, columns: plan.columns, keys: plan.keys, values: keys.slice(i, i + perStatement) });
      for (const raw of await this.query<Record<string, unknown>>(stmt.text, stmt.params)) {
        const key = keyOf(spec, raw, plan.keys.length);
        const converted = convertMssqlRow(spec, plan.conversions, raw, key);
        if (converted.rejected.length === 0) rows.push(converted.row);
        else rejected.push({ key, message: converted.rejected.map((r) => new UnrepresentableValueError(r).message).join('; ') });
      }
    }
    return { rows, rejected };
  }

  /** The highest LSN in the CDC change tables (sys.fn_cdc_get_max_lsn); null when CDC is not enabled. */
  async maxLsn(): Promise<Lsn | null> {
    const lsn = (await this.query<{ max_lsn: Buffer | null }>(MAX_LSN_SQL, []))[0]?.max_lsn;
    return lsn ? Lsn.parse(lsn) : null;
  }

  /**
   * The capture job's max LSN. A capture instance created moments ago starts after it until the
   * job has read that far; sync would then find its start before the instance's window, so this
   * waits (up to startWaitMs) for the job to pass the newest instance's first LSN.
   */
  async startPosition(startWaitMs = 60_000): Promise<StartPosition> {
    for (const deadline = Date.now() + startWaitMs; ; await sleep(1000)) {
      const max = await this.maxLsn();
      if (!max) {
        throw new RefusedError(
          `SQL Server database ${describeMssqlUrl(this.options.url)} has no CDC position (sys.fn_cdc_get_max_lsn() is NULL): ` +
            'enable CDC (sys.sp_cdc_enable_db, sys.sp_cdc_enable_table) and make sure SQL Server Agent runs',
        );
      }
      const behind = captureJobBehind(await this.query<CaptureInstanceRow>(CAPTURE_INSTANCES_SQL, []), max.toBuffer());
      if (!behind) return { kind: 'mssql', position: { lsn: max.toString() } };
      if (Date.now() > deadline) {
        throw new RefusedError(
          `the CDC capture job has not reached the newest capture instance after ${startWaitMs / 1000} s (${behind}): ` +
            'check that SQL Server Agent and the capture job run, then run full again',
        );
      }
    }
  }

  async query<T>(text: string, params: SqlStatement['params']): Promise<T[]> {
    const request = await this.request({ text, params });
    const result = await request.query<T>(text);
    return result.recordset ?? [];
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    if (pool) await (await pool.catch(() => null))?.close();
    await this.options.onClose?.();
  }
}

/**
 * A row in target form, and every value in it the target cannot hold (each left NULL in the row,
 * which is then not written), as rows/convert.ts does for a MySQL source: all are recorded.
 */
export function convertMssqlRow(spec: TableSpec, conversions: ColumnConversion[], raw: Record<string, unknown>, keyText: string[]): { row: Row; rejected: RejectedValue[] } {
  const row: Row = new Array(conversions.length);
  let rejected: RejectedValue[] | undefined;
  for (let i = 0; i < conversions.length; i++) {
    let value;
    try {
      value = conversions[i]!.convert(raw[ALIASES[i] ?? `c${i}`]);
    } catch (e) {
      throw new Error(`table ${spec.name}, row ${JSON.stringify(keyRecord(spec, keyText))}, column ${spec.columns[i]!.source}: ${(e as Error).message}`);
    }
    if (value instanceof Unrepresentable) {
      (rejected ??= []).push({ table: spec.name, key: keyRecord(spec, keyText), column: spec.columns[i]!.source, value: value.value, reason: value.reason });
      row[i] = null;
    } else {
      row[i] = value;
    }
  }
  return { row, rejected: rejected ?? [] };
}

/** Column aliases [c0]… as property names, built once (the hot loop reads them per value). */
const ALIASES = Array.from({ length: 1024 }, (_v, i) => `c${i}`);

function keyOf(spec: TableSpec, raw: Record<string, unknown>, n: number): string[] {
  const key: string[] = [];
  for (let i = 0; i < n; i++) {
    const v = raw[`k${i}`];
    if (v === null || v === undefined) throw new Error(`table ${spec.name}: primary key column ${spec.primaryKey[i]} read as NULL`);
    key.push(typeof v === 'string' ? v : String(v));
  }
  return key;
}

function keyRecord(spec: TableSpec, keyText: string[]): Record<string, string> {
  return Object.fromEntries(spec.primaryKey.map((k, i) => [k, keyText[i] ?? '']));
}
