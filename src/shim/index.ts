/**
 * membermig/shim: the library application services embed to follow the shim mode and the gray
 * release of each table without a restart. It reads the settings from the control store, polls
 * settings_version (default every 500 ms, so a change is acted on within a second), decides per
 * member where a read goes and which writes to make, sequences dual writes primary first, and
 * queues a key for repair when the second write fails. docs/shim-contract.md is the contract.
 */
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { loadConfig } from '../config/load.js';
import { redactSecrets } from '../config/secrets.js';
import type { Config } from '../config/schema.js';
import { silentLogger, type Logger } from '../log.js';
import { keyText, shardMapFromConfig, type ShardKey, type ShardLocation, type ShardMap } from '../shard/map.js';
import { connectControl, controlSchemaState, openControlStore, type ControlStore } from '../store/control.js';
import { pinShardMap } from '../store/shard-map.js';
import { connectMysql } from '../mysql/connect.js';
import { TableRouter, type Route, type WritePlan } from '../gray/route.js';
import { targetColumnName } from '../source/table-config.js';
import { readSettings, settingsOf, type SettingsSnapshot } from '../gray/settings.js';

export { SHIM_MODES, type ShimMode, type Route, type WritePlan, type ReadSide } from '../gray/route.js';
export { bucketOf } from '../gray/bucket.js';
export type { ShardLocation } from '../shard/map.js';

export interface ShimOptions {
  /** A validated config, or the path of a config file. */
  config: Config | string;
  /** How often to poll settings_version; a change is acted on within this plus one query. */
  pollIntervalMs?: number;
  logger?: Logger;
}

/** Where the MySQL side of one member lives: the shard map's answer plus the table's name in the shard. */
export interface MysqlTarget extends ShardLocation {
  table: string;
}

export interface ReadCallbacks<T> {
  legacy: () => Promise<T>;
  mysql: (target: MysqlTarget) => Promise<T>;
}

export interface WriteCallbacks {
  legacy: () => Promise<unknown>;
  mysql: (target: MysqlTarget) => Promise<unknown>;
}

export interface WriteOptions {
  /** Primary-key values of the row as text, for repair_queue; default { <shard_key>: memberId }. */
  pk?: Record<string, string>;
}

export interface WriteOutcome {
  plan: WritePlan;
  /** The sides written successfully, in order. */
  written: ('legacy' | 'mysql')[];
  /** The second write failed and its key was queued in repair_queue; the request still succeeded. */
  queuedForRepair: boolean;
  secondError?: Error;
}

/** The primary write failed: nothing was changed on either side. */
export class PrimaryWriteError extends Error {
  override name = 'PrimaryWriteError';
  constructor(
    readonly side: 'legacy' | 'mysql',
    override readonly cause: unknown,
  ) {
    super(`${side} (primary) write failed: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

/** The second write failed and the key could not be queued for repair either: the request must fail. */
export class RepairQueueError extends Error {
  override name = 'RepairQueueError';
}

/**
 * A settings poll with no answer by then is given up and its connection dropped: a half-open
 * connection (a failover, a frozen host) would otherwise hold the poll, and with it every later
 * one, until TCP gives up minutes later, and a rollback would not be acted on.
 */
const POLL_TIMEOUT_MS = 2000;

export class Shim {
  private routers = new Map<string, TableRouter>();
  private currentVersion = -1;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly map: ShardMap;
  /** The polls' own connection (repair-queue writes use the pool), made anew after a poll timed out. */
  private pollConnection: Promise<Connection> | null = null;
  /** Each table's primary key, as its shard tables have it (absent when it could not be read at start). */
  private readonly primaryKeys = new Map<string, string[]>();

  private constructor(
    private readonly config: Config,
    private readonly store: ControlStore,
    private readonly pollIntervalMs: number,
    private readonly logger: Logger,
  ) {
    this.map = shardMapFromConfig(config);
  }

  static async create(options: ShimOptions): Promise<Shim> {
    const config = typeof options.config === 'string' ? loadConfig(options.config).config : options.config;
    const store = openControlStore(config, 2);
    const shim = new Shim(config, store, options.pollIntervalMs ?? 500, options.logger ?? silentLogger);
    try {
      await requireStoreNotOlder(store);
      // A service whose config routes otherwise than the copy did would read and write other shards.
      await pinShardMap(store, config.shards);
      await shim.refresh();
    } catch (e) {
      await store.close();
      throw e;
    }
    await shim.readPrimaryKeys();
    shim.schedule();
    return shim;
  }

  /**
   * Reads each table's primary key from shard 0's table, so that write() can refuse a call whose
   * pk would queue an entry no repair can use. A shard server that cannot be asked now does not
   * keep the shim from starting (legacy-only writes need no MySQL): that table is then not checked.
   */
  private async readPrimaryKeys(): Promise<void> {
    const location = this.map.locate(0);
    let conn: Connection;
    try {
      conn = await connectMysql(location.server.primary, { database: undefined, connectTimeout: 5000 }, this.config.servers[location.server.name]?.tls);
    } catch (e) {
      this.logger.warn({ server: location.server.name, err: (e as Error).message }, 'cannot read the shard tables\' primary keys; write() will not check pk');
      return;
    }
    try {
      for (const [table, t] of Object.entries(this.config.tables)) {
        const [rows] = await conn.query<RowDataPacket[]>(
          "SELECT COLUMN_NAME AS c FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
          [location.database, t.target],
        );
        if (rows.length > 0) this.primaryKeys.set(table, rows.map((r) => String(r.c)));
      }
    } catch (e) {
      this.logger.warn({ server: location.server.name, err: (e as Error).message }, 'cannot read the shard tables\' primary keys; write() will not check pk');
    } finally {
      await conn.end().catch(() => {});
    }
  }

  /** A pk that would queue a repair_queue entry naming no row: refused before any write. */
  private checkPk(table: string, pk: Record<string, string> | undefined): void {
    const key = this.primaryKeys.get(table);
    if (!key) return;
    // The shard tables' key, so the shard key's name there (columns may rename it).
    const shardKey = targetColumnName(this.config.tables[table]!, this.config.tables[table]!.shard_key);
    if (!pk) {
      if (key.length === 1 && key[0] === shardKey) return;
      throw new Error(`membermig shim: table ${table} has primary key (${key.join(', ')}): pass options.pk with every key column, or a failed second write could not be queued for repair`);
    }
    const missing = key.filter((k) => pk[k] === undefined);
    if (missing.length > 0) throw new Error(`membermig shim: options.pk for table ${table} lacks key column ${missing.join(', ')} (primary key (${key.join(', ')}))`);
  }

  /** The settings version this shim is acting on. */
  get version(): number {
    return this.currentVersion;
  }

  /** Where this member's read goes and which writes it makes now. Allocation-free; throws for an unknown table. */
  route(table: string, memberId: ShardKey): Route {
    const router = this.routers.get(table);
    if (router === undefined) throw new Error(`membermig shim: unknown table "${table}"`);
    return router.route(memberId);
  }

  /** The MySQL side of a member: shard, database, server (the same routing as every other path). */
  mysqlTarget(table: string, memberId: ShardKey): MysqlTarget {
    const t = this.config.tables[table];
    if (!t) throw new Error(`membermig shim: unknown table "${table}"`);
    return { ...this.map.locate(memberId), table: t.target };
  }

  /** Reads from the side the member's route says. */
  async read<T>(table: string, memberId: ShardKey, callbacks: ReadCallbacks<T>): Promise<T> {
    return this.route(table, memberId).read === 'mysql' ? callbacks.mysql(this.mysqlTarget(table, memberId)) : callbacks.legacy();
  }

  /**
   * Makes the writes the member's route says, primary first. A failed primary write throws
   * PrimaryWriteError and nothing else is written. A failed second write does not fail the request:
   * the key goes to repair_queue (origin 'shim', with the side that is behind) so `verify --repair`
   * re-copies it when MySQL is behind, or holds it when legacy is.
   */
  async write(table: string, memberId: ShardKey, callbacks: WriteCallbacks, options: WriteOptions = {}): Promise<WriteOutcome> {
    const plan = this.route(table, memberId).write;
    this.checkPk(table, options.pk);
    const order: ('legacy' | 'mysql')[] =
      plan === 'legacy' ? ['legacy'] : plan === 'mysql' ? ['mysql'] : plan === 'legacy_then_mysql' ? ['legacy', 'mysql'] : ['mysql', 'legacy'];
    const run = (side: 'legacy' | 'mysql') => (side === 'legacy' ? callbacks.legacy() : callbacks.mysql(this.mysqlTarget(table, memberId)));
    const [primary, second] = order as ['legacy' | 'mysql', ('legacy' | 'mysql')?];
    try {
      await run(primary);
    } catch (e) {
      throw new PrimaryWriteError(primary, e);
    }
    if (!second) return { plan, written: [primary], queuedForRepair: false };
    try {
      await run(second);
      return { plan, written: [primary, second], queuedForRepair: false };
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      // The application's message goes into the control store and the application's own logger, which
      // scrubs nothing: a driver error quoting the shard URL this shim handed it would carry its password.
      const message = redactSecrets(error.message);
      await this.queueRepair(table, memberId, options.pk, second, `shim: ${second} write failed after the ${primary} (primary) write succeeded [${plan}]: ${message}`);
      this.logger.warn({ table, side: second, err: message }, 'second write failed; key queued for repair');
      return { plan, written: [primary], queuedForRepair: true, secondError: error };
    }
  }

  /** `behind`: the side whose write failed (verify --repair only re-copies toward MySQL; see migration 070). */
  private async queueRepair(table: string, memberId: ShardKey, pk: Record<string, string> | undefined, behind: 'legacy' | 'mysql', reason: string): Promise<void> {
    const key = pk ?? { [targetColumnName(this.config.tables[table]!, this.config.tables[table]!.shard_key)]: keyText(memberId) };
    try {
      await this.store.pool.query("INSERT INTO repair_queue (table_name, pk, reason, origin, behind) VALUES (?, ?, ?, 'shim', ?)", [table, JSON.stringify(key), reason, behind]);
    } catch (e) {
      throw new RepairQueueError(`${reason}; and queuing the key for repair failed too: ${(e as Error).message}`);
    }
  }

  /** Reloads the settings when settings_version moved; returns whether it did. */
  async refresh(): Promise<boolean> {
    const conn = this.pollConnection ?? (this.pollConnection = connectControl(this.config));
    try {
      const [rows] = await (await conn).query<RowDataPacket[]>('SELECT version FROM settings_version WHERE id = 1');
      const version = Number(rows[0]?.version ?? 0);
      if (version === this.currentVersion) return false;
      this.install(await readSettings(await conn));
      return true;
    } catch (e) {
      this.dropPollConnection(conn);
      throw e;
    }
  }

  /** Drops the poll connection (if it is still the current one): the next poll connects anew. */
  private dropPollConnection(conn: Promise<Connection>): void {
    if (this.pollConnection === conn) this.pollConnection = null;
    conn.then((c) => c.destroy()).catch(() => {});
  }

  private install(snapshot: SettingsSnapshot): void {
    // Refreshes may overlap (the poll and a caller's refresh()): one that read older settings must
    // not replace newer ones, or a rollback would be undone in this process until the next poll.
    if (snapshot.version < this.currentVersion) return;
    const routers = new Map<string, TableRouter>();
    for (const table of Object.keys(this.config.tables)) {
      const s = settingsOf(snapshot, table);
      routers.set(table, new TableRouter(s.shim, s.gray));
    }
    this.routers = routers;
    this.currentVersion = snapshot.version;
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      const refreshed = this.refresh();
      const conn = this.pollConnection; // the one this poll uses (refresh takes or makes it at once)
      let watchdog: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        watchdog = setTimeout(() => reject(new Error(`no answer in ${POLL_TIMEOUT_MS} ms; reconnecting`)), POLL_TIMEOUT_MS);
      });
      Promise.race([refreshed, timedOut])
        .catch((e: Error) => {
          if (conn && this.pollConnection === conn) this.dropPollConnection(conn);
          this.logger.warn({ err: e.message }, 'cannot read settings; acting on the last ones');
        })
        .finally(() => {
          clearTimeout(watchdog);
          this.schedule();
        });
    }, this.pollIntervalMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.pollConnection) this.dropPollConnection(this.pollConnection);
    await this.store.close();
  }
}

/**
 * A store older than this library (an upgrade whose init has not run) would fail the shim's first
 * repair-queue write, a failed second write's only record: refused at start instead. A store a newer
 * membermig migrated further is used: applications upgrade their library on their own schedule.
 */
async function requireStoreNotOlder(store: ControlStore): Promise<void> {
  const state = await controlSchemaState(store);
  if (!state.exists || (state.appliedVersion ?? 0) < state.latestVersion) {
    throw new Error(`membermig shim: the control store ${store.database} is at schema ${state.appliedVersion ?? 'none'}, this membermig needs ${state.latestVersion}: run membermig init first`);
  }
}

/** Starts a shim: loads the settings once (rejects if the control store cannot be read), then polls. */
export function createShim(options: ShimOptions): Promise<Shim> {
  return Shim.create(options);
}
