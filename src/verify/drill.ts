import { createHash } from 'node:crypto';
import { combineChecksums, differingColumns, emptyChecksum, sameChecksum, type CanonicalHash, type RangeChecksum } from '../rows/canonical.js';
import { nullShardKeyRejection } from '../rows/convert.js';
import { shardKeyPosition, shardKeyText } from '../rows/ddl.js';
import { UnrepresentableError } from '../source/reader.js';
import { rowBytes, type Row, type RowValue, type TableSpec } from '../rows/types.js';
import { orderingStamp } from '../target/writer.js';
import type { ShardMap } from '../shard/map.js';
import type { ChunkKey } from '../store/leases.js';
import { hasIntegerKey } from '../source/value-ranges.js';
import { keyId, type HashedRow, type KeySpan, type LegacySide, type ShardChecksum, type ShardSide } from './sides.js';
import { subRanges, type KeyRange, type RowFilter } from './sql.js';

/**
 * Chunk comparison and drill-down. A chunk is clean when the legacy side's (count, digest)
 * equals the combination over every checked shard and no shard holds a row the shard map routes
 * elsewhere. Otherwise the range is split into sub-ranges checksummed in one scan per side,
 * recursively, down to ranges small enough to compare row by row (key, shard key, hash).
 */

/**
 * unrepresentable: the legacy row holds a value the target cannot hold (rows.on_unrepresentable)
 * or a NULL shard key, so it cannot be copied; its copies on the shards, if any, are kept as they are.
 */
export type DiffKind = 'missing' | 'extra' | 'different' | 'wrong_shard' | 'unrepresentable';

export interface Difference {
  key: ChunkKey;
  kind: DiffKind;
  /**
   * missing/different/unrepresentable: the shard the row belongs in (as far as known); extra/wrong_shard:
   * the shard it was found in. null: none (unrepresentable: the legacy row's shard key is NULL).
   */
  shard: number | null;
  /** different: target names of the columns that differ. */
  columns?: string[];
  /** unrepresentable: which value and why. */
  reason?: string;
  /**
   * Re-checks of a table with an ordering updated_at: that column of the copy on `shard` as seen
   * (extra, wrong_shard, different). A repair's delete of the copy keeps a row stored newer since.
   */
  copyStamp?: RowValue;
  /**
   * Re-checks only: a digest of the rows looked at (legacy and every shard copy), so a difference
   * counts as steady only when nothing in it moved between two looks.
   */
  seen?: string;
}

/** A suspected difference and the range that holds it (for re-reading it later). */
export interface Candidate extends Difference {
  within: KeyRange;
}

export interface DrillContext {
  spec: TableSpec;
  hash: CanonicalHash;
  map: ShardMap;
  legacy: LegacySide;
  shards: ShardSide;
  filter: RowFilter;
  /** Ranges with at most this many rows on each side are compared row by row. */
  leafRows: number;
  /** Sub-ranges per split. */
  fanout: number;
}

export interface ChunkComparison {
  legacy: RangeChecksum;
  target: RangeChecksum;
  candidates: Candidate[];
}

const total = (hash: CanonicalHash, list: RangeChecksum[]) => list.reduce((a, b) => combineChecksums(hash, a, b), emptyChecksum());

function rangeClean(hash: CanonicalHash, legacy: RangeChecksum, shards: ShardChecksum[]): boolean {
  return sameChecksum(legacy, total(hash, shards)) && shards.every((s) => !s.misrouted);
}

export async function compareRange(ctx: DrillContext, range: KeyRange): Promise<ChunkComparison> {
  const [legacy, shards] = await Promise.all([ctx.legacy.checksum(range, ctx.filter), ctx.shards.checksums(range, ctx.filter)]);
  const target = total(ctx.hash, shards);
  if (rangeClean(ctx.hash, legacy, shards)) return { legacy, target, candidates: [] };
  return { legacy, target, candidates: await drill(ctx, range, legacy, shards) };
}

async function drill(ctx: DrillContext, range: KeyRange, legacy: RangeChecksum, shards: ShardChecksum[]): Promise<Candidate[]> {
  const occupied = shards.filter((s) => s.count > 0);
  const biggest = occupied.reduce<ShardChecksum | null>((a, s) => (a && a.count >= s.count ? a : s), null);
  const targetRows = occupied.reduce((n, s) => n + s.count, 0);
  const canSplit = ctx.legacy.canBucket && ctx.shards.sqlShardExpression() !== undefined;
  if (!canSplit || Math.max(legacy.count, targetRows) <= ctx.leafRows) return leaf(ctx, range, occupied.map((s) => s.shard));

  const bounds = await splitPoints(ctx, range, legacy, biggest);
  if (bounds.length === 0) return leaf(ctx, range, occupied.map((s) => s.shard));

  const [legacyBuckets, shardBuckets] = await Promise.all([
    ctx.legacy.bucketChecksums(range, ctx.filter, bounds),
    ctx.shards.bucketChecksums(range, ctx.filter, bounds, occupied.map((s) => s.shard)),
  ]);
  const found: Candidate[] = [];
  const subs = subRanges(range, bounds);
  for (let b = 0; b < subs.length; b++) {
    const sub = subs[b]!;
    const perShard = [...shardBuckets.values()].map((list) => list[b]!);
    if (!rangeClean(ctx.hash, legacyBuckets[b]!, perShard)) found.push(...(await drill(ctx, sub, legacyBuckets[b]!, perShard)));
  }
  return found;
}

/**
 * Up to fanout-1 keys splitting a range, taken from the side with the most rows so each
 * sub-range shrinks whatever the difference. An integer key is split by value between the
 * range's smallest and largest key (no keys read); other keys by reading the range's keys.
 */
async function splitPoints(ctx: DrillContext, range: KeyRange, legacy: RangeChecksum, biggest: ShardChecksum | null): Promise<ChunkKey[]> {
  const fromLegacy = legacy.count >= (biggest?.count ?? 0);
  if (hasIntegerKey(ctx.spec) && ctx.legacy.keySpan) {
    // A bounded range splits by its own bounds; an open end asks the side with the most rows.
    const span: KeySpan | null =
      range.lower && range.upper
        ? [BigInt(range.lower[0]!) + 1n, BigInt(range.upper[0]!)]
        : fromLegacy
          ? await ctx.legacy.keySpan(range, ctx.filter)
          : await ctx.shards.keySpan(range, ctx.filter, biggest!.shard);
    if (!span) return [];
    const [min, max] = span;
    const width = max - min;
    const parts = BigInt(ctx.fanout);
    if (width < parts) return [];
    const bounds: ChunkKey[] = [];
    for (let i = 1n; i < parts; i++) bounds.push([String(min + (width * i) / parts)]);
    return bounds;
  }
  const keys = fromLegacy ? await ctx.legacy.keys(range, ctx.filter) : await ctx.shards.keys(range, ctx.filter, biggest!.shard);
  const step = Math.ceil(keys.length / ctx.fanout);
  const bounds: ChunkKey[] = [];
  for (let i = step - 1; i < keys.length - 1; i += step) bounds.push(keys[i]!);
  return bounds;
}

/** Row-by-row comparison of a small range on the legacy side and the given shards. */
async function leaf(ctx: DrillContext, range: KeyRange, shards: number[]): Promise<Candidate[]> {
  const [legacyRows, shardRows] = await Promise.all([ctx.legacy.rowHashes(range, ctx.filter), shards.length > 0 ? ctx.shards.rowHashes(range, ctx.filter, shards) : []]);
  const legacy = new Map(legacyRows.map((r) => [keyId(r.key), r]));
  const found = new Map<string, (HashedRow & { shard: number })[]>();
  for (const r of shardRows) {
    const id = keyId(r.key);
    found.set(id, [...(found.get(id) ?? []), r]);
  }
  const candidates: Candidate[] = [];
  const checked = new Set(ctx.shards.shards);
  for (const id of new Set([...legacy.keys(), ...found.keys()])) {
    const l = legacy.get(id);
    const copies = found.get(id) ?? [];
    const key = (l ?? copies[0]!).key;
    const diffs = classifyHashes(ctx.spec, ctx.map, l, copies, checked);
    candidates.push(...diffs.map((d) => ({ ...d, key, within: range })));
  }
  return candidates;
}

/**
 * Differences of one key from its legacy row hash (if any) and its copies on the shards. A legacy
 * row whose shard key is NULL is unrepresentable, as copy rejects it; its copies, if any, are kept.
 */
function classifyHashes(spec: TableSpec, map: ShardMap, legacy: HashedRow | undefined, copies: (HashedRow & { shard: number })[], checked: Set<number>): Omit<Difference, 'key'>[] {
  if (!legacy) return copies.map((c) => ({ kind: 'extra', shard: c.shard }));
  if (legacy.shardKey === null) return [{ kind: 'unrepresentable', shard: null, reason: new UnrepresentableError(nullShardKeyRejection(spec, legacy.key)).message }];
  const routed = map.shardOf(legacy.shardKey);
  const out: Omit<Difference, 'key'>[] = [];
  const home = copies.find((c) => c.shard === routed);
  const strays = copies.filter((c) => c.shard !== routed);
  if (!home && checked.has(routed)) out.push(strays.length > 0 ? { kind: 'wrong_shard', shard: strays[0]!.shard } : { kind: 'missing', shard: routed });
  else if (home && home.hash !== legacy.hash) out.push({ kind: 'different', shard: routed });
  // Without a home copy the first stray was reported above, unless the home is not checked (--shards).
  for (const s of home || !checked.has(routed) ? strays : strays.slice(1)) out.push({ kind: 'wrong_shard', shard: s.shard });
  return out;
}

/**
 * The definitive classification of some keys from full rows: the legacy row (if any) and every
 * copy found on the shards looked at. `different` lists the columns whose canonical values differ.
 */
export function classifyRows(spec: TableSpec, map: ShardMap, key: ChunkKey, legacy: Row | undefined, copies: Map<number, Row>, checked: Set<number>): Difference[] {
  const stampAt = stampPosition(spec);
  return classifyCopies(spec, map, key, legacy, copies, checked).map((d) => {
    const copy = d.shard === null ? undefined : copies.get(d.shard);
    return stampAt >= 0 && copy ? { ...d, copyStamp: copy[stampAt] ?? null } : d;
  });
}

/** Where a table's ordering updated_at is in its rows (-1: none). */
function stampPosition(spec: TableSpec): number {
  const stamp = orderingStamp(spec);
  return stamp ? spec.columns.indexOf(stamp) : -1;
}

function classifyCopies(spec: TableSpec, map: ShardMap, key: ChunkKey, legacy: Row | undefined, copies: Map<number, Row>, checked: Set<number>): Difference[] {
  const shardKeyAt = shardKeyPosition(spec);
  if (!legacy) return [...copies.keys()].map((shard) => ({ key, kind: 'extra', shard }));
  const routed = map.shardOf(shardKeyText(spec, legacy, shardKeyAt));
  const out: Difference[] = [];
  const home = copies.get(routed);
  const strays = [...copies.keys()].filter((s) => s !== routed);
  if (!home && checked.has(routed)) out.push(strays.length > 0 ? { key, kind: 'wrong_shard', shard: strays[0]! } : { key, kind: 'missing', shard: routed });
  else if (home) {
    const columns = differingColumns(spec.columns, legacy, home);
    if (columns.length > 0) out.push({ key, kind: 'different', shard: routed, columns });
  }
  for (const s of home || !checked.has(routed) ? strays : strays.slice(1)) out.push({ key, kind: 'wrong_shard', shard: s });
  return out;
}

/** Full rows of this many keys (both sides) are read at once at first... */
const FIRST_GROUP_KEYS = 8;
/** ...then as many as fit about GROUP_BYTES at the bytes per key seen, up to MAX_GROUP_KEYS. */
const MAX_GROUP_KEYS = 500;
const GROUP_BYTES = 8 * 1024 * 1024;

/**
 * Runs `work` over `items` in groups sized by the bytes of rows each group read (work's answer):
 * re-checks and repairs read full rows, and a chunk whose every row differs (a shard server's copy
 * lost, a verify before the copy finished) held them all at once, both sides, whatever their width.
 */
export async function inRowGroups<T>(items: T[], work: (group: T[]) => Promise<number>): Promise<void> {
  let size = FIRST_GROUP_KEYS;
  for (let i = 0; i < items.length; ) {
    const group = items.slice(i, i + size);
    i += group.length;
    const bytes = await work(group);
    size = Math.max(1, Math.min(MAX_GROUP_KEYS, Math.floor(GROUP_BYTES / Math.max(1, bytes / group.length))));
  }
}

/** Bytes of some rows' values (text as its length, bytes as hex), for sizing groups of keys. */
export function rowsBytes(rows: Iterable<Row>): number {
  let n = 0;
  for (const row of rows) n += rowBytes(row);
  return n;
}

/** Looks at the given keys again, by key, on the legacy side and on every shard they may be on. */
export async function recheckKeys(ctx: DrillContext, candidates: Candidate[]): Promise<Difference[]> {
  if (candidates.length === 0) return [];
  const byId = new Map<string, Candidate[]>();
  for (const c of candidates) byId.set(keyId(c.key), [...(byId.get(keyId(c.key)) ?? []), c]);
  const out: Difference[] = [];
  // In groups of keys: only the Differences (no rows) are kept from one group to the next.
  await inRowGroups([...byId.values()], async (lists) => {
    const keys = lists.map((list) => list[0]!.key);
    const within = spanOf(lists.flat().map((c) => c.within));
    const legacy = await ctx.legacy.rowsByKey(keys, within);
    const copies = await ctx.shards.rowsByKey(shardsToLookAgain(ctx, lists, legacy.rows));
    const checked = new Set(ctx.shards.shards);
    for (const list of lists) {
      const id = keyId(list[0]!.key);
      const reason = legacy.unrepresentable.get(id);
      if (reason !== undefined) {
        out.push({ key: list[0]!.key, kind: 'unrepresentable', shard: list[0]!.shard, reason });
        continue;
      }
      const onShards = new Map<number, Row>();
      for (const [shard, rows] of copies) {
        const row = rows.get(id);
        if (row) onShards.set(shard, row);
      }
      const seen = rowsDigest(legacy.rows.get(id), onShards);
      out.push(...classifyRows(ctx.spec, ctx.map, list[0]!.key, legacy.rows.get(id), onShards, checked).map((d) => ({ ...d, seen })));
    }
    let bytes = rowsBytes(legacy.rows.values());
    for (const rows of copies.values()) bytes += rowsBytes(rows.values());
    return bytes;
  });
  return out;
}

/**
 * Per shard, the keys to look for there: each key on the shards its candidates name and at the home
 * its legacy row routes to now. Only there: every key of a group on every shard any of them names
 * read keys × shards rows by key (at 1,024 shards a group of 500 keys touches ~400 shards).
 */
function shardsToLookAgain(ctx: DrillContext, lists: Candidate[][], legacyRows: Map<string, Row>): Map<number, ChunkKey[]> {
  const shardKeyAt = shardKeyPosition(ctx.spec);
  const out = new Map<number, ChunkKey[]>();
  for (const list of lists) {
    const key = list[0]!.key;
    const shards = new Set(list.flatMap((c) => (c.shard === null ? [] : [c.shard])));
    const row = legacyRows.get(keyId(key));
    if (row) shards.add(ctx.map.shardOf(shardKeyText(ctx.spec, row, shardKeyAt)));
    for (const shard of shards) {
      if (!out.has(shard)) out.set(shard, []);
      out.get(shard)!.push(key);
    }
  }
  return out;
}

/** A digest of a key's legacy row and its shard copies (by shard), values as text (bytes as hex). */
function rowsDigest(legacy: Row | undefined, onShards: Map<number, Row>): string {
  const text = (row: Row | undefined) => (row === undefined ? null : row.map((v) => (Buffer.isBuffer(v) ? `x${v.toString('hex')}` : v)));
  const copies = [...onShards].sort(([a], [b]) => a - b).map(([shard, row]) => [shard, text(row)]);
  return createHash('sha1').update(JSON.stringify([text(legacy), copies])).digest('hex');
}

/** The smallest range holding all the given ranges (they come from one chunk, in key order). */
function spanOf(ranges: KeyRange[]): KeyRange {
  const lower = ranges.some((r) => r.lower === null) ? null : ranges[0]!.lower;
  const upper = ranges.some((r) => r.upper === null) ? null : ranges[ranges.length - 1]!.upper;
  return { lower, upper };
}

