import { namedFailure, RefusedError } from '../errors.js';
import type { Connection, ConnectionOptions, Pool } from 'mysql2/promise';
import { pinShardMap } from './shard-map.js';
import type { Config } from '../config/schema.js';
import { connectMysql, createMysqlPool, databaseOfUrl, serverUrl } from '../mysql/connect.js';
import { ensureDatabase, ledgerProblems, migrate, missingObjectProblems, readLedger, readMigrations, type MigrationResult } from './migrate.js';

/** The control store: the one MySQL database that holds every piece of membermig's state. */
export interface ControlStore {
  readonly pool: Pool;
  readonly database: string;
  close(): Promise<void>;
}

export function controlDatabase(config: Pick<Config, 'control'>): string {
  const db = databaseOfUrl(config.control.url);
  if (!db) throw new Error('control.url must name a database, e.g. mysql://root@127.0.0.1:3306/membermig_control');
  return db;
}

/**
 * Every control-store session runs in UTC: the DATETIME columns that NOW(6) and their defaults fill
 * then hold UTC, as every reader takes them (isoTime labels them Z, ages are taken against NOW).
 * On a server in another time zone (a control server kept on Asia/Shanghai, say) they held its
 * local time, and status and the histories showed it as UTC, hours off. And with autocommit on,
 * whatever the server's default: under autocommit=0 a statement outside a transaction was never
 * committed (a shim's repair_queue entry, reported queued, was lost), and the shim's polling
 * connection read one snapshot for ever (a gray rollback was never seen).
 */
export const CONTROL_SESSION = "SET time_zone = '+00:00', autocommit = 1";

/** Opens a pool on an existing, migrated control store. */
export function openControlStore(config: Pick<Config, 'control'>, poolSize = 4): ControlStore {
  const database = controlDatabase(config);
  const pool = createMysqlPool(config.control.url, { connectionLimit: poolSize }, config.control.tls);
  // Queued on each new connection before anything the pool hands it to.
  pool.on('connection', (conn) => conn.query(CONTROL_SESSION));
  return { pool, database, close: () => pool.end() };
}

/** One connection to the control store (its database), in the control session. */
export async function connectControl(config: Pick<Config, 'control'>, extra: Partial<ConnectionOptions> = {}): Promise<Connection> {
  const conn = await connectMysql(config.control.url, extra, config.control.tls);
  try {
    await conn.query(CONTROL_SESSION);
  } catch (e) {
    await conn.end().catch(() => undefined);
    throw e;
  }
  return conn;
}

export interface ControlSetupResult extends MigrationResult {
  databaseCreated: boolean;
}

/** Creates the control database if needed and applies pending migrations. */
export async function setupControlStore(config: Pick<Config, 'control'>): Promise<ControlSetupResult> {
  const database = controlDatabase(config);
  const admin = await connectMysql(serverUrl(config.control.url), {}, config.control.tls);
  let databaseCreated: boolean;
  try {
    databaseCreated = await ensureDatabase(admin, database);
  } finally {
    await admin.end();
  }
  const conn = await connectControl(config, { multipleStatements: true });
  try {
    return { databaseCreated, ...(await migrate(conn)) };
  } finally {
    await conn.end();
  }
}

export interface SchemaState {
  exists: boolean;
  appliedVersion: number | null;
  latestVersion: number;
  /** Why this membermig cannot use the store even after `init` (a newer membermig migrated it, a changed migration). */
  problems: string[];
}

/** Whether the control store exists and how far it is migrated, without changing it. */
export async function controlSchemaState(store: ControlStore): Promise<SchemaState> {
  const migrations = readMigrations();
  const latestVersion = latestControlVersion(migrations);
  const ledger = await readLedger(store.pool, store.database);
  if (ledger === null || ledger.length === 0) return { exists: ledger !== null, appliedVersion: null, latestVersion, problems: [] };
  const problems = [...ledgerProblems(ledger, migrations), ...(await missingObjectProblems(store.pool, store.database, ledger, migrations))];
  return { exists: true, appliedVersion: Math.max(...ledger.map((r) => r.version)), latestVersion, problems };
}

/** As controlSchemaState, but a control database that does not exist yet is a store `init` has not set up (the server answered). */
export async function controlSchemaStateOrMissing(store: ControlStore): Promise<SchemaState> {
  try {
    return await controlSchemaState(store);
  } catch (e) {
    if ((e as { code?: string }).code !== 'ER_BAD_DB_ERROR') throw e;
    return { exists: false, appliedVersion: null, latestVersion: latestControlVersion(), problems: [] };
  }
}

/** The schema version this membermig's migrations bring the control store to. */
export function latestControlVersion(migrations = readMigrations()): number {
  return Math.max(0, ...migrations.map((m) => m.version));
}

/**
 * Refuses (exit 2) to run on a control store that `membermig init` has not set up at this
 * version, its database missing included: every command that reads or writes it starts here.
 * A store this membermig cannot use at all (migrated by a newer one) is told apart: init cannot help there.
 */
export async function requireMigratedStore(store: ControlStore): Promise<void> {
  let state: SchemaState;
  try {
    state = await controlSchemaState(store);
  } catch (e) {
    if ((e as { code?: string }).code === 'ER_BAD_DB_ERROR') throw new RefusedError(`the control store's database ${store.database} does not exist: run membermig init first`);
    throw namedFailure(`cannot use the control store (control.url, database ${store.database})`, e);
  }
  if (state.problems.length > 0) throw new RefusedError(`the control store ${store.database} cannot be used by this membermig: ${state.problems.join('; ')}`, state.problems);
  if (!state.exists || state.appliedVersion !== state.latestVersion) {
    throw new RefusedError(`the control store ${store.database} is not set up or not migrated to this version: run membermig init first`);
  }
}

/**
 * What every command that reads or writes the control store checks first: the store is migrated
 * (requireMigratedStore) and the config's shard map is the one its rows were placed by (pinShardMap).
 */
export async function requireUsableStore(store: ControlStore, shards: Config['shards']): Promise<void> {
  await requireMigratedStore(store);
  await pinShardMap(store, shards);
}
