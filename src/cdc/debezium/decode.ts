import { Unrepresentable, type ColumnSpec, type RowValue, type SourceType, type TableSpec } from '../../rows/types.js';
import { respellableKeyPositions } from '../../rows/ddl.js';
import { RefusedError } from '../../errors.js';
import type { ChangeEvent, ChangeOrigin, PoisonEvent } from '../types.js';
import { parseJsonLossless } from './json.js';
import { BadValue, decodeValue, encodingOfField, encodingOfSourceType, encodingProblem, withSqlServerConversion, type DecodeOptions, type Encoding, type FieldSchema } from './values.js';

/**
 * Debezium change events (JsonConverter, with or without schemas) to ChangeEvents in target form.
 *
 * - c / r / u: an upsert of the after image; a `u` whose before image has another shard key also
 *   carries that key (beforeShardKey) so apply can delete the row from its old shard, and a `u`
 *   whose primary key changed becomes a delete of the old key plus an upsert of the new one.
 * - d: a delete by key, from the before image or, when there is none, from the message key.
 * - a null value is a tombstone (Kafka compaction's marker after a delete): nothing to apply.
 * - t (truncate) and anything that cannot be decoded exactly become poison: dead-lettered with the
 *   reason, never applied and never skipped silently.
 */

export interface KafkaRecord {
  topic: string;
  partition: number;
  /** Offset as decimal text. */
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
}

export type Decoded =
  | { kind: 'changes'; events: ChangeEvent[] }
  | { kind: 'tombstone' }
  | { kind: 'poison'; poison: PoisonEvent };

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A table of the config with what decoding needs, prepared once. */
interface TableEntry {
  spec: TableSpec;
  keyColumns: ColumnSpec[];
  shardColumn: ColumnSpec;
  /** Positions of the key and shard key columns: all a before image is read for, besides updated_at. */
  keyAndShard: number[];
  /**
   * Position of the updated_at column (spec.updatedAt), -1 without: read from a before image on
   * its own (updatedAtOf), since a value it cannot decode must not fail the event.
   */
  updatedAtPosition: number;
  /**
   * The shard's key equates keys of other bytes ('k1' and 'K1' under a _ci collation, 'k' and 'k '
   * under PAD SPACE): a key change between such spellings is a delete of one and an upsert of the
   * other, which Debezium puts in different partitions, applied in either order. A delete of such
   * a key is therefore copied again from legacy (which holds the slot's current spelling, or nothing).
   */
  keyRespellable: boolean;
  /** Positions of text columns in a legacy character set or code page that is not UTF-8 (see recodedText). */
  legacyCharsetText: number[];
  /** Legacy's columns when sync started: the spec's and the excluded ones (see unknownColumn). */
  knownColumns: Set<string>;
  /** Schema-less encodings per connector family. */
  defaults: Map<string, Encoding[]>;
  /** Encodings per parsed schema (one object per table version, see schemaCache) and connector family. */
  fromSchema: Record<Connector, WeakMap<object, Encoding[]>>;
}

type Connector = DecodeOptions['connector'];

export interface DecoderOptions extends Pick<DecodeOptions, 'decimalHandling'> {
  /**
   * As the Connect worker's `value.converter.replace.null.with.default` (Kafka's default: true):
   * a NULL in a nullable column with a default arrives as that default, so such a value cannot be
   * trusted and its row is copied again from legacy.
   */
  replaceNullWithDefault: boolean;
  /** Per table name, the legacy columns the config leaves out (tables.NAME.exclude_columns): events may carry them. */
  excludedColumns?: Record<string, string[]>;
}

class Poison extends Error {}

export class DebeziumDecoder {
  private readonly tables = new Map<string, TableEntry>();

  constructor(
    specs: TableSpec[],
    private readonly options: DecoderOptions = { decimalHandling: 'precise', replaceNullWithDefault: true },
  ) {
    for (const spec of specs) {
      refuseUnstreamedTypes(spec);
      const byName = new Map(spec.columns.map((c) => [c.source, c]));
      const keyColumns = spec.primaryKey.map((k) => byName.get(k)!);
      const shardColumn = byName.get(spec.shardKey);
      if (!shardColumn || keyColumns.some((c) => !c)) throw new Error(`table ${spec.name}: key or shard key column missing from its spec`);
      const keyAndShard = [...new Set([...keyColumns, shardColumn].map((c) => spec.columns.indexOf(c)))];
      const fromSchema = { mysql: new WeakMap(), sqlserver: new WeakMap() };
      const keyRespellable = respellableKeyPositions(spec).length > 0;
      const legacyCharsetText = spec.columns.flatMap((c, i) => (inLegacyCharset(c.sourceType) ? [i] : []));
      this.tables.set(`${spec.sourceSchema}.${spec.sourceTable}`.toLowerCase(), {
        spec,
        keyColumns,
        shardColumn,
        keyAndShard,
        updatedAtPosition: spec.columns.findIndex((c) => c.source === spec.updatedAt),
        keyRespellable,
        legacyCharsetText,
        knownColumns: new Set([...spec.columns.map((c) => c.source), ...(options.excludedColumns?.[spec.name] ?? [])]),
        defaults: new Map(),
        fromSchema,
      });
    }
  }

  decode(record: KafkaRecord): Decoded {
    const origin: ChangeOrigin = { source: record.topic, partition: record.partition, offset: record.offset };
    if (record.value === null || record.value.length === 0) return { kind: 'tombstone' };
    let table: TableEntry | undefined;
    try {
      const { payload, schema } = envelope(record.value, 'value');
      if (payload === null) return { kind: 'tombstone' };
      if (!isObject(payload) || typeof payload.op !== 'string' || !isObject(payload.source)) {
        throw new Poison('not a Debezium change event: expected an envelope with "op" and "source"');
      }
      const source = payload.source;
      const connector = source.connector === 'sqlserver' ? 'sqlserver' : 'mysql';
      const qualified = connector === 'sqlserver' ? `${String(source.schema)}.${String(source.table)}` : `${String(source.db)}.${String(source.table)}`;
      table = this.tables.get(qualified.toLowerCase());
      if (!table) throw new Poison(`unknown table ${qualified}: it is not in the config's tables`);
      const sourceTsMs = typeof source.ts_ms === 'number' ? source.ts_ms : typeof source.ts_ms === 'string' ? Number(source.ts_ms) : undefined;
      if (typeof source.commit_lsn === 'string') origin.commitLsn = source.commit_lsn.replace(/:/g, '').toLowerCase();
      const base = { table: table.spec.name, origin, ...(sourceTsMs !== undefined ? { sourceTsMs } : {}) };
      const unknown = unknownColumn(table, payload);
      if (unknown !== undefined) throw new Poison(unknownColumnReason(table.spec.name, unknown));
      const encodings = this.encodings(table, connector, schema);
      switch (payload.op) {
        case 'c':
        case 'r':
        case 'u':
          return { kind: 'changes', events: this.upsert(table, payload, encodings, base, connector) };
        case 'd':
          return { kind: 'changes', events: [this.delete(table, payload, encodings, record.key, connector, base)] };
        case 't':
          throw new Poison(`truncate of ${qualified}: a TRUNCATE cannot be replayed row by row; copy the table again with full, then resolve this dead letter`);
        default:
          throw new Poison(`unknown op ${JSON.stringify(payload.op)} (expected c, r, u or d)`);
      }
    } catch (e) {
      // Anything else an event's shape made go wrong is recorded with it too: thrown, it failed the batch,
      // and the consumer fetched the same event again for ever. --retry-dead-letters replays it after a fix.
      if (e instanceof RefusedError) throw e; // a connector setting that loses digits: sync stops, nothing applies
      const known = e instanceof Poison || e instanceof BadValue;
      const reason = e instanceof SyntaxError ? `not JSON: ${e.message}` : known ? (e as Error).message : `could not be decoded: ${String((e as Error).message ?? e)}`;
      return {
        kind: 'poison',
        poison: { origin, ...(table ? { table: table.spec.name } : {}), messageKey: record.key, rawValue: record.value, reason },
      };
    }
  }

  /** Column encodings in spec order: from the event's schema when present, else from the source types. */
  private encodings(table: TableEntry, connector: Connector, schema: unknown): Encoding[] {
    if (isObject(schema) && Array.isArray(schema.fields)) {
      const known = table.fromSchema[connector].get(schema);
      if (known) return known;
      const image = schemaFields(schema).find((f) => f.field === 'after' || f.field === 'before');
      if (image && Array.isArray((image as { fields?: unknown }).fields)) {
        const byName = new Map(schemaFields(image).map((f) => [f.field, f]));
        const encodings = table.spec.columns.map((c) => this.encodingOf(c, byName.get(c.source), connector));
        table.fromSchema[connector].set(schema, encodings);
        return encodings;
      }
    }
    let cached = table.defaults.get(connector);
    if (!cached) {
      cached = table.spec.columns.map((c) => this.encodingOf(c, undefined, connector));
      table.defaults.set(connector, cached);
    }
    return cached;
  }

  /**
   * A column's encoding: from its field in the event's schema (refused, value by value, where the
   * connector's settings lose what the copy keeps: encodingProblem), else from its source type.
   */
  private encodingOf(column: ColumnSpec, field: FieldSchema | undefined, connector: Connector): Encoding {
    const fromField = field ? encodingOfField(field) : undefined;
    const problem = fromField ? encodingProblem(fromField, column) : undefined;
    if (fromField && problem) return { ...fromField, problem };
    const encoding = fromField ?? encodingOfSourceType(column.sourceType, { decimalHandling: this.options.decimalHandling, connector });
    // SQL Server text and datetimeoffset finish through the copy path's type map: the same text in both.
    return connector === 'sqlserver' ? withSqlServerConversion(encoding, column) : encoding;
  }

  private upsert(table: TableEntry, payload: Json, encodings: Encoding[], base: Omit<ChangeEvent, 'op' | 'key' | 'after'>, connector: Connector): ChangeEvent[] {
    if (!isObject(payload.after)) throw new Poison(`op ${String(payload.op)} without an "after" image`);
    const recoded = recodedText(table, payload.after);
    // Such a row is copied again from legacy: its text columns are taken as they came, not refused.
    const after = decodeImage(table.spec.columns, encodings, payload.after, 'after', false, undefined, recoded ? table.legacyCharsetText : undefined);
    const key = keyOf(table, after, 'after');
    const events: ChangeEvent[] = [];
    let moved: { beforeShardKey: RowValue; beforeUpdatedAt?: RowValue } | undefined;
    if (payload.op === 'u' && isObject(payload.before)) {
      const before = decodeImage(table.spec.columns, encodings, payload.before, 'before', true, table.keyAndShard);
      const oldKey = keyOf(table, before, 'before');
      if (!sameValues(oldKey, key)) {
        events.push({ ...base, op: 'delete', key: oldKey, after: null, beforeShardKey: before[table.spec.shardKey] ?? null, ...updatedAtOf(table, encodings, payload.before), ...respelled(table) });
      } else if (before[table.spec.shardKey] !== undefined && !sameValue(before[table.spec.shardKey]!, after[table.spec.shardKey]!)) {
        moved = { beforeShardKey: before[table.spec.shardKey]!, ...updatedAtOf(table, encodings, payload.before) };
      }
    }
    if (after[table.spec.shardKey] === null) throw new Poison(`shard key ${table.spec.shardKey} is null in the after image`);
    const recopy = recoded ?? (this.options.replaceNullWithDefault ? defaultOrNull(table, encodings, payload.after) : undefined);
    events.push({ ...base, op: 'upsert', key, after, ...moved, ...(recopy ? { recopy } : {}) });
    return events;
  }

  private delete(table: TableEntry, payload: Json, encodings: Encoding[], messageKey: Buffer | null, connector: Connector, base: Omit<ChangeEvent, 'op' | 'key' | 'after'>): ChangeEvent {
    let image: Record<string, RowValue>;
    if (isObject(payload.before)) {
      image = decodeImage(table.spec.columns, encodings, payload.before, 'before', true, table.keyAndShard);
    } else {
      // Key-only delete: the message key holds the primary key columns.
      if (!messageKey) throw new Poison('delete without a before image or a message key');
      const { payload: keyPayload, schema: keySchema } = envelope(messageKey, 'key');
      if (!isObject(keyPayload)) throw new Poison('delete without a before image, and the message key is not an object');
      const fields = isObject(keySchema) && Array.isArray(keySchema.fields) ? new Map(schemaFields(keySchema).map((f) => [f.field, f])) : undefined;
      const columns = table.keyColumns.includes(table.shardColumn) ? table.keyColumns : [...table.keyColumns, table.shardColumn];
      image = decodeImage(
        columns,
        columns.map((c) => this.encodingOf(c, fields?.get(c.source), connector)),
        keyPayload,
        'key',
        true,
      );
    }
    const key = keyOf(table, image, isObject(payload.before) ? 'before' : 'key');
    const shard = image[table.spec.shardKey];
    if (shard === undefined || shard === null) throw new Poison(`delete without the shard key ${table.spec.shardKey}: cannot tell which shard holds the row`);
    const updatedAt = isObject(payload.before) ? updatedAtOf(table, encodings, payload.before) : {};
    return { ...base, op: 'delete', key, after: null, beforeShardKey: shard, ...updatedAt, ...respelled(table) };
  }
}

/**
 * A column of the event's images that sync did not read from legacy's catalog when it started:
 * added on legacy since (ALTER TABLE ... ADD COLUMN while sync runs). Decoded by the known columns
 * only, its value would never reach the shards; every event carrying it is poison instead, so the
 * table's events after the change wait, in log order, until the shards have the column.
 */
function unknownColumn(table: TableEntry, payload: Json): string | undefined {
  for (const image of [payload.after, payload.before]) {
    if (!isObject(image)) continue;
    for (const name of Object.keys(image)) if (!table.knownColumns.has(name)) return name;
  }
  return undefined;
}

function unknownColumnReason(table: string, column: string): string {
  return (
    `table ${table}: column ${column} is in the event but was not in legacy's table when sync started (added since?), so its value would be lost; ` +
    `add it to the shard tables (membermig init names what differs) and restart sync, then replay these events with --retry-dead-letters ` +
    `(or leave it out with tables.${table}.exclude_columns)`
  );
}

/** UTF-8 character sets: Debezium's Java strings carry their text exactly. */
const UTF8_CHARSETS = /^utf8/i;

/**
 * A before image's updated_at, so a delete of it keeps a newer row (ChangeEvent.beforeUpdatedAt).
 * A value that cannot be decoded only leaves the delete unbounded, as before images without it.
 */
function updatedAtOf(table: TableEntry, encodings: Encoding[], before: Json): { beforeUpdatedAt?: RowValue } {
  if (table.updatedAtPosition < 0) return {};
  try {
    const v = decodeImage(table.spec.columns, encodings, before, 'before', true, [table.updatedAtPosition])[table.spec.updatedAt!];
    return v === undefined || v === null ? {} : { beforeUpdatedAt: v };
  } catch (e) {
    if (e instanceof Poison) return {};
    throw e;
  }
}

function respelled(table: TableEntry): { recopy?: string } {
  return table.keyRespellable ? { recopy: `a delete of a ${table.spec.name} key the shards may hold in another spelling (case or trailing spaces)` } : {};
}

/**
 * Debezium decodes text in a legacy character set or code page with Java's charsets, which differ
 * from the server's where it matters: MySQL's latin1 and SQL Server's code page 1252 map 0x81, 0x8D,
 * 0x8F, 0x90 and 0x9D to U+0081.., Java's windows-1252 has no such bytes and sends U+FFFD (and its
 * CJK code pages lack some of Windows' characters). So U+FFFD in such a column says the event lost
 * a byte: the row is copied again from legacy, as `full` reads it (which flags bytes that really
 * are invalid).
 */
function recodedText(table: TableEntry, after: Json): string | undefined {
  for (const i of table.legacyCharsetText) {
    const column = table.spec.columns[i]!;
    const value = after[column.source];
    if (typeof value === 'string' && value.includes('\uFFFD')) {
      const charset = column.sourceType.charset ?? column.sourceType.collation;
      return `column ${column.source} (${charset}) arrived with U+FFFD: Debezium's Java charset could not decode a legacy byte`;
    }
  }
  return undefined;
}

/**
 * SQL Server's hierarchyid: the copy and direct CDC read its text (/1/2/), Debezium's SQL Server
 * connector has no such form (it sends the CLR bytes, or leaves the column out), so every change
 * would be dead-lettered or written as bytes. Refused before sync starts.
 */
function refuseUnstreamedTypes(spec: TableSpec): void {
  const column = spec.columns.find((c) => c.sourceType.dataType.toLowerCase() === 'hierarchyid');
  if (column) {
    throw new RefusedError(
      `table ${spec.name}: column ${column.source} is hierarchyid, which Debezium's SQL Server connector does not send as its text (/1/2/) as full copies it; leave it out with tables.${spec.name}.exclude_columns, or use cdc.mssql (sync reads SQL Server's CDC tables itself)`,
    );
  }
}

/**
 * Text whose bytes Debezium decodes itself: MySQL text in a character set other than UTF-8, and
 * SQL Server's non-Unicode types (char, varchar, text) in any collation, _UTF8 ones included (SQL
 * Server stores bytes that are no UTF-8 there, which the copy flags and Java turns into U+FFFD).
 */
function inLegacyCharset(type: SourceType): boolean {
  if (type.charset !== undefined) return !UTF8_CHARSETS.test(type.charset);
  return ['char', 'varchar', 'text'].includes(type.dataType.toLowerCase()) && type.collation !== undefined;
}

/**
 * A nullable column whose value is its default may have been NULL: Kafka Connect's JsonConverter
 * replaces a null with the field's default (replace.null.with.default, on unless the worker turns
 * it off). The row is copied again from legacy, which holds the truth.
 */
function defaultOrNull(table: TableEntry, encodings: Encoding[], image: Json): string | undefined {
  for (let i = 0; i < encodings.length; i++) {
    const fallback = encodings[i]!.nullableDefault;
    if (fallback === undefined) continue;
    const column = table.spec.columns[i]!;
    if (JSON.stringify(image[column.source]) === JSON.stringify(fallback)) {
      return `column ${column.source} arrived as its default, which Kafka Connect's JSON converter also sends for a NULL (value.converter.replace.null.with.default)`;
    }
  }
  return undefined;
}

function envelope(bytes: Buffer, what: 'key' | 'value'): { payload: unknown; schema: unknown } {
  const split = splitWithSchema(bytes);
  try {
    if (split) return { schema: split.schema, payload: parseJsonLossless(split.payloadText) };
  } catch {
    // not the converter's exact layout after all: parse the whole message below
  }
  let doc: unknown;
  try {
    doc = parseJsonLossless(bytes.toString('utf8'));
  } catch (e) {
    throw new Poison(`message ${what} is not JSON: ${(e as Error).message}`);
  }
  if (isObject(doc) && 'payload' in doc && 'schema' in doc && Object.keys(doc).length === 2) return { payload: doc.payload, schema: doc.schema };
  return { payload: doc, schema: undefined };
}

const SCHEMA_PREFIX = Buffer.from('{"schema":');
const PAYLOAD_KEY = Buffer.from(',"payload":');
const CLOSING_BRACE = 0x7d;

/**
 * Parsed schemas with their bytes: every event of a table version carries the same schema (most of
 * its bytes), so an event is first compared with these (memcmp, no search, decoding or hashing)
 * and only a new schema is searched for and parsed. The newest first; a few table versions at a time.
 */
const schemaCache: { bytes: Buffer; schema: unknown }[] = [];
const SCHEMAS_KEPT = 64;

/**
 * JsonConverter with schemas writes {"schema":{...},"payload":{...}} in that order. The schema
 * cannot hold the text ,"payload": (its keys are fixed, and quotes inside strings are escaped), so
 * the first one ends it: the schema is parsed once per distinct text and only the payload per event.
 * A cached schema followed by ,"payload": is that first one, since the text cannot overlap itself.
 */
function splitWithSchema(bytes: Buffer): { schema: unknown; payloadText: string } | undefined {
  const start = SCHEMA_PREFIX.length;
  if (bytes.length < start || bytes.compare(SCHEMA_PREFIX, 0, start, 0, start) !== 0 || bytes[bytes.length - 1] !== CLOSING_BRACE) return undefined;
  let entry = schemaCache.find((e) => {
    const end = start + e.bytes.length;
    if (bytes.length < end + PAYLOAD_KEY.length) return false;
    return bytes.compare(e.bytes, 0, e.bytes.length, start, end) === 0 && bytes.compare(PAYLOAD_KEY, 0, PAYLOAD_KEY.length, end, end + PAYLOAD_KEY.length) === 0;
  });
  if (!entry) {
    const at = bytes.indexOf(PAYLOAD_KEY, start);
    if (at < 0) return undefined;
    let schema: unknown;
    try {
      // Lossless: a BIGINT column's default is compared with its values (defaultOrNull).
      schema = parseJsonLossless(bytes.toString('utf8', start, at));
    } catch {
      return undefined;
    }
    entry = { bytes: Buffer.from(bytes.subarray(start, at)), schema };
    schemaCache.unshift(entry);
    if (schemaCache.length > SCHEMAS_KEPT) schemaCache.pop();
  }
  return { schema: entry.schema, payloadText: bytes.toString('utf8', start + entry.bytes.length + PAYLOAD_KEY.length, bytes.length - 1) };
}

/**
 * One image (after, before or the key) by source column name, in target form: all columns, or
 * those at `positions` (a before image is read only for its key and shard key, which is all a
 * change needs of it; its other values are never written).
 */
function decodeImage(columns: ColumnSpec[], encodings: Encoding[], image: Json, what: string, partial = false, positions?: number[], asCame?: number[]): Record<string, RowValue> {
  const out: Record<string, RowValue> = {};
  const count = positions ? positions.length : columns.length;
  for (let p = 0; p < count; p++) {
    const i = positions ? positions[p]! : p;
    const c = columns[i]!;
    if (!(c.source in image)) {
      if (partial) continue;
      throw new Poison(`column ${c.source} is missing from the ${what} image`);
    }
    const raw = image[c.source];
    if (asCame?.includes(i) && typeof raw === 'string') {
      out[c.source] = raw;
      continue;
    }
    let v: RowValue | Unrepresentable;
    try {
      v = decodeValue(raw, encodings[i]!, c);
    } catch (e) {
      if (e instanceof BadValue) throw new Poison(`column ${c.source} (${what}): ${e.message}`);
      throw e;
    }
    if (v instanceof Unrepresentable) throw new Poison(`column ${c.source} (${what}): ${v.reason}`);
    out[c.source] = v;
  }
  return out;
}

function keyOf(table: TableEntry, image: Record<string, RowValue>, what: string): Record<string, RowValue> {
  const key: Record<string, RowValue> = {};
  for (const c of table.keyColumns) {
    const v = image[c.source];
    if (v === undefined || v === null) throw new Poison(`key column ${c.source} is missing or null in the ${what} image`);
    key[c.source] = v;
  }
  return key;
}

function sameValue(a: RowValue, b: RowValue): boolean {
  if (a === null || b === null) return a === b;
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  return a === b;
}

function sameValues(a: Record<string, RowValue>, b: Record<string, RowValue>): boolean {
  return Object.keys(a).every((k) => sameValue(a[k] ?? null, b[k] ?? null));
}

/**
 * A schema's field list, entries that are not objects left out: a malformed schema (a null in
 * `fields`) threw out of decode, failing the batch, and the consumer fetched it again for ever;
 * its columns are then missing, which makes the event poison with a reason.
 */
function schemaFields(schema: object): FieldSchema[] {
  const fields = (schema as { fields?: unknown }).fields;
  return Array.isArray(fields) ? fields.filter((f): f is FieldSchema => isObject(f)) : [];
}
