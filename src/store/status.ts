import { RefusedError } from '../errors.js';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { Config } from '../config/schema.js';
import { shardMapFromConfig } from '../shard/map.js';
import { controlSchemaStateOrMissing, openControlStore, type SchemaState } from './control.js';
import { chunkCounts, type ChunkCounts } from './leases.js';
import { collectGrayStatus, type GrayStatus } from '../gray/status.js';
import { latestFinishedRuns, openRepairQueue, type LatestRun } from '../verify/runs.js';
import { collectSyncStatus, type SyncStatus } from '../cdc/status.js';
import { collectFullCopyStatus, type FullCopyStatus } from '../copy/status.js';
import { collectLeases, isStopped, liveWorkersSql, tableStatuses, type LeaseStatus, type TableStatus } from './status-tables.js';
import { checkShardMap } from './shard-map.js';
import { deadLocalWorkers } from './workers.js';
import { jobOptions } from '../copy/job.js';

export interface JobStatus {
  id: number;
  kind: string;
  name: string;
  state: string;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  /** Processes working on it now (fresh heartbeat, and, on this host, a process that exists). */
  liveWorkers: number;
  /** Not finished, and no process works on it: stopped or crashed; a rerun goes on. */
  stopped: boolean;
  /** A full copy's tables, as it was started (empty for other kinds): it is theirs before it holds a chunk of them. */
  tables: string[];
  chunks: ChunkCounts[];
}

export interface Status {
  control: { database: string; reachable: boolean; error?: string } & Partial<SchemaState>;
  servers: { name: string; dc: string | null; shards: number; replicas: number }[];
  shards: { count: number; function: string; database: string };
  tables: { name: string; source: string; target: string; shardKey: string }[];
  jobs: JobStatus[];
  /** Registered workers, less those of this host whose process is gone. */
  workers: { id: string; command: string; jobId: number | null; heartbeatAgeSeconds: number }[];
  /** Shim mode and gray percentages per table (absent when the control store is not initialised). */
  gray?: GrayStatus;
  /** verify: the latest finished run per table, and open repair_queue entries per table. */
  verify?: { latest: LatestRun[]; repairQueue: { table: string; open: number }[] };
  /** sync: offsets and lag per partition (from the cdc_offsets mirror) and dead letters. */
  sync?: SyncStatus;
  /** Full-copy jobs: chunks left, rows, rejected values, CDC start position (absent when not initialised). */
  fullCopy?: FullCopyStatus;
  /** Chunk leases held right now, per worker, job and table. */
  leases?: LeaseStatus[];
  /** One summary per configured table, from the sections above (what `status` shows first). */
  perTable: TableStatus[];
}

/** One view of everything membermig knows, read from the config and the control store. */
export async function collectStatus(config: Config): Promise<Status> {
  const { fullJobs, ...sections } = await collectSections(config);
  return { ...sections, perTable: tableStatuses({ ...sections, jobs: [...sections.jobs, ...fullJobs] }) };
}

const JOB_COLUMNS = (alias: string, deadHere: string[]) => `${alias}.id, ${alias}.kind, ${alias}.name, ${alias}.state,
  DATE_FORMAT(${alias}.created_at, '%Y-%m-%dT%H:%i:%sZ') AS created_at, DATE_FORMAT(${alias}.updated_at, '%Y-%m-%dT%H:%i:%sZ') AS updated_at,
  DATE_FORMAT(${alias}.finished_at, '%Y-%m-%dT%H:%i:%sZ') AS finished_at, ${alias}.options, ${liveWorkersSql(alias, deadHere)} AS live_workers`;

async function jobStatuses(pool: Pool, rows: RowDataPacket[]): Promise<JobStatus[]> {
  const jobs: JobStatus[] = [];
  for (const r of rows) {
    jobs.push({
      id: Number(r.id),
      kind: r.kind,
      name: r.name,
      state: r.state,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      finishedAt: r.finished_at,
      liveWorkers: Number(r.live_workers),
      stopped: isStopped(r.state, Number(r.live_workers)),
      tables: r.kind === 'full' ? (jobOptions(r.options).tables ?? []) : [],
      chunks: await chunkCounts(pool, Number(r.id)),
    });
  }
  return jobs;
}

/**
 * The newest full-copy job of each table that is not among the recent jobs: verify runs every few
 * minutes and pushes a finished full copy out of those, and the per-table line must still show it.
 * A job is a table's by the tables it was started with or by its chunks (see tableStatuses).
 */
async function olderFullJobs(pool: Pool, tables: string[], recent: JobStatus[], leaseSeconds: number, deadHere: string[]): Promise<JobStatus[]> {
  const covered = new Set(recent.filter((j) => j.kind === 'full').flatMap((j) => [...j.tables, ...j.chunks.map((c) => c.tableName)]));
  const ids = new Set<number>();
  for (const table of tables.filter((t) => !covered.has(t))) {
    const [rows] = await pool.query<RowDataPacket[]>(
      `SELECT j.id FROM jobs j WHERE j.kind = 'full'
          AND (JSON_CONTAINS(j.options, JSON_QUOTE(?), '$.tables') OR EXISTS (SELECT 1 FROM chunks c WHERE c.job_id = j.id AND c.table_name = ?))
        ORDER BY j.id DESC LIMIT 1`,
      [table, table],
    );
    if (rows[0]) ids.add(Number(rows[0].id));
  }
  if (ids.size === 0) return [];
  const [rows] = await pool.query<RowDataPacket[]>(`SELECT ${JOB_COLUMNS('j', deadHere)} FROM jobs j WHERE j.id IN (?) ORDER BY j.id DESC`, [leaseSeconds, [...ids]]);
  return jobStatuses(pool, rows);
}

async function collectSections(config: Config): Promise<Omit<Status, 'perTable'> & { fullJobs: JobStatus[] }> {
  const map = shardMapFromConfig(config);
  const base: Omit<Status, 'control' | 'jobs' | 'workers' | 'perTable'> = {
    servers: Object.entries(config.servers).map(([name, s]) => ({ name, dc: s.dc ?? null, shards: map.shardsOn(name).length, replicas: s.replicas.length })),
    shards: { count: config.shards.count, function: config.shards.function, database: config.shards.database },
    tables: Object.entries(config.tables).map(([name, t]) => ({ name, source: t.source, target: t.target, shardKey: t.shard_key })),
  };
  const store = openControlStore(config, 2);
  try {
    const schema = await controlSchemaStateOrMissing(store);
    if (!schema.exists) return { ...base, control: { database: store.database, reachable: true, ...schema }, jobs: [], workers: [], fullJobs: [] };
    // A config routing otherwise than the recorded map: every other command refuses it; status says why (exit 1).
    await checkShardMap(store, config.shards).catch((e: unknown) => {
      if (!(e instanceof RefusedError)) throw e;
      schema.problems = [...schema.problems, e.message];
    });
    // A kill -9 leaves a fresh heartbeat for up to a lease; a worker of this host whose process is gone is dead now.
    const deadHere = (await deadLocalWorkers(store.pool)).map((w) => w.id);
    const [jobRows] = await store.pool.query<RowDataPacket[]>(`SELECT ${JOB_COLUMNS('j', deadHere)} FROM jobs j ORDER BY id DESC LIMIT 20`, [config.copy.lease_seconds]);
    const jobs = await jobStatuses(store.pool, jobRows);
    const fullJobs = await olderFullJobs(store.pool, Object.keys(config.tables), jobs, config.copy.lease_seconds, deadHere);
    const [workerRows] = await store.pool.query<RowDataPacket[]>(
      'SELECT id, command, job_id, TIMESTAMPDIFF(SECOND, heartbeat_at, NOW(6)) AS age FROM workers ORDER BY started_at',
    );
    const workers = workerRows.filter((w) => !deadHere.includes(w.id)).map((w) => ({ id: w.id, command: w.command, jobId: w.job_id === null ? null : Number(w.job_id), heartbeatAgeSeconds: Number(w.age) }));
    const gray = await collectGrayStatus(store.pool, config);
    const verify = { latest: await latestFinishedRuns(store.pool), repairQueue: await openRepairQueue(store.pool) };
    // A control store not yet migrated to this version has no sync tables: status still answers.
    const sync = await collectSyncStatus(store.pool, config.cdc?.kafka).catch(() => undefined);
    const fullCopy = await collectFullCopyStatus(store.pool, config.copy.lease_seconds, deadHere);
    const leases = await collectLeases(store.pool);
    return { ...base, control: { database: store.database, reachable: true, ...schema }, jobs, workers, gray, verify, ...(sync ? { sync } : {}), fullCopy, leases, fullJobs };
  } catch (e) {
    return { ...base, control: { database: store.database, reachable: false, error: (e as Error).message }, jobs: [], workers: [], fullJobs: [] };
  } finally {
    await store.close();
  }
}
