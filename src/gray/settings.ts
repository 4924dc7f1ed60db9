import { randomBytes } from 'node:crypto';
import type { Connection, Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { DEFAULT_GRAY, DEFAULT_SHIM, isShimMode, type GraySetting, type ShimSetting } from './route.js';
import { isoTime } from '../mysql/iso-time.js';

/**
 * The settings tables (002_phases.sql) as plain data. One row per (table, kind) in `settings`;
 * every change bumps `settings_version` (id 1) and writes a `settings_history` row in the same
 * transaction, so shims poll one row and see every change.
 */

export type SettingKind = 'shim' | 'gray';
/** set: an operator's change; rollback: `gray rollback`; mode: a gray change made by `shim set`. */
export type HistoryAction = 'set' | 'rollback' | 'mode';

export interface TableSettings {
  shim: ShimSetting;
  gray: GraySetting;
  /** settings.version of the newest of the two rows; 0 when neither exists. */
  version: number;
  updatedAt: string | null;
}

export interface SettingsSnapshot {
  version: number;
  tables: Map<string, TableSettings>;
}

/** A settings_history row as read back: the write plus its id and time. */
export interface HistoryEntry extends SettingWrite {
  id: number;
  changedAt: string;
}

/** JSON columns come back as text on MariaDB and parsed on MySQL. */
export function parseJson(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return JSON.parse(v);
  if (Buffer.isBuffer(v)) return JSON.parse(v.toString('utf8'));
  return v;
}

export function toShimSetting(v: unknown): ShimSetting {
  const mode = (v as { mode?: unknown } | null)?.mode;
  if (typeof mode !== 'string' || !isShimMode(mode)) throw new Error(`settings row has an unknown shim mode: ${JSON.stringify(v)}`);
  return { mode };
}

export function toGraySetting(v: unknown): GraySetting {
  const o = (v ?? {}) as Partial<GraySetting>;
  const bp = (x: unknown, name: string): number => {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 10_000) throw new Error(`gray setting ${name} must be an integer 0..10000, got ${JSON.stringify(x)}`);
    return x;
  };
  const ids = (x: unknown): string[] => (Array.isArray(x) ? x.map(String) : []);
  return { read_bp: bp(o.read_bp, 'read_bp'), write_bp: bp(o.write_bp, 'write_bp'), salt: typeof o.salt === 'string' ? o.salt : '', allow: ids(o.allow), deny: ids(o.deny) };
}

export function newSalt(): string {
  return randomBytes(8).toString('hex');
}

/** The whole settings table in one read; tables without rows get the defaults (legacy_only, 0%). */
export async function readSettings(pool: Pool | PoolConnection | Connection): Promise<SettingsSnapshot> {
  const [versionRows] = await pool.query<RowDataPacket[]>('SELECT version FROM settings_version WHERE id = 1');
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT table_name, kind, value, version, ${isoTime('updated_at')} FROM settings`,
  );
  const tables = new Map<string, TableSettings>();
  for (const r of rows) {
    const t = tables.get(r.table_name) ?? { shim: DEFAULT_SHIM, gray: DEFAULT_GRAY, version: 0, updatedAt: null };
    if (r.kind === 'shim') t.shim = toShimSetting(parseJson(r.value));
    else if (r.kind === 'gray') t.gray = toGraySetting(parseJson(r.value));
    else continue;
    if (Number(r.version) >= t.version) {
      t.version = Number(r.version);
      t.updatedAt = r.updated_at;
    }
    tables.set(r.table_name, t);
  }
  return { version: Number(versionRows[0]?.version ?? 0), tables };
}

export function settingsOf(snapshot: SettingsSnapshot, table: string): TableSettings {
  return snapshot.tables.get(table) ?? { shim: DEFAULT_SHIM, gray: DEFAULT_GRAY, version: 0, updatedAt: null };
}

/**
 * Runs `change` in one transaction that first locks the settings_version row, so changes to any
 * setting are serialised: two `gray set` at once both apply, one after the other, and neither is lost.
 */
export async function withSettingsLock<T>(pool: Pool, change: (conn: PoolConnection) => Promise<T>): Promise<T> {
  const conn = await pool.getConnection();
  try {
    await conn.beginTransaction();
    await conn.query('SELECT version FROM settings_version WHERE id = 1 FOR UPDATE');
    const result = await change(conn);
    await conn.commit();
    return result;
  } catch (e) {
    await conn.rollback().catch(() => undefined);
    throw e;
  } finally {
    conn.release();
  }
}

/** The current value of one setting row, locked until the transaction ends; null when there is none. */
export async function lockSetting(conn: PoolConnection, table: string, kind: SettingKind): Promise<unknown> {
  return settingValue(conn, table, kind, ' FOR UPDATE');
}

/** The setting as it is now, unlocked: what a change is likely to start from (the lock decides). */
export async function peekSetting(db: Pool | PoolConnection, table: string, kind: SettingKind): Promise<unknown> {
  return settingValue(db, table, kind, '');
}

async function settingValue(db: Pool | PoolConnection, table: string, kind: SettingKind, lock: string): Promise<unknown> {
  const [rows] = await db.query<RowDataPacket[]>(`SELECT value FROM settings WHERE table_name = ? AND kind = ?${lock}`, [table, kind]);
  return rows.length === 0 ? null : parseJson(rows[0]!.value);
}

export interface SettingWrite {
  table: string;
  kind: SettingKind;
  action: HistoryAction;
  oldValue: unknown;
  newValue: unknown;
  operator: string;
  reason: string | null;
  forced: boolean;
}

/** Writes a setting, its history row and the new settings version; call inside withSettingsLock. Returns the version. */
export async function writeSetting(conn: PoolConnection, w: SettingWrite): Promise<number> {
  await conn.query('UPDATE settings_version SET version = version + 1 WHERE id = 1');
  const [v] = await conn.query<RowDataPacket[]>('SELECT version FROM settings_version WHERE id = 1');
  const version = Number(v[0]!.version);
  await conn.query(
    'INSERT INTO settings (table_name, kind, value, version) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value), version = VALUES(version)',
    [w.table, w.kind, JSON.stringify(w.newValue), version],
  );
  await conn.query(
    'INSERT INTO settings_history (table_name, kind, action, old_value, new_value, operator, reason, forced) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    [w.table, w.kind, w.action, w.oldValue === null ? null : JSON.stringify(w.oldValue), JSON.stringify(w.newValue), w.operator, w.reason, w.forced ? 1 : 0],
  );
  return version;
}

/** History of one kind, newest first, for one table or all. */
export async function readHistory(pool: Pool | PoolConnection, kind: SettingKind, table?: string, limit = 50): Promise<HistoryEntry[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT id, table_name, kind, action, old_value, new_value, operator, reason, forced,
            ${isoTime('changed_at')}
       FROM settings_history WHERE kind = ?${table ? ' AND table_name = ?' : ''} ORDER BY id DESC LIMIT ?`,
    table ? [kind, table, limit] : [kind, limit],
  );
  return rows.map((r) => ({
    id: Number(r.id),
    table: r.table_name,
    kind: r.kind,
    action: r.action,
    oldValue: parseJson(r.old_value),
    newValue: parseJson(r.new_value),
    operator: r.operator,
    reason: r.reason,
    forced: Number(r.forced) === 1,
    changedAt: r.changed_at,
  }));
}
