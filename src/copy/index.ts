import type { RowDataPacket } from 'mysql2/promise';
import type { Config } from '../config/schema.js';
import { RefusedError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { connectMysql } from '../mysql/connect.js';
import type { TableSpec } from '../rows/types.js';
import { shardMapFromConfig, type ShardMap } from '../shard/map.js';
import { createSourceReader, describeTables, type SourceReader } from '../source/index.js';
import { controlDatabase, controlSchemaStateOrMissing, openControlStore, requireUsableStore } from '../store/control.js';
import { planShardTables, refuseMissingShardTables } from '../target/tables.js';
import { checkShardMap } from '../store/shard-map.js';
import { ReplicaLagGate } from '../target/replica-lag.js';
import { createShardWriter } from '../target/writer.js';
import type { CopyMethod } from './chunk.js';
import { isTransient } from '../mysql/retry.js';
import { currentJob, jobName, refuseToStart } from './job.js';
import { copyJob } from './run.js';
import { emptyResult } from './summary.js';
import type { FullCopyOptions, FullCopyResult, TablePlan } from './types.js';
import { copyWorkers } from './workers.js';

export type { FullCopyOptions, FullCopyResult, LeftChunk, TablePlan, TableProgress } from './types.js';

/**
 * Phase 1: copies every row of the configured tables into its shard, chunk by chunk, and can be
 * killed at any moment and run again. Refuses (RefusedError, nothing written) when a source
 * table, key or shard table is not what the config and the row pipeline expect.
 */
export async function runFullCopy(config: Config, options: FullCopyOptions = {}): Promise<FullCopyResult> {
  const logger = options.logger ?? silentLogger;
  const names = options.tables && options.tables.length > 0 ? options.tables : Object.keys(config.tables);
  const workers = options.workers ?? copyWorkers(config);
  const map = shardMapFromConfig(config);
  // The control store first: a changed shard map is named as such, not as missing shard tables (whose
  // advice, init, would be refused for that map). A dry run writes nothing, so it only reads the map.
  const store = options.dryRun ? null : openControlStore(config, workers + 3);
  try {
    if (store) await requireUsableStore(store, config.shards);
    else await refuseChangedShardMap(config);
    const reader = createSourceReader({ ...config, copy: { ...config.copy, workers } }, logger);
    try {
      const specs = await describeTables(reader, config, names);
      const tables = await planShardTables(config, map, specs, { tolerateUnreachable: isTransient });
      for (const server of tables.unreachable) logger.warn({ server }, 'shard server unreachable: its tables are checked before its first write');
      refuseMissingShardTables(tables);
      const method = await chooseMethod(config, reader, logger, tables.unreachable);
      if (!store) return await dryRun(config, map, reader, specs, method, options.restart === true, tables.unreachable);
      const replicaLag = new ReplicaLagGate(config, config.copy.max_replica_lag_seconds, logger);
      const writer = createShardWriter(config);
      try {
        await replicaLag.refuseReplicasThatCannotTell();
        return await copyJob({ config, options, logger, map, reader, writer, store, specs, method, workers, unchecked: tables.unreachable, replicaLag });
      } finally {
        await Promise.all([writer.close(), replicaLag.close()]);
      }
    } finally {
      await reader.close();
    }
  } finally {
    await store?.close();
  }
}

/**
 * The bulk path needs a source that builds LOAD DATA text and shard servers that accept LOAD DATA
 * LOCAL (local_infile, off by default on MySQL 8). With method auto the row path takes over
 * otherwise; with method load that is refused.
 */
async function chooseMethod(config: Config, reader: SourceReader, logger: Logger, unreachable: string[]): Promise<CopyMethod> {
  const wanted = config.copy.method;
  if (wanted === 'insert') return 'insert';
  if (!reader.readTsv) {
    if (wanted === 'load') logger.warn(`copy.method load needs a source that builds LOAD DATA lines; ${reader.kind} does not, using insert`);
    return 'insert';
  }
  const refusing: string[] = [];
  for (const [name, server] of Object.entries(config.servers)) {
    if (unreachable.includes(name)) continue;
    const conn = await connectMysql(server.primary, { database: undefined }, server.tls);
    try {
      const [rows] = await conn.query<RowDataPacket[]>('SELECT @@global.local_infile AS v');
      if (Number(rows[0]?.v) !== 1) refusing.push(name);
    } finally {
      await conn.end();
    }
  }
  if (refusing.length === 0) return 'load';
  const why = `shard server ${refusing.join(', ')} has local_infile off, so LOAD DATA LOCAL cannot be used`;
  if (wanted === 'load') throw new RefusedError(`copy.method load: ${why} (SET GLOBAL local_infile = 1, or use method auto/insert)`);
  logger.warn(`${why}: copying with multi-row upserts (slower)`);
  return 'insert';
}

async function dryRun(config: Config, map: ShardMap, reader: SourceReader, specs: TableSpec[], method: CopyMethod, restart: boolean, unreachable: string[]): Promise<FullCopyResult> {
  const plans: TablePlan[] = [];
  for (const spec of specs) {
    let chunks = 1;
    for await (const _bound of reader.chunkBoundaries(spec, config.copy.chunk_rows)) chunks++;
    plans.push({ table: spec.name, source: `${spec.sourceSchema}.${spec.sourceTable}`, target: spec.target, chunks, chunkRows: config.copy.chunk_rows });
  }
  const servers = map.servers().map((s) => ({ server: s.name, shards: map.shardsOn(s.name).length }));
  // Without the control store it is unknown whether a run starts afresh or goes on with a job: said, not left out.
  let job: ExistingJob | null = null;
  let controlError: string | undefined;
  try {
    job = await existingJob(config, specs, restart);
  } catch (e) {
    if (e instanceof RefusedError) throw e;
    controlError = `cannot read the control store (control.url, database ${controlDatabase(config)}): ${(e as Error).message}`;
  }
  return {
    ...emptyResult(specs, method),
    jobId: job?.id ?? null,
    state: 'planned',
    tables: plans.map((p) => {
      const done = job?.tables.get(p.table);
      return { table: p.table, chunks: done?.chunks ?? p.chunks, chunksDone: done?.chunksDone ?? 0, rows: done?.rows ?? 0, rowsThisRun: 0, servers: {} };
    }),
    servers: servers.map((s) => ({ ...s, rows: 0 })),
    plan: {
      tables: plans,
      shards: map.count,
      servers,
      ...(job ? { job: { id: job.id, state: job.state, chunks: job.chunks, chunksDone: job.chunksDone, rows: job.rows, action: job.action } } : {}),
      ...(controlError ? { controlError } : {}),
      ...(unreachable.length > 0 ? { unreachable } : {}),
    },
  };
}

/**
 * The dry run's shard map check, before the shard tables: a config whose map is not the recorded
 * one would be refused by the run, and so is its plan. A control store it cannot read is no
 * refusal: the plan says it could not read it (existingJob).
 */
async function refuseChangedShardMap(config: Config): Promise<void> {
  const store = openControlStore(config, 1);
  try {
    await checkShardMap(store, config.shards);
  } catch (e) {
    if (e instanceof RefusedError) throw e;
  } finally {
    await store.close();
  }
}

interface ExistingJob {
  id: number;
  state: string;
  chunks: number;
  chunksDone: number;
  rows: number;
  /** What a run with the same options does with it: goes on from its progress, or drops it (--restart). */
  action: 'resume' | 'restart';
  tables: Map<string, { chunks: number; chunksDone: number; rows: number }>;
}

/**
 * The job of these tables a run would go on with (or drop, with --restart), from the control store;
 * null when none (or no store yet). Throws when the control store cannot be read.
 */
async function existingJob(config: Config, specs: TableSpec[], restart: boolean): Promise<ExistingJob | null> {
  const store = openControlStore(config, 1);
  try {
    if (!(await controlSchemaStateOrMissing(store)).appliedVersion) return null;
    // A plan the run would refuse (a restart while MySQL serves a table, say) is refused: same rule, same message.
    await refuseToStart(store.pool, specs, restart);
    const row = await currentJob(store.pool, jobName(specs.map((s) => s.name)));
    if (!row) return null;
    const [chunks] = await store.pool.query<RowDataPacket[]>(
      "SELECT table_name, COUNT(*) AS chunks, SUM(state = 'done') AS done, COALESCE(SUM(IF(state = 'done', rows_done, 0)), 0) AS rows_done FROM chunks WHERE job_id = ? GROUP BY table_name",
      [row.id],
    );
    const tables = new Map(chunks.map((c) => [c.table_name as string, { chunks: Number(c.chunks), chunksDone: Number(c.done), rows: Number(c.rows_done) }]));
    const sum = (pick: (t: { chunks: number; chunksDone: number; rows: number }) => number) => [...tables.values()].reduce((n, t) => n + pick(t), 0);
    return { id: Number(row.id), state: row.state, chunks: sum((t) => t.chunks), chunksDone: sum((t) => t.chunksDone), rows: sum((t) => t.rows), action: restart ? 'restart' : 'resume', tables };
  } finally {
    await store.close();
  }
}
