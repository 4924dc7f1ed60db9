import type { Pool, RowDataPacket } from 'mysql2/promise';
import { respellableKeyPositions, shardKeyPosition, shardKeyText } from '../rows/ddl.js';
import { keyText } from '../rows/convert.js';
import { isByteType } from '../rows/mysql.js';
import type { Row, RowValue, TableSpec } from '../rows/types.js';
import { keyColumns } from '../source/mysql/sql.js';
import type { ChunkKey } from '../store/leases.js';
import type { ShardWriter } from '../target/writer.js';
import { inRowGroups, recheckKeys, rowsBytes, type Candidate, type Difference, type DrillContext } from './drill.js';
import { keyId, type LegacyRows } from './sides.js';
import type { KeyRange } from './sql.js';
import { queueKey } from '../store/repair-queue.js';

/**
 * Repair: rewrite differing rows from the legacy side through the row pipeline (the legacy side
 * reads and converts them) and the shard map (the writer routes nothing itself: we give it the
 * shard the map names), delete extras and wrong-shard copies, then look at the keys again.
 */

/**
 * hold: the key's legacy row is behind MySQL (a failed shim write to legacy): not re-copied from legacy.
 * keep: the legacy row holds a value the target cannot hold: nothing written, its copies kept.
 */
export type RepairAction = 'upsert' | 'delete' | 'move' | 'hold' | 'keep';

export interface PlannedRepair extends Difference {
  action: RepairAction;
}

/** Key text (hex for bytes) → key values in target form for the writer's deleteKeys. */
export function keyValues(spec: TableSpec, key: ChunkKey): RowValue[] {
  return keyColumns(spec).map((c, i) => (isByteType(c.sourceType) ? Buffer.from(key[i]!, 'hex') : key[i]!));
}

/** What repair would do for each difference, given the legacy rows of their keys and the keys held (legacy behind). */
export function planRepairs(diffs: Difference[], legacy: LegacyRows, held: Set<string> = new Set()): PlannedRepair[] {
  return diffs.map((d) => {
    const id = keyId(d.key);
    if (held.has(id)) return { ...d, action: 'hold' };
    // A legacy row that cannot be converted exists: never read as absent (that would delete its copies).
    if (legacy.unrepresentable.has(id)) return { ...d, action: 'keep' };
    const inLegacy = legacy.rows.has(id);
    switch (d.kind) {
      case 'unrepresentable':
        return { ...d, action: 'keep' };
      case 'missing':
      case 'different':
        return { ...d, action: inLegacy ? 'upsert' : 'delete' };
      case 'wrong_shard':
        return { ...d, action: inLegacy ? 'move' : 'delete' };
      case 'extra':
        // Legacy has the row now (inserted since the difference was seen): the copy goes, the row lands at home.
        return { ...d, action: inLegacy ? 'move' : 'delete' };
    }
  });
}

export interface RepairOutcome {
  planned: PlannedRepair[];
  /** The planned repairs whose keys were clean when looked at again. */
  verified: PlannedRepair[];
}

/**
 * Plans (and with `apply`, applies) the repairs of some differences of one range, reading the
 * legacy rows of their keys in groups (inRowGroups): a chunk whose every row differs is not read
 * whole. The plans come in the order of `diffs`.
 */
export async function planInGroups(
  ctx: DrillContext,
  diffs: Difference[],
  within: KeyRange,
  held: Set<string>,
  apply?: (acting: PlannedRepair[], rows: Map<string, Row>) => Promise<void>,
): Promise<PlannedRepair[]> {
  const planned: PlannedRepair[] = new Array(diffs.length);
  // Every difference of one key in the same group: its deletes and upserts are applied together.
  const byKey = new Map<string, number[]>();
  diffs.forEach((d, i) => {
    const id = keyId(d.key);
    byKey.set(id, [...(byKey.get(id) ?? []), i]);
  });
  await inRowGroups([...byKey.values()], async (groups) => {
    const at = groups.flat();
    const legacy = await ctx.legacy.rowsByKey(
      groups.map((g) => diffs[g[0]!]!.key),
      within,
    );
    const plans = planRepairs(at.map((i) => diffs[i]!), legacy, held);
    plans.forEach((p, j) => (planned[at[j]!] = p));
    if (apply) await apply(plans.filter((p) => p.action !== 'hold' && p.action !== 'keep'), legacy.rows);
    return rowsBytes(legacy.rows.values());
  });
  return planned;
}

/** Applies the repairs of some differences of one range (held keys excepted), then re-checks their keys. */
export async function repairDifferences(ctx: DrillContext, writer: ShardWriter, diffs: Difference[], within: KeyRange, held: Set<string> = new Set()): Promise<RepairOutcome> {
  if (diffs.length === 0) return { planned: [], verified: [] };
  const planned = await planInGroups(ctx, diffs, within, held, (acting, rows) => applyRepairs(ctx, writer, acting, rows));
  const acting = planned.filter((p) => p.action !== 'hold' && p.action !== 'keep');
  const again = await recheckKeys(
    ctx,
    acting.map((p) => ({ ...p, within })),
  );
  const dirty = new Set(again.map((d) => keyId(d.key)));
  return { planned, verified: acting.filter((p) => !dirty.has(keyId(p.key))) };
}

async function applyRepairs(ctx: DrillContext, writer: ShardWriter, planned: PlannedRepair[], legacyRows: Map<string, Row>): Promise<void> {
  const shardKeyAt = shardKeyPosition(ctx.spec);
  const deletes = new Map<number, { keys: ChunkKey[]; seen: (RowValue | undefined)[] }>();
  const upserts = new Map<number, Row[]>();
  const upserted = new Set<string>();
  for (const p of planned) {
    const id = keyId(p.key);
    const row = legacyRows.get(id);
    const at = p.shard;
    if (at === null) throw new Error(`table ${ctx.spec.name}, key (${p.key.join(', ')}): a ${p.kind} difference without a shard cannot be repaired`);
    // A key missing from the shard and gone from legacy is in step: whatever is there now came after the look.
    if ((p.kind === 'extra' || p.kind === 'wrong_shard' || !row) && p.kind !== 'missing') {
      const list = deletes.get(at) ?? { keys: [], seen: [] };
      list.keys.push(p.key);
      // Bounded by the copy's updated_at as the re-check saw it: a row the member wrote since is kept.
      list.seen.push(p.copyStamp);
      deletes.set(at, list);
    }
    if (row && p.action !== 'delete' && !upserted.has(id)) {
      upserted.add(id);
      const home = ctx.map.shardOf(shardKeyText(ctx.spec, row, shardKeyAt));
      upserts.set(home, [...(upserts.get(home) ?? []), row]);
    }
  }
  for (const [shard, { keys, seen }] of deletes) await writer.deleteKeys(shard, ctx.spec, keys.map((k) => keyValues(ctx.spec, k)), { notNewerThan: seen });
  // Keep-newer, as sync writes: between the legacy read and this write, sync may have applied a newer
  // legacy row, or a member written MySQL first (a queued legacy failure this run did not see yet).
  for (const [shard, rows] of upserts) await writer.upsertRows(shard, ctx.spec, rows, { keepNewer: true });
}

function uniqueKeys(keys: ChunkKey[]): ChunkKey[] {
  return [...new Map(keys.map((k) => [keyId(k), k])).values()];
}

// ---------------------------------------------------------------------------------------------
// repair_queue: rows the shim (or sync) knows are out of step.

export interface QueueOutcome {
  table: string;
  entries: number;
  resolved: number;
  /** Entries left open: their keys still differ after the re-copy (or, with --dry-run, all). */
  left: number;
  /** Open entries whose legacy row is behind MySQL: held, never re-copied from legacy. */
  legacyBehind: number;
  /** Open entries whose legacy row holds a value the target cannot hold: left as they are. */
  unrepresentable: number;
  /** Open entries whose pk does not name the table's key (e.g. no value for a key column): left open, see `problems`. */
  malformed: number;
  /** Why entries were malformed (the first few, with their ids). */
  problems: string[];
}

interface QueueEntry {
  id: number;
  key: ChunkKey;
}

/** Open entries of a page: those whose key could be read, and the problems of the others. */
interface QueuePage {
  entries: QueueEntry[];
  /** Entry ids, for paging past malformed entries too. */
  lastId: number | null;
  problems: string[];
}

const MAX_PROBLEMS_SHOWN = 5;

/**
 * Re-copies every open repair_queue entry of a table where MySQL is behind from the legacy side:
 * upsert into the shard the map names, delete the key from every other shard (a shard-key change
 * may have left a copy), then compares the key again and marks the entry resolved when it is clean.
 * Entries where legacy is behind are held: never re-copied (that would undo MySQL's newer write),
 * resolved only once the key compares equal again (a later write reached both sides); a key with
 * such an entry is held in the other entries too.
 */
export async function drainRepairQueue(pool: Pool, ctx: DrillContext, writer: ShardWriter, dryRun: boolean): Promise<QueueOutcome> {
  const outcome: QueueOutcome = { table: ctx.spec.name, entries: 0, resolved: 0, left: 0, legacyBehind: 0, unrepresentable: 0, malformed: 0, problems: [] };
  // A malformed entry is counted and left open: one bad entry must not stop every repair after it.
  const noteMalformed = (problems: string[]) => {
    outcome.entries += problems.length;
    outcome.left += problems.length;
    outcome.malformed += problems.length;
    outcome.problems.push(...problems.slice(0, MAX_PROBLEMS_SHOWN - outcome.problems.length));
  };
  const held = await allOpenEntries(pool, ctx.spec, 'legacy', noteMalformed);
  const heldKeys = new Set(held.map((e) => keyId(e.key)));
  const all: KeyRange = { lower: null, upper: null };
  let after = 0;
  for (;;) {
    const { entries: page, lastId, problems } = await openEntries(pool, ctx.spec, 'mysql', after);
    if (lastId === null) break;
    after = lastId;
    noteMalformed(problems);
    if (page.length === 0) continue;
    outcome.entries += page.length;
    const entries = page.filter((e) => !heldKeys.has(keyId(e.key)));
    outcome.left += page.length - entries.length;
    if (dryRun || entries.length === 0) {
      if (dryRun) outcome.left += entries.length;
      continue;
    }
    const legacy = await ctx.legacy.rowsByKey(uniqueKeys(entries.map((e) => e.key)), all);
    // Keys whose legacy row cannot be converted are left alone (their entries stay open): not absent, not copyable.
    outcome.unrepresentable += entries.filter((e) => legacy.unrepresentable.has(keyId(e.key))).length;
    // Under a collation that equates spellings ('K1' = 'k1'), legacy answers an entry's key with its row
    // in another spelling: that row is re-copied too, else the deletes of the entry's spelling took its copy.
    const respelled = [...legacy.rows.values()].map((row) => keyText(ctx.spec, row)).filter((k) => !heldKeys.has(keyId(k)));
    const keys = uniqueKeys([...entries.map((e) => e.key), ...respelled]).filter((k) => !legacy.unrepresentable.has(keyId(k)));
    const shardKeyAt = shardKeyPosition(ctx.spec);
    const homes = new Map<string, number>();
    for (const [id, row] of legacy.rows) homes.set(id, ctx.map.shardOf(shardKeyText(ctx.spec, row, shardKeyAt)));
    for (const [shard, stale] of staleCopies(ctx, keys, homes)) await writer.deleteKeys(shard, ctx.spec, stale.map((k) => keyValues(ctx.spec, k)));
    for (const [shard, here] of keysAtHome(keys, homes)) await writer.upsertRows(shard, ctx.spec, here.map((k) => legacy.rows.get(keyId(k))!), { keepNewer: true });
    const resolved = await resolveClean(pool, ctx, entries, homes);
    outcome.resolved += resolved;
    outcome.left += entries.length - resolved;
  }
  outcome.entries += held.length;
  const heldResolved = dryRun || held.length === 0 ? 0 : await resolveClean(pool, ctx, held, new Map());
  outcome.resolved += heldResolved;
  outcome.legacyBehind = held.length - heldResolved;
  outcome.left += outcome.legacyBehind;
  return outcome;
}

/** Keys (keyId) of a table's open repair_queue entries whose legacy row is behind MySQL. */
export async function legacyBehindKeys(pool: Pool, spec: TableSpec): Promise<Set<string>> {
  return new Set((await allOpenEntries(pool, spec, 'legacy', () => {})).map((e) => keyId(e.key)));
}

async function allOpenEntries(pool: Pool, spec: TableSpec, behind: 'mysql' | 'legacy', onMalformed: (problems: string[]) => void): Promise<QueueEntry[]> {
  const out: QueueEntry[] = [];
  for (let after = 0; ; ) {
    const page = await openEntries(pool, spec, behind, after);
    if (page.lastId === null) return out;
    out.push(...page.entries);
    onMalformed(page.problems);
    after = page.lastId;
  }
}

async function openEntries(pool: Pool, spec: TableSpec, behind: 'mysql' | 'legacy', afterId = 0): Promise<QueuePage> {
  const [rows] = await pool.query<RowDataPacket[]>(
    'SELECT id, pk FROM repair_queue WHERE table_name = ? AND resolved_at IS NULL AND behind = ? AND id > ? ORDER BY id LIMIT 500',
    [spec.name, behind, afterId],
  );
  const page: QueuePage = { entries: [], lastId: rows.length > 0 ? Number(rows[rows.length - 1]!.id) : null, problems: [] };
  for (const r of rows) {
    try {
      page.entries.push({ id: Number(r.id), key: queueKey(spec, r.pk) });
    } catch (e) {
      page.problems.push(`entry ${r.id}: ${(e as Error).message}`);
    }
  }
  return page;
}

/** Compares the entries' keys again; marks the clean ones resolved and returns how many. */
async function resolveClean(pool: Pool, ctx: DrillContext, entries: QueueEntry[], homes: Map<string, number>): Promise<number> {
  const all: KeyRange = { lower: null, upper: null };
  const candidates: Candidate[] = uniqueKeys(entries.map((e) => e.key)).flatMap((key) =>
    shardsToLook(ctx, key, homes.get(keyId(key))).map((shard) => ({ key, kind: 'missing' as const, shard, within: all })),
  );
  const still = new Set((await recheckKeys(ctx, candidates)).map((d) => keyId(d.key)));
  const resolved = entries.filter((e) => !still.has(keyId(e.key))).map((e) => e.id);
  if (resolved.length > 0) await pool.query('UPDATE repair_queue SET resolved_at = NOW(6) WHERE id IN (?)', [resolved]);
  return resolved.length;
}

/**
 * The shards a key's copy may be on when legacy has no row to route it by: see shardsACopyMayBeOn,
 * whatever --shards checks. Looking at fewer took a row MySQL alone has (a MySQL-primary insert
 * whose legacy write failed) for absent: its held entry was resolved, and a later run deleted the
 * row as extra.
 */
function shardsToLook(ctx: DrillContext, key: ChunkKey, home: number | undefined): number[] {
  return home !== undefined ? [home] : shardsACopyMayBeOn(ctx, key);
}

/**
 * Every shard a copy of a key may be on: the key's own shard when the primary key holds the shard
 * key in a form no write can respell (the key then fixes the shard), else every shard of the map (a
 * shard-key change, or 'k1' respelled 'K1' under a _ci collation, moves the row).
 */
function shardsACopyMayBeOn(ctx: DrillContext, key: ChunkKey): number[] {
  const at = ctx.spec.primaryKey.indexOf(ctx.spec.shardKey);
  const fixed = at >= 0 && !respellableKeyPositions(ctx.spec).includes(shardKeyPosition(ctx.spec));
  return fixed ? [ctx.map.shardOf(key[at]!)] : Array.from({ length: ctx.map.count }, (_, shard) => shard);
}

/**
 * Per shard, the keys whose copy there is stale: on every shard a copy may be on but the home of
 * the key's legacy row (all of them when legacy has none). Only there: deleting every key on every
 * other shard took a statement per shard of the map for each page of entries (1,023 at 1,024 shards).
 */
function staleCopies(ctx: DrillContext, keys: ChunkKey[], homes: Map<string, number>): Map<number, ChunkKey[]> {
  const out = new Map<number, ChunkKey[]>();
  for (const key of keys) {
    for (const shard of shardsACopyMayBeOn(ctx, key)) if (shard !== homes.get(keyId(key))) addTo(out, shard, key);
  }
  return out;
}

/** Per shard, the keys whose legacy row routes there. */
function keysAtHome(keys: ChunkKey[], homes: Map<string, number>): Map<number, ChunkKey[]> {
  const out = new Map<number, ChunkKey[]>();
  for (const key of keys) {
    const home = homes.get(keyId(key));
    if (home !== undefined) addTo(out, home, key);
  }
  return out;
}

function addTo<T>(map: Map<number, T[]>, shard: number, item: T): void {
  if (!map.has(shard)) map.set(shard, []);
  map.get(shard)!.push(item);
}
