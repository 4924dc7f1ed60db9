import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Connection, Pool, RowDataPacket } from 'mysql2/promise';
import { RefusedError } from '../errors.js';
import { quoteId } from '../mysql/connect.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrationResult {
  applied: Migration[];
  alreadyApplied: number;
}

/** migrations/control, found from both src/ (tests) and dist/ (installed). */
export const CONTROL_MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'migrations', 'control');

const FILE_NAME = /^(\d+)_([a-z0-9_]+)\.sql$/;

/**
 * The newest migration this code was written with. The files are read from disk beside the built
 * code: a build older than its migrations (dist/ not rebuilt after a pull) would apply a migration
 * whose code it lacks, e.g. 130 moving the store's times to UTC while the old code goes on writing
 * local ones. Raised with each new migration (a test holds it to the newest file).
 */
export const NEWEST_KNOWN_MIGRATION = 150;

export function readMigrations(dir: string = CONTROL_MIGRATIONS_DIR): Migration[] {
  const migrations = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .map((file) => {
      const m = FILE_NAME.exec(file);
      if (!m) throw new Error(`migration file ${file} is not named NNN_name.sql`);
      const sql = readFileSync(join(dir, file), 'utf8');
      return { version: Number(m[1]), name: m[2]!, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    })
    .sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.version === migrations[i - 1]!.version) throw new Error(`two migrations have version ${migrations[i]!.version}`);
  }
  const unknown = migrations.find((m) => m.version > NEWEST_KNOWN_MIGRATION);
  if (unknown) {
    throw new RefusedError(
      `${join(dir, `${unknown.version}_${unknown.name}.sql`)} is newer than this build of membermig knows (up to ${NEWEST_KNOWN_MIGRATION}): the built code is older than its migrations; build it again (npm run build) before touching the control store`,
    );
  }
  return migrations;
}

export interface LedgerRow extends RowDataPacket {
  version: number;
  name: string;
  checksum: string;
}

/**
 * Applies pending migrations in order under a named lock, so two `init`s at once are safe.
 * Refuses (before applying anything) when an applied migration changed or went missing.
 * `conn` must allow multiple statements and be connected to the control database.
 */
export async function migrate(conn: Connection, migrations: Migration[] = readMigrations()): Promise<MigrationResult> {
  const [lockRows] = await conn.query<RowDataPacket[]>("SELECT GET_LOCK('membermig.migrate', 120) AS got");
  if (lockRows[0]?.got !== 1) throw new Error('timed out waiting for another membermig init to finish migrating');
  try {
    await conn.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INT UNSIGNED NOT NULL PRIMARY KEY,
      name VARCHAR(128) NOT NULL,
      checksum CHAR(64) NOT NULL,
      applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
    ) ENGINE=InnoDB`);
    const [ledger] = await conn.query<LedgerRow[]>('SELECT version, name, checksum FROM schema_migrations ORDER BY version');
    const [db] = await conn.query<RowDataPacket[]>('SELECT DATABASE() AS name');
    await checkLedger(conn, String(db[0]?.name), ledger, migrations);
    const appliedVersions = new Set(ledger.map((r) => r.version));
    const applied: Migration[] = [];
    for (const m of migrations) {
      if (appliedVersions.has(m.version)) continue;
      for (const statement of splitStatements(m.sql)) await applyStatement(conn, statement);
      await conn.query('INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)', [m.version, m.name, m.checksum]);
      applied.push(m);
    }
    return { applied, alreadyApplied: appliedVersions.size };
  } finally {
    // On a connection that died the server has released the lock; an error here would hide the real one.
    await conn.query("SELECT RELEASE_LOCK('membermig.migrate')").catch(() => undefined);
  }
}

/**
 * Errors that say a statement's change is there already. DDL commits by itself, so a crash (or a
 * kill) between two statements of a migration, or before its ledger row, leaves part of it applied;
 * the rerun applies it again, and these statements are then done, not failed.
 */
const ALREADY_APPLIED = new Set(['ER_DUP_FIELDNAME', 'ER_DUP_KEYNAME', 'ER_TABLE_EXISTS_ERROR', 'ER_MULTIPLE_PRI_KEY']);

async function applyStatement(conn: Connection, statement: string): Promise<void> {
  try {
    await conn.query(statement);
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    // A duplicate key says a row is there already only for an INSERT: from an ALTER adding a unique
    // key, or an UPDATE, it says the data does not allow the change, which then never happened.
    if (code === 'ER_DUP_ENTRY' && /^INSERT\b/i.test(statement)) return;
    if (!ALREADY_APPLIED.has(code)) throw e;
  }
}

/** A migration file's statements: split at semicolons outside quotes and comments; comments and blanks dropped. */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let current = '';
  let quote: string | null = null;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (quote) {
      current += c;
      if (c === '\\' && quote !== '`') current += sql[++i] ?? '';
      else if (c === quote) quote = null;
    } else if (c === '-' && sql[i + 1] === '-') {
      while (i < sql.length && sql[i] !== '\n') i++;
      current += '\n';
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 1;
      current += ' ';
    } else if (c === ';') {
      if (current.trim()) out.push(current.trim());
      current = '';
    } else {
      if (c === "'" || c === '"' || c === '`') quote = c;
      current += c;
    }
  }
  if (current.trim()) out.push(current.trim());
  return out;
}

async function checkLedger(conn: Connection, database: string, ledger: LedgerRow[], migrations: Migration[]): Promise<void> {
  const problems = [...ledgerProblems(ledger, migrations), ...(await missingObjectProblems(conn, database, ledger, migrations))];
  if (problems.length > 0) throw new RefusedError(`control store refused: ${problems.join('; ')}`, problems);
}

/** A table or column a migration's statements leave in the store: CREATE TABLE, ALTER TABLE ... ADD COLUMN (migrations spell COLUMN). */
interface StoreObject {
  table: string;
  column?: string;
}

const CREATE_TABLE = /^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?`?(\w+)`?/i;
const DROP_TABLE = /^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?`?(\w+)`?/i;
const RENAME_TABLE = /^RENAME\s+TABLE\s+`?(\w+)`?\s+TO\s+`?(\w+)`?/i;
const ALTER_TABLE = /^ALTER\s+TABLE\s+`?(\w+)`?\s/i;
const ALTER_RENAME_TABLE = /\bRENAME\s+(?:TO|AS)\s+`?(\w+)`?/i;
const RENAME_COLUMN = /\b(?:RENAME\s+COLUMN\s+`?(\w+)`?\s+TO|CHANGE\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?`?(\w+)`?)\s+`?(\w+)`?/gi;

/**
 * What the migrations, applied in order, leave: tables and columns, under their last names; one
 * dropped by a later migration is not expected. Exported for its test.
 */
export function expectedObjects(migrations: Migration[]): Map<string, { object: StoreObject; migration: Migration }> {
  const out = new Map<string, { object: StoreObject; migration: Migration }>();
  const renameTable = (from: string, to: string) => {
    for (const [key, e] of [...out]) {
      if (e.object.table !== from) continue;
      out.delete(key);
      const object = { ...e.object, table: to };
      out.set(object.column ? `${to}.${object.column}` : to, { ...e, object });
    }
  };
  for (const m of migrations) {
    for (const statement of splitStatements(m.sql)) {
      const created = CREATE_TABLE.exec(statement)?.[1];
      const dropped = DROP_TABLE.exec(statement)?.[1];
      const renamed = RENAME_TABLE.exec(statement);
      const altered = ALTER_TABLE.exec(statement)?.[1];
      if (created) out.set(created, { object: { table: created }, migration: m });
      if (dropped) for (const key of out.keys()) if (key === dropped || key.startsWith(`${dropped}.`)) out.delete(key);
      if (renamed) renameTable(renamed[1]!, renamed[2]!);
      if (!altered) continue;
      for (const [, column] of statement.matchAll(/\bADD\s+COLUMN\s+(?:IF\s+NOT\s+EXISTS\s+)?`?(\w+)`?/gi)) {
        out.set(`${altered}.${column}`, { object: { table: altered, column: column! }, migration: m });
      }
      for (const [, column] of statement.matchAll(/\bDROP\s+COLUMN\s+(?:IF\s+EXISTS\s+)?`?(\w+)`?/gi)) out.delete(`${altered}.${column}`);
      for (const [, renamedFrom, changedFrom, to] of statement.matchAll(RENAME_COLUMN)) {
        const from = `${altered}.${renamedFrom ?? changedFrom}`;
        const e = out.get(from);
        if (!e) continue;
        out.delete(from);
        out.set(`${altered}.${to}`, { ...e, object: { table: altered, column: to! } });
      }
      const newName = ALTER_RENAME_TABLE.exec(statement.replace(RENAME_COLUMN, ''))?.[1];
      if (newName) renameTable(altered, newName);
    }
  }
  return out;
}

/**
 * Tables and columns that a migration recorded in the ledger made, missing from the store (restored
 * in part, a table dropped by hand). The ledger alone says the store is migrated, so `init` would
 * skip the migration and every command fail on the missing table with the server's bare error.
 */
export async function missingObjectProblems(
  conn: Connection | Pool,
  database: string,
  ledger: Pick<LedgerRow, 'version'>[],
  migrations: Migration[],
): Promise<string[]> {
  const applied = new Set(ledger.map((r) => Number(r.version)));
  const expected = expectedObjects(migrations.filter((m) => applied.has(m.version)));
  if (expected.size === 0) return [];
  const [rows] = await conn.query<RowDataPacket[]>('SELECT TABLE_NAME AS t, COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ?', [database]);
  const present = new Set<string>();
  for (const r of rows) {
    present.add(String(r.t));
    present.add(`${String(r.t)}.${String(r.c)}`);
  }
  const missing = [...expected].filter(([key]) => !present.has(key)).map(([, e]) => e);
  if (missing.length === 0) return [];
  const versions = [...new Set(missing.map((e) => e.migration.version))].sort((a, b) => a - b);
  const problems = missing.map(({ object, migration }) => {
    const what = object.column ? `column ${object.table}.${object.column}` : `table ${object.table}`;
    return `migration ${migration.version}_${migration.name} is recorded as applied but ${what} is missing`;
  });
  problems.push(
    `the control store ${database} lost what ${versions.length === 1 ? 'that migration' : 'those migrations'} made (restored in part, or dropped by hand): restore it from a backup, ` +
      `or forget ${versions.length === 1 ? 'it' : 'them'} (DELETE FROM schema_migrations WHERE version IN (${versions.join(', ')})) and run membermig init, which applies ${versions.length === 1 ? 'it' : 'them'} again`,
  );
  return problems;
}

/** The control store's ledger of applied migrations; null when it has no ledger table (init never ran). */
export async function readLedger(conn: Connection | Pool, database: string): Promise<LedgerRow[] | null> {
  const [tables] = await conn.query<RowDataPacket[]>(
    "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'schema_migrations'",
    [database],
  );
  if (tables.length === 0) return null;
  const [ledger] = await conn.query<LedgerRow[]>(`SELECT version, name, checksum FROM ${quoteId(database)}.schema_migrations ORDER BY version`);
  return ledger;
}

/**
 * What makes a control store unusable by this membermig, whatever `init` does: a migration that
 * changed after it was applied, or one this membermig does not have (a newer membermig applied it,
 * or a file was removed). Empty when the store can be used or migrated forward.
 */
export function ledgerProblems(ledger: Pick<LedgerRow, 'version' | 'name' | 'checksum'>[], migrations: Migration[]): string[] {
  const byVersion = new Map(migrations.map((m) => [m.version, m]));
  const latest = Math.max(0, ...migrations.map((m) => m.version));
  const problems: string[] = [];
  for (const row of ledger) {
    const m = byVersion.get(row.version);
    const label = `migration ${row.version}_${row.name}`;
    if (!m && row.version > latest) problems.push(`${label} is applied in the control store but unknown to this membermig (it knows up to ${latest}): a newer membermig migrated the store; run that version`);
    else if (!m) problems.push(`${label} is applied in the control store but missing from this membermig`);
    else if (m.checksum !== row.checksum) problems.push(`${label} was changed after it was applied (checksum differs)`);
  }
  return problems;
}

export async function ensureDatabase(conn: Connection, database: string): Promise<boolean> {
  const [rows] = await conn.query<RowDataPacket[]>('SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database]);
  if (rows.length > 0) return false;
  await conn.query(`CREATE DATABASE IF NOT EXISTS ${quoteId(database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  return true;
}
