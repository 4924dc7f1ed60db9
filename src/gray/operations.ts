import type { PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { Config } from '../config/schema.js';
import { RefusedError } from '../errors.js';
import { keyText, type ShardKey } from '../shard/map.js';
import type { ControlStore } from '../store/control.js';
import { pinShardMap } from '../store/shard-map.js';
import { checkGates, describeFailures, observeConnectors, type GateResult } from './gates.js';
import { memberIdsAsSent } from './member-ids.js';
import { formatPercent, FULL_BASIS_POINTS } from './percent.js';
import { DEFAULT_GRAY, DEFAULT_SHIM, SHIM_MODES, TableRouter, isShimMode, type GraySetting, type RouteExplanation, type ShimMode, type ShimSetting } from './route.js';
import {
  lockSetting,
  peekSetting,
  newSalt,
  readHistory,
  readSettings,
  settingsOf,
  toGraySetting,
  toShimSetting,
  withSettingsLock,
  writeSetting,
  type HistoryEntry,
  type SettingKind,
} from './settings.js';

/**
 * The operator-facing changes behind `membermig gray` and `membermig shim`. Each change runs in one
 * transaction under the settings lock, checks the gates when it moves members toward MySQL, and
 * records who, why, what before and whether the gates were forced.
 */

export interface ChangeContext {
  operator: string;
  reason?: string | undefined;
  force?: boolean | undefined;
}

export interface ChangeResult<T> {
  table: string;
  changed: boolean;
  before: T;
  after: T;
  /** The settings version after the change (unchanged when nothing changed). */
  version: number;
  gates: GateResult[];
  forced: boolean;
  operator: string;
  /** Side effects on the other kind of setting (shim set moves the write percentage). */
  notes: string[];
}

export function requireTable(config: Config, table: string): void {
  if (!config.tables[table]) {
    throw new RefusedError(`unknown table "${table}"; the config has: ${Object.keys(config.tables).join(', ') || '(none)'}`);
  }
}

function requireReason(ctx: ChangeContext): string {
  const reason = ctx.reason?.trim();
  if (!reason) throw new RefusedError('a reason is required for every change (--reason TEXT)');
  return reason;
}

/** Refuses when a gate fails, unless forced; returns the reason to record. */
function passGates(gates: GateResult[], ctx: ChangeContext, reason: string, what: string): { forced: boolean; reason: string } {
  const failures = describeFailures(gates);
  if (!failures) return { forced: false, reason };
  if (!ctx.force) throw new RefusedError(`refused to ${what}: ${failures}. Nothing was changed; --force --reason TEXT overrides.`);
  return { forced: true, reason: `${reason} [forced past: ${failures}]` };
}

// ---------------------------------------------------------------- gray

export interface GrayChange {
  read?: number | undefined;
  write?: number | undefined;
  allow?: ShardKey[];
  unallow?: ShardKey[];
  deny?: ShardKey[];
  undeny?: ShardKey[];
}

/** True when the new setting sends anyone further toward MySQL than the old one. */
export function graysRaise(before: GraySetting, after: GraySetting): boolean {
  const denied = new Set(after.deny);
  const allowedBefore = new Set(before.allow);
  return (
    after.read_bp > before.read_bp ||
    after.write_bp > before.write_bp ||
    after.allow.some((id) => !allowedBefore.has(id) && !denied.has(id)) ||
    before.deny.some((id) => !denied.has(id))
  );
}

function applyGrayChange(before: GraySetting, change: GrayChange): GraySetting {
  const edit = (list: string[], add: ShardKey[] = [], remove: ShardKey[] = []): string[] => {
    const out = new Set(list);
    for (const id of add) out.add(keyText(id));
    for (const id of remove) out.delete(keyText(id));
    return [...out].sort();
  };
  return {
    read_bp: change.read ?? before.read_bp,
    write_bp: change.write ?? before.write_bp,
    salt: before.salt || newSalt(),
    allow: edit(before.allow, change.allow, change.unallow),
    deny: edit(before.deny, change.deny, change.undeny),
  };
}

function sameGray(a: GraySetting, b: GraySetting): boolean {
  return a.read_bp === b.read_bp && a.write_bp === b.write_bp && a.salt === b.salt && a.allow.join('\n') === b.allow.join('\n') && a.deny.join('\n') === b.deny.join('\n');
}

/** `gray set`: changes percentages and lists relative to the value current at commit time. */
export async function setGray(store: ControlStore, config: Config, table: string, change: GrayChange, ctx: ChangeContext): Promise<ChangeResult<GraySetting>> {
  requireTable(config, table);
  const nothing = change.read === undefined && change.write === undefined && ![change.allow, change.unallow, change.deny, change.undeny].some((l) => l && l.length > 0);
  if (nothing) throw new RefusedError('nothing to change: give --read, --write, --allow, --unallow, --deny or --undeny');
  for (const [flag, bp] of [['--read', change.read], ['--write', change.write]] as const) {
    if (bp !== undefined && (!Number.isInteger(bp) || bp < 0 || bp > FULL_BASIS_POINTS)) throw new RefusedError(`${flag} must be 0..10000 basis points, got ${bp}`);
  }
  const reason = requireReason(ctx);
  const lists = [change.allow, change.unallow, change.deny, change.undeny].map((l) => (l ?? []).map(keyText));
  const { ids, notes: idNotes } = await memberIdsAsSent(config, table, lists.flat());
  const [allow, unallow, deny, undeny] = lists.map((l, i) => ids.slice(offset(lists, i), offset(lists, i) + l.length));
  const grayOf = (stored: unknown) => (stored === null ? DEFAULT_GRAY : toGraySetting(stored));
  const likely = grayOf(await peekSetting(store.pool, table, 'gray'));
  const connectors = graysRaise(likely, applyGrayChange(likely, { ...change, allow, unallow, deny, undeny })) ? await observeConnectors(store.pool, config) : undefined;
  const result = await withSettingsLock(store.pool, async (conn) => {
    const stored = await lockSetting(conn, table, 'gray');
    const before = grayOf(stored);
    const after = applyGrayChange(before, { ...change, allow, unallow, deny, undeny });
    if (sameGray(before, after) && stored !== null) return unchanged(table, before, ctx, await currentVersion(conn));
    let gates: GateResult[] = [];
    let recorded = { forced: false, reason };
    if (graysRaise(before, after)) {
      // A raise sends members to MySQL by the shard map: it must be the one the rows were placed by.
      // Asked on the locked connection: a store of one connection waited for itself.
      await pinShardMap({ pool: conn, database: store.database }, config.shards);
      gates = await checkGates(conn, config, table, connectors);
      recorded = passGates(gates, ctx, reason, `move ${table} toward MySQL`);
    }
    const version = await writeSetting(conn, { table, kind: 'gray', action: 'set', oldValue: stored, newValue: after, operator: ctx.operator, reason: recorded.reason, forced: recorded.forced });
    const storedShim = await peekSetting(conn, table, 'shim');
    const shim = storedShim === null ? DEFAULT_SHIM : toShimSetting(storedShim);
    const notes = [...(graysRaise(before, after) ? unstampedNote(config, table) : []), ...idleWriteNote(table, before, after, shim)];
    if (MYSQL_PRIMARY.includes(shim.mode) && writesMoveBack(before, after)) notes.push(...(await movedBackNotes(conn, table, shim.mode)));
    return { table, changed: true, before, after, version, gates, forced: recorded.forced, operator: ctx.operator, notes };
  });
  return { ...result, notes: [...result.notes, ...idNotes] };
}

/**
 * Members moving to dual writes or to MySQL reads while sync cannot tell legacy's event of a dual
 * write from a newer change (no tables.NAME.updated_at): such an event, arriving after the
 * member's next write reached MySQL, puts the older row back there until the next event.
 */
function unstampedNote(config: Config, table: string): string[] {
  if (config.tables[table]?.updated_at) return [];
  return [`tables.${table}.updated_at is not configured: sync cannot tell legacy's event of a dual write from a newer change, so a late one puts the older row back in MySQL until the next event (README: tables.NAME.updated_at)`];
}

/**
 * In legacy_only every member writes legacy only, whatever the write percentage: a changed one
 * does nothing yet, and the step to dual_legacy_primary starts it again at 0%.
 */
function idleWriteNote(table: string, before: GraySetting, after: GraySetting, shim: ShimSetting): string[] {
  if (shim.mode !== 'legacy_only' || after.write_bp === before.write_bp) return [];
  return [`${table} is in shim mode legacy_only, where the write percentage changes nothing: every member writes legacy only until shim set ${table} dual_legacy_primary, which starts it again at 0%`];
}

/** Whether members' writes move back toward legacy: a lower write percentage, or a member newly denied. */
function writesMoveBack(before: GraySetting, after: GraySetting): boolean {
  const deniedBefore = new Set(before.deny);
  return after.write_bp < before.write_bp || after.deny.some((id) => !deniedBefore.has(id));
}

/**
 * Members moved back from writes MySQL leads: legacy may lack writes only MySQL has (all of them in
 * mysql_only; failed legacy halves, listed in repair_queue, in dual_mysql_primary). The move is never
 * refused (a rollback must be instant), but it says so (docs/gray-release.md, Caution).
 */
async function movedBackNotes(conn: PoolConnection, table: string, mode: ShimMode): Promise<string[]> {
  return [...(await heldKeysNote(conn, table)), ...(mode === 'mysql_only' ? [mysqlOnlyNote(table)] : [])];
}

function mysqlOnlyNote(table: string): string {
  return (
    `${table} is or was mysql_only: the writes made then are in MySQL only, and legacy's rows of those members are older. Members moved back write ` +
    `legacy again, and sync carries legacy's whole row over MySQL's newer one; bring legacy up to date for them first (docs/gray-release.md, Caution)`
  );
}

/** Where list i starts in the lists laid end to end. */
function offset(lists: string[][], i: number): number {
  return lists.slice(0, i).reduce((n, l) => n + l.length, 0);
}

async function currentVersion(conn: PoolConnection): Promise<number> {
  const [rows] = await conn.query('SELECT version FROM settings_version WHERE id = 1');
  return Number((rows as { version: string }[])[0]?.version ?? 0);
}

function unchanged<T>(table: string, value: T, ctx: ChangeContext, version: number): ChangeResult<T> {
  return { table, changed: false, before: value, after: value, version, gates: [], forced: false, operator: ctx.operator, notes: [] };
}

export interface RollbackOptions {
  /** Roll back to 0% read and write with empty allowlist, instead of the previous setting. */
  toZero?: boolean;
  /**
   * Only if no table rolled back changed after this settings version (as `gray show` gives it):
   * otherwise refuse, changing nothing. A rollback is relative (one set back), so two operators, or
   * an alert's job and an operator, rolling back the same incident at once would step back twice.
   */
  ifVersion?: number;
}

/**
 * `gray rollback`: back to the setting before the last change not yet rolled back, or to 0.
 * Never gated, never refused for the state of verify or sync. A rollback never raises anything:
 * each percentage ends at or below where it was, and the allowlist only shrinks.
 */
export async function rollbackGray(store: ControlStore, config: Config, tables: string[], options: RollbackOptions, ctx: ChangeContext): Promise<ChangeResult<GraySetting>[]> {
  for (const t of tables) requireTable(config, t);
  const reason = ctx.reason?.trim() || (options.toZero ? 'rollback to 0' : 'rollback to the previous setting');
  // One transaction for every table: a rollback killed part-way changes nothing, so running it again
  // rolls each table back once (with a transaction per table, the tables done before the kill were
  // rolled back a second step by the rerun), and a shim never acts on some tables rolled back and not others.
  return withSettingsLock(store.pool, async (conn) => {
    const results: ChangeResult<GraySetting>[] = [];
    for (const table of tables) results.push(await rollbackTable(conn, table, options, reason, ctx));
    return results;
  });
}

/** One table's rollback, inside rollbackGray's transaction. */
async function rollbackTable(conn: PoolConnection, table: string, options: RollbackOptions, reason: string, ctx: ChangeContext): Promise<ChangeResult<GraySetting>> {
  if (options.ifVersion !== undefined) await refuseIfChangedSince(conn, table, options.ifVersion);
  const stored = await lockSetting(conn, table, 'gray');
  if (stored === null) return unchanged(table, DEFAULT_GRAY, ctx, await currentVersion(conn));
  const before = toGraySetting(stored);
  if (options.toZero) {
    const after = lower(before, { ...before, read_bp: 0, write_bp: 0, allow: [] });
    if (sameGray(before, after)) return unchanged(table, before, ctx, await currentVersion(conn));
    const version = await writeSetting(conn, { table, kind: 'gray', action: 'rollback', oldValue: stored, newValue: after, operator: ctx.operator, reason, forced: false });
    return { table, changed: true, before, after, version, gates: [], forced: false, operator: ctx.operator, notes: await rolledBackNotes(conn, table, before, after) };
  }
  // Back through the sets not yet undone, newest first, to the first whose undoing lowers something.
  // A set that only lowered (a longer denylist, a lower percentage) has nothing to undo; it is
  // recorded as undone (a rollback row that changes nothing), so the next rollback goes further.
  const skipped: number[] = [];
  for (const target of await setsToUndo(conn, table, before)) {
    const after = lower(before, target.setting);
    if (sameGray(before, after)) {
      skipped.push(target.historyId);
      continue;
    }
    for (const id of skipped) {
      await writeSetting(conn, { table, kind: 'gray', action: 'rollback', oldValue: stored, newValue: before, operator: ctx.operator, reason: `${reason} (set #${id} raised nothing: nothing to undo)`, forced: false });
    }
    const version = await writeSetting(conn, { table, kind: 'gray', action: 'rollback', oldValue: stored, newValue: after, operator: ctx.operator, reason, forced: false });
    const notes = [...(skipped.length > 0 ? [`went past ${skipped.length} newer set(s) that raised nothing`] : []), ...(await rolledBackNotes(conn, table, before, after))];
    return { table, changed: true, before, after, version, gates: [], forced: false, operator: ctx.operator, notes };
  }
  return unchanged(table, before, ctx, await currentVersion(conn));
}

/** rollbackGray's --if-version: refuses when the table's settings changed after `version` (the settings lock is held). */
async function refuseIfChangedSince(conn: PoolConnection, table: string, version: number): Promise<void> {
  const [rows] = await conn.query<RowDataPacket[]>('SELECT kind, version FROM settings WHERE table_name = ? ORDER BY version DESC LIMIT 1', [table]);
  const latest = rows[0];
  if (!latest || Number(latest.version) <= version) return;
  const last = (await readHistory(conn, latest.kind as SettingKind, table, 1))[0];
  const by = last ? ` (${last.kind} ${last.action} by ${last.operator} at ${last.changedAt}: ${last.reason})` : '';
  throw new RefusedError(
    `gray rollback --if-version ${version}: ${table} changed after it, at version ${Number(latest.version)}${by}; nothing was rolled back. ` +
      'See gray show and gray history, and roll back again if it is still needed',
  );
}

/**
 * The settings before each `gray set` that no rollback has undone yet, newest first, then the
 * default (0%): each rollback in the history undoes one set. Changes made by `shim set` are neither.
 */
async function setsToUndo(conn: PoolConnection, table: string, current: GraySetting): Promise<{ historyId: number; setting: GraySetting }[]> {
  const history = await readHistory(conn, 'gray', table, 10_000);
  const out: { historyId: number; setting: GraySetting }[] = [];
  let undone = 0;
  for (const h of history) {
    if (h.action === 'rollback') undone++;
    else if (h.action === 'set') {
      if (undone > 0) undone--;
      else out.push({ historyId: h.id, setting: h.oldValue === null ? { ...DEFAULT_GRAY, salt: current.salt } : toGraySetting(h.oldValue) });
    }
  }
  out.push({ historyId: 0, setting: { ...DEFAULT_GRAY, salt: current.salt } });
  return out;
}

/** `target`, but never above `current`: percentages capped, allowlist only shrinks, denylist only grows. */
function lower(current: GraySetting, target: GraySetting): GraySetting {
  const targetAllow = new Set(target.allow);
  return {
    read_bp: Math.min(current.read_bp, target.read_bp),
    write_bp: Math.min(current.write_bp, target.write_bp),
    salt: current.salt,
    allow: current.allow.filter((id) => targetAllow.has(id)),
    deny: [...new Set([...current.deny, ...target.deny])].sort(),
  };
}

// ---------------------------------------------------------------- shim modes

/**
 * `shim set`: forward one step at a time (gated; from a dual mode only once its write percentage
 * is at 100%), back any number of steps (never gated). The write percentage moves with the mode
 * in the same transaction so no member jumps: forward restarts it at 0% (the new step begins
 * empty), back sets it to 100% (the whole table is then exactly in the mode named).
 */
export async function setShimMode(store: ControlStore, config: Config, table: string, modeText: string, ctx: ChangeContext): Promise<ChangeResult<ShimSetting>> {
  requireTable(config, table);
  if (!isShimMode(modeText)) throw new RefusedError(`unknown shim mode "${modeText}"; modes in order: ${SHIM_MODES.join(' -> ')}`);
  const mode: ShimMode = modeText;
  const reason = requireReason(ctx);
  const shimOf = (stored: unknown) => (stored === null ? DEFAULT_SHIM : toShimSetting(stored));
  const likely = shimOf(await peekSetting(store.pool, table, 'shim'));
  const connectors = SHIM_MODES.indexOf(mode) > SHIM_MODES.indexOf(likely.mode) ? await observeConnectors(store.pool, config) : undefined;
  return withSettingsLock(store.pool, async (conn) => {
    const stored = await lockSetting(conn, table, 'shim');
    const before = shimOf(stored);
    const from = SHIM_MODES.indexOf(before.mode);
    const to = SHIM_MODES.indexOf(mode);
    if (from === to) return unchanged(table, before, ctx, await currentVersion(conn));
    const storedGray = await lockSetting(conn, table, 'gray');
    const gray = storedGray === null ? null : toGraySetting(storedGray);
    let gates: GateResult[] = [];
    let recorded = { forced: false, reason };
    if (to > from) {
      if (to !== from + 1) {
        throw new RefusedError(`shim mode moves forward one step at a time: ${table} is ${before.mode}, the next step is ${SHIM_MODES[from + 1]} (not ${mode}). Nothing was changed.`);
      }
      // Forward sends members' writes to MySQL, by the shard map: it must be the one the rows were placed by.
      await pinShardMap({ pool: conn, database: store.database }, config.shards);
      gates = await checkGates(conn, config, table, connectors);
      if (from > 0) {
        const writeBp = gray?.write_bp ?? 0;
        gates.push({
          gate: 'step_complete',
          ok: writeBp === FULL_BASIS_POINTS,
          message: writeBp === FULL_BASIS_POINTS ? `${before.mode} reached 100% write` : `${before.mode} is at ${formatPercent(writeBp)} write; raise it to 100% before the next step`,
        });
      }
      recorded = passGates(gates, ctx, reason, `move ${table} from ${before.mode} to ${mode}`);
    }
    const after: ShimSetting = { mode };
    const notes: string[] = [];
    const newWrite = to > from ? 0 : FULL_BASIS_POINTS;
    // A table without a gray row writes at the default (0%): moving back must still put it all in the mode named.
    const current = gray ?? { ...DEFAULT_GRAY, salt: newSalt() };
    if (current.write_bp !== newWrite) {
      const movedGray = { ...current, write_bp: newWrite };
      const why = to > from ? `${mode} starts at 0% write` : `the whole table is back in ${mode}`;
      await writeSetting(conn, { table, kind: 'gray', action: 'mode', oldValue: storedGray, newValue: movedGray, operator: ctx.operator, reason: `shim set ${mode}: ${why}`, forced: false });
      notes.push(`write percentage ${formatPercent(current.write_bp)} -> ${formatPercent(newWrite)} (${why})`);
    }
    const version = await writeSetting(conn, { table, kind: 'shim', action: 'set', oldValue: stored, newValue: after, operator: ctx.operator, reason: recorded.reason, forced: recorded.forced });
    if (to < from && LEGACY_PRIMARY.includes(mode)) notes.push(...(await heldKeysNote(conn, table)));
    if (to < from && before.mode === 'mysql_only') notes.push(mysqlOnlyNote(table));
    if (to > from) notes.push(...unstampedNote(config, table));
    return { table, changed: true, before, after, version, gates, forced: recorded.forced, operator: ctx.operator, notes };
  });
}

/** Modes in which MySQL is the primary: legacy may lack writes only MySQL has. */
const MYSQL_PRIMARY: ShimMode[] = ['dual_mysql_primary', 'mysql_only'];

/** A gray rollback that moved members' writes back, in a mode MySQL leads: what legacy may lack. */
async function rolledBackNotes(conn: PoolConnection, table: string, before: GraySetting, after: GraySetting): Promise<string[]> {
  const stored = await peekSetting(conn, table, 'shim');
  const mode = stored === null ? DEFAULT_SHIM.mode : toShimSetting(stored).mode;
  return MYSQL_PRIMARY.includes(mode) && writesMoveBack(before, after) ? movedBackNotes(conn, table, mode) : [];
}

/** Modes in which legacy is the primary: its row is the one that counts. */
const LEGACY_PRIMARY: ShimMode[] = ['legacy_only', 'dual_legacy_primary'];

/**
 * Keys whose MySQL row holds a write legacy missed (repair_queue, behind = legacy): with legacy
 * primary again, sync still holds legacy's changes of them (they would undo that write) until
 * legacy has it, or an operator gives legacy's rows the last word (releaseHeldKeys).
 */
async function heldKeysNote(conn: PoolConnection, table: string): Promise<string[]> {
  const [rows] = await conn.query<RowDataPacket[]>("SELECT pk FROM repair_queue WHERE table_name = ? AND resolved_at IS NULL AND behind = 'legacy' ORDER BY id LIMIT 6", [table]);
  if (rows.length === 0) return [];
  const keys = rows.slice(0, 5).map((r) => (typeof r.pk === 'string' ? r.pk : JSON.stringify(r.pk)));
  return [
    `${rows.length > 5 ? 'more than 5' : rows.length} key(s) of ${table} hold a MySQL write legacy missed (repair_queue, behind = legacy), e.g. ${keys.join(', ')}: ` +
      `sync holds legacy's changes of them until legacy has that write; bring it to legacy, or give legacy's rows the last word with \`membermig shim release-held ${table} --reason "…"\``,
  ];
}

/**
 * `shim release-held`: once legacy is the primary again, lets legacy's rows win for keys whose
 * MySQL row holds a write legacy missed: their entries become ordinary ones (behind = mysql), so
 * sync applies legacy's changes of them and `verify --repair` copies them from legacy. Refused in
 * the MySQL-primary modes, where legacy's older rows would overwrite the newer ones.
 */
export async function releaseHeldKeys(store: ControlStore, config: Config, table: string, ctx: ChangeContext): Promise<{ table: string; released: number; operator: string; reason: string }> {
  requireTable(config, table);
  const reason = requireReason(ctx);
  return withSettingsLock(store.pool, async (conn) => {
    const stored = await lockSetting(conn, table, 'shim');
    const mode = stored === null ? DEFAULT_SHIM.mode : toShimSetting(stored).mode;
    if (!LEGACY_PRIMARY.includes(mode)) {
      throw new RefusedError(`shim release-held: ${table} is ${mode}, where MySQL holds the newer rows; move it back to dual_legacy_primary or legacy_only first. Nothing was changed.`);
    }
    const [res] = await conn.query<ResultSetHeader>(
      "UPDATE repair_queue SET behind = 'mysql', reason = CONCAT(reason, ?) WHERE table_name = ? AND resolved_at IS NULL AND behind = 'legacy'",
      [`; released by ${ctx.operator} (legacy's row wins): ${reason}`.slice(0, 2000), table],
    );
    return { table, released: res.affectedRows, operator: ctx.operator, reason };
  });
}

// ---------------------------------------------------------------- reading

export interface TableView {
  table: string;
  mode: ShimMode;
  readBp: number;
  writeBp: number;
  read: string;
  write: string;
  salt: string | null;
  allow: string[];
  deny: string[];
  version: number;
  updatedAt: string | null;
}

/** `gray show` / `shim show`: every configured table (or the ones named), with defaults for tables never set. */
export async function showSettings(store: ControlStore, config: Config, tables?: string[]): Promise<TableView[]> {
  const names = tables && tables.length > 0 ? tables : Object.keys(config.tables);
  for (const t of names) requireTable(config, t);
  const snapshot = await readSettings(store.pool);
  return names.map((table) => {
    const s = settingsOf(snapshot, table);
    return {
      table,
      mode: s.shim.mode,
      readBp: s.gray.read_bp,
      writeBp: s.gray.write_bp,
      read: formatPercent(s.gray.read_bp),
      write: formatPercent(s.gray.write_bp),
      salt: s.gray.salt || null,
      allow: s.gray.allow,
      deny: s.gray.deny,
      version: s.version,
      updatedAt: s.updatedAt,
    };
  });
}

export async function settingsHistory(store: ControlStore, config: Config, kind: SettingKind, table?: string, limit = 50): Promise<HistoryEntry[]> {
  if (table) requireTable(config, table);
  return readHistory(store.pool, kind, table, limit);
}

export interface MemberCheck extends RouteExplanation {
  table: string;
  memberId: string;
  readBp: number;
  writeBp: number;
  /** Said when the id could not be checked against the shard key's type. */
  notes: string[];
}

/** `gray check`: where one member's reads and writes go now, and why. */
export async function checkMember(store: ControlStore, config: Config, table: string, memberId: string): Promise<MemberCheck> {
  requireTable(config, table);
  if (memberId.trim() === '') throw new RefusedError('member id is empty');
  const { ids, notes } = await memberIdsAsSent(config, table, [memberId]);
  const s = settingsOf(await readSettings(store.pool), table);
  const explanation = new TableRouter(s.shim, s.gray).explain(ids[0]!);
  return { table, memberId: ids[0]!, readBp: s.gray.read_bp, writeBp: s.gray.write_bp, ...explanation, notes };
}
