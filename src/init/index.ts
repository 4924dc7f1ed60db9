import type { RowDataPacket } from 'mysql2/promise';
import type { Config } from '../config/schema.js';
import { silentLogger, type Logger } from '../log.js';
import { connectMysql, databaseOfUrl, quoteId } from '../mysql/connect.js';
import { RefusedError } from '../errors.js';
import { checkMysqlServer, type ServerReport, type ServerToCheck } from '../preflight/index.js';
import { checkMssqlSource } from '../source/mssql/preflight.js';
import { shardMapFromConfig, type ShardMap } from '../shard/map.js';
import { controlDatabase, openControlStore, setupControlStore, type ControlStore } from '../store/control.js';
import { checkShardMap, pinShardMap } from '../store/shard-map.js';
import { ensureDatabase } from '../store/migrate.js';
import { openRecreatedShardTables, recordRecreatedShardTables, type RecreatedShardTables } from '../store/recreated-tables.js';
import { createSourceReader, describeTables } from '../source/index.js';
import { fullJobTables, type FullJobTables } from '../copy/job.js';
import { createShardTables, planShardTables, type ShardTablesPlan, type ShardTablesResult } from '../target/tables.js';

export interface InitOptions {
  logger?: Logger;
  /** Only run the preflight checks; change nothing. */
  checkOnly?: boolean;
}

export interface InitResult {
  ok: boolean;
  servers: ServerReport[];
  control?: { database: string; databaseCreated: boolean; applied: string[]; alreadyApplied: number };
  shardDatabases?: { server: string; created: number; existing: number }[];
  /** Shard tables per server: created now, or already there with the expected shape. */
  shardTables?: ShardTablesResult[];
  /** True when nothing had to be created or applied (a repeated init). */
  unchanged?: boolean;
  /**
   * Shard tables created, by this init or an earlier one, for a table a full copy has copied or is
   * copying (dropped since, say): they are empty, and the job does not copy into them again by
   * itself. Every open record of the control store (src/store/recreated-tables.ts). The command exits 1.
   */
  createdAfterCopy?: RecreatedShardTables[];
}

/**
 * Phase 0: preflight every server, then create the control store schema and every shard
 * database. Idempotent: a second run changes nothing and says so. Refuses to change anything
 * when a preflight check finds an error.
 */
export async function runInit(config: Config, options: InitOptions = {}): Promise<InitResult> {
  const logger = options.logger ?? silentLogger;
  const map = shardMapFromConfig(config);
  const servers = await Promise.all([...serversToCheck(config, map).map((s) => checkMysqlServer(s)), ...mssqlSourceCheck(config)]);
  for (const s of servers) {
    for (const f of s.findings) logger[f.severity === 'error' ? 'error' : 'warn']({ server: s.label }, f.message);
  }
  const ok = servers.every((s) => s.findings.every((f) => f.severity !== 'error'));
  if (!ok) return { ok, servers };

  // Read-only first: the source tables and any existing shard tables must match, else refuse before any write.
  const plan = await planTables(config, map, logger);
  // Read-only too, for init and init --check alike: a control store that knows nothing (new, or not
  // created yet) over shard tables holding rows is refused before it is created or migrated.
  await withControlStore(config, async (store) => {
    if (await knowsNothing(store)) await refuseShardTablesWithRows(config, map, plan, store.database);
    await checkShardMap(store, config.shards);
  });
  if (options.checkOnly) return { ok, servers };

  const control = await setupControlStore(config);
  logger.info({ applied: control.applied.map((m) => m.version) }, 'control store ready');
  // Before any shard database is made for it: a changed map would create databases no row belongs in.
  // Recorded before the tables are created: the fact outlives this process (a kill, the next init).
  const createdAfterCopy = await withControlStore(config, async (store) => {
    await pinShardMap(store, config.shards);
    await recordRecreatedShardTables(store.pool, afterCopy(plan, await fullJobTables(store.pool)));
    return openRecreatedShardTables(store.pool);
  });
  const shardDatabases = await createShardDatabases(config, map);
  const shardTables = await createShardTables(config, plan);
  for (const c of createdAfterCopy) {
    logger.warn({ table: c.table, job: c.job, shardTables: c.shardTables, since: c.recordedAt }, 'shard tables created for a table whose full copy is already done or running: they are empty; run membermig verify --repair');
  }
  const unchanged =
    !control.databaseCreated && control.applied.length === 0 && shardDatabases.every((s) => s.created === 0) && shardTables.every((s) => s.created === 0);
  return {
    ok: true,
    servers,
    control: {
      database: controlDatabase(config),
      databaseCreated: control.databaseCreated,
      applied: control.applied.map((m) => `${String(m.version).padStart(3, '0')}_${m.name}`),
      alreadyApplied: control.alreadyApplied,
    },
    shardDatabases,
    shardTables,
    unchanged,
    ...(createdAfterCopy.length > 0 ? { createdAfterCopy } : {}),
  };
}

/** A control store with no shard map recorded and no job: new (or reset), it cannot vouch for rows already on the shards. */
async function knowsNothing(store: ControlStore): Promise<boolean> {
  // Each table asked on its own: a store migrated before 110 has no shard_map table, and its jobs
  // are still the record of the copy (it was refused as a new store, and could never be migrated).
  return (await holdsNoRow(store, 'shard_map')) && (await holdsNoRow(store, 'jobs'));
}

async function holdsNoRow(store: ControlStore, table: string): Promise<boolean> {
  try {
    const [rows] = await store.pool.query<RowDataPacket[]>(`SELECT 1 FROM ${quoteId(table)} LIMIT 1`);
    return rows.length === 0;
  } catch (e) {
    // No control database yet, or one not migrated this far: no row.
    if (['ER_BAD_DB_ERROR', 'ER_NO_SUCH_TABLE'].includes((e as { code?: string }).code ?? '')) return true;
    throw e;
  }
}

/**
 * Rows already in the shard tables were placed by some control store's shard map. A new control
 * store would record whatever map the config has now, and copy over them: refused (exit 2) while
 * any existing shard table holds a row. One query per existing table, only for a new store.
 */
async function refuseShardTablesWithRows(config: Config, map: ShardMap, plan: ShardTablesPlan, controlDb: string): Promise<void> {
  for (const [name, server] of Object.entries(config.servers)) {
    if (plan.unreachable.includes(name)) continue;
    const missing = new Set((plan.missing.get(name) ?? []).map((m) => `${m.database}.${m.spec.target}`));
    const conn = await connectMysql(server.primary, { database: undefined }, server.tls);
    try {
      for (const shard of map.shardsOn(name)) {
        for (const table of Object.values(config.tables)) {
          const qualified = `${map.databaseOf(shard)}.${table.target}`;
          if (missing.has(qualified)) continue;
          const [rows] = await conn.query<RowDataPacket[]>(`SELECT 1 FROM ${quoteId(map.databaseOf(shard))}.${quoteId(table.target)} LIMIT 1`);
          if (rows.length === 0) continue;
          throw new RefusedError(
            `shard table ${qualified} on server ${name} already holds rows, but the control store ${controlDb} has no record of a copy nor of the shard map ` +
              'they were placed by: point control.url at the control store that copied them, or empty the shard tables (a new shard map needs new shard databases)',
          );
        }
      }
    } finally {
      await conn.end();
    }
  }
}

/** The missing shard tables of a table a full copy (not abandoned) has copied or is copying. */
function afterCopy(plan: ShardTablesPlan, jobs: FullJobTables[]): { table: string; database: string; job: number; state: string }[] {
  const out: { table: string; database: string; job: number; state: string }[] = [];
  for (const list of plan.missing.values()) {
    for (const { database, spec } of list) {
      const job = jobs.filter((j) => j.tables.includes(spec.name)).pop();
      if (job) out.push({ table: spec.name, database, job: job.id, state: job.state });
    }
  }
  return out;
}

/** Describes every configured table on the source and checks the shard tables that already exist. */
async function planTables(config: Config, map: ShardMap, logger: Logger): Promise<ShardTablesPlan> {
  const reader = createSourceReader(config, logger);
  try {
    const specs = await describeTables(reader, config);
    for (const spec of specs) {
      const key = spec.columns.find((c) => c.source === spec.shardKey);
      if (key?.nullable) {
        logger.warn(
          { table: spec.name, column: spec.shardKey },
          'the shard key column is nullable: a row whose key is NULL routes to no shard (copy rejects it by rows.on_unrepresentable, verify reports it unrepresentable); make it NOT NULL on the legacy side if it never is',
        );
      }
    }
    return await planShardTables(config, map, specs);
  } finally {
    await reader.close();
  }
}

/** SQL Server legacy side: version, CDC enabled, Agent running, capture instances (when cdc.mssql is set). */
function mssqlSourceCheck(config: Config): Promise<ServerReport>[] {
  if (config.source.kind !== 'mssql') return [];
  return [
    checkMssqlSource({
      url: config.source.url,
      connect: { tls: config.source.tls, trustServerCertificate: config.source.trust_server_certificate },
      needCdc: config.cdc?.mssql !== undefined,
      captureInstances: Object.fromEntries(
        Object.entries(config.cdc?.mssql?.capture_instances ?? {}).map(([table, instance]) => [table, { instance, source: config.tables[table]!.source }]),
      ),
    }).then((r) => ({ ...r, role: 'source' as const })),
  ];
}

function serversToCheck(config: Config, map: ShardMap): ServerToCheck[] {
  const list: ServerToCheck[] = [
    { label: 'control', role: 'control', url: config.control.url, tls: config.control.tls, databases: [controlDatabase(config)] },
  ];
  for (const [name, server] of Object.entries(config.servers)) {
    const databases = map.shardsOn(name).map((s) => map.databaseOf(s));
    list.push({ label: `server ${name}`, role: 'shard', url: server.primary, tls: server.tls, databases, tables: databases.length * Object.keys(config.tables).length });
  }
  if (config.source.kind === 'mysql') {
    const db = databaseOfUrl(config.source.url) ?? Object.values(config.tables)[0]?.source.split('.')[0] ?? '*';
    list.push({ label: 'source', role: 'source', url: config.source.url, tls: config.source.tls, databases: [db], changeCapture: config.cdc !== undefined });
  }
  return list;
}

async function createShardDatabases(config: Config, map: ShardMap): Promise<{ server: string; created: number; existing: number }[]> {
  return Promise.all(
    Object.entries(config.servers).map(async ([name, server]) => {
      const conn = await connectMysql(server.primary, { database: undefined }, server.tls);
      try {
        let created = 0;
        const shards = map.shardsOn(name);
        for (const shard of shards) if (await ensureDatabase(conn, map.databaseOf(shard))) created++;
        return { server: name, created, existing: shards.length - created };
      } finally {
        await conn.end();
      }
    }),
  );
}

async function withControlStore<T>(config: Config, work: (store: ControlStore) => Promise<T>): Promise<T> {
  const store = openControlStore(config, 1);
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}
