import type { RowDataPacket } from 'mysql2/promise';
import type { Config } from '../config/schema.js';
import { shardMapFromConfig } from '../shard/map.js';
import { controlSchemaState, openControlStore, type SchemaState } from './control.js';
import { chunkCounts, type ChunkCounts } from './leases.js';
import { collectGrayStatus, type GrayStatus } from '../gray/status.js';
import { latestFinishedRuns, openRepairQueue, type LatestRun } from '../verify/runs.js';
import { collectSyncStatus, type SyncStatus } from '../cdc/status.js';
import { collectFullCopyStatus, type FullCopyStatus } from '../copy/status.js';
import { collectLeases, isStopped, liveWorkersSql, tableStatuses, type LeaseStatus, type TableStatus } from './status-tables.js';

export interface JobStatus {
  id: number;
  kind: string;
  name: string;
  state: string;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  /** Processes working on it now (fresh heartbeat). */
  liveWorkers: number;
  /** Not finished, and no process works on it: stopped or crashed; a rerun goes on. */
  stopped: boolean;
  chunks: ChunkCounts[];
}

export interface Status {
  control: { database: string; reachable: boolean; error?: string } & Partial<SchemaState>;
  servers: { name: string; dc: string | null; shards: number; replicas: number }[];
  shards: { count: number; function: string; database: string };
  tables: { name: string; source: string; target: string; shardKey: string }[];
  jobs: JobStatus[];
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
  const sections = await collectSections(config);
  return { ...sections, perTable: tableStatuses(sections) };
}

async function collectSections(config: Config): Promise<Omit<Status, 'perTable'>> {
  const map = shardMapFromConfig(config);
  const base: Omit<Status, 'control' | 'jobs' | 'workers' | 'perTable'> = {
    servers: Object.entries(config.servers).map(([name, s]) => ({ name, dc: s.dc ?? null, shards: map.shardsOn(name).length, replicas: s.replicas.length })),
    shards: { count: config.shards.count, function: config.shards.function, database: config.shards.database },
    tables: Object.entries(config.tables).map(([name, t]) => ({ name, source: t.source, target: t.target, shardKey: t.shard_key })),
  };
  const store = openControlStore(config, 2);
  try {
    const schema = await controlSchemaState(store);
    if (!schema.exists) return { ...base, control: { database: store.database, reachable: true, ...schema }, jobs: [], workers: [] };
    const [jobRows] = await store.pool.query<RowDataPacket[]>(
      `SELECT id, kind, name, state, DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%sZ') AS created_at,
              DATE_FORMAT(updated_at, '%Y-%m-%dT%H:%i:%sZ') AS updated_at, DATE_FORMAT(finished_at, '%Y-%m-%dT%H:%i:%sZ') AS finished_at,
              ${liveWorkersSql('j')} AS live_workers
         FROM jobs j ORDER BY id DESC LIMIT 20`,
      [config.copy.lease_seconds],
    );
    const jobs: JobStatus[] = [];
    for (const r of jobRows) {
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
        chunks: await chunkCounts(store.pool, Number(r.id)),
      });
    }
    const [workerRows] = await store.pool.query<RowDataPacket[]>(
      'SELECT id, command, job_id, TIMESTAMPDIFF(SECOND, heartbeat_at, NOW(6)) AS age FROM workers ORDER BY started_at',
    );
    const workers = workerRows.map((w) => ({ id: w.id, command: w.command, jobId: w.job_id === null ? null : Number(w.job_id), heartbeatAgeSeconds: Number(w.age) }));
    const gray = await collectGrayStatus(store.pool, config);
    const verify = { latest: await latestFinishedRuns(store.pool), repairQueue: await openRepairQueue(store.pool) };
    // A control store not yet migrated to this version has no sync tables: status still answers.
    const sync = await collectSyncStatus(store.pool).catch(() => undefined);
    const fullCopy = await collectFullCopyStatus(store.pool, config.copy.lease_seconds);
    const leases = await collectLeases(store.pool);
    return { ...base, control: { database: store.database, reachable: true, ...schema }, jobs, workers, gray, verify, ...(sync ? { sync } : {}), fullCopy, leases };
  } catch (e) {
    return { ...base, control: { database: store.database, reachable: false, error: (e as Error).message }, jobs: [], workers: [] };
  } finally {
    await store.close();
  }
}
