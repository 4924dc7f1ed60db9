import { RefusedError } from '../errors.js';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { Config } from '../config/schema.js';
import { shardMapFromConfig } from '../shard/map.js';
import { lagAllowsWrites, readReplicaLags, type ReplicaLag } from '../target/replica-lag.js';
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
import { checkGates } from '../gray/gates.js';
import { openRecreatedShardTables, recreatedWarning, type RecreatedShardTables } from './recreated-tables.js';

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
  /** replicaLag: each replica's lag as read now (servers with replicas only; src/target/replica-lag.ts). */
  servers: { name: string; dc: string | null; shards: number; replicas: number; replicaLag?: ReplicaLag[] }[];
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
  /** Shard tables init created for a table a full copy had filled, not verified clean since (src/store/recreated-tables.ts). */
  recreatedShardTables?: RecreatedShardTables[];
  /** One summary per configured table, from the sections above (what `status` shows first). */
  perTable: TableStatus[];
  /**
   * What needs someone's attention, one sentence each (empty: everything is clean): the control
   * store unusable, a connector not running, dead letters, differences, chunks failed or left by a
   * stopped copy, rejected values, a lag over gray.gates.max_sync_lag_seconds, a gate failing for a
   * table with members on MySQL, shard tables init created empty after a copy and not verified since.
   * `status` exits 1 when there is any (design.md: 1 = problems found).
   */
  problems: string[];
}

/** One view of everything membermig knows, read from the config and the control store. */
export async function collectStatus(config: Config): Promise<Status> {
  const [{ fullJobs, grayGates, ...sections }, replicaLags] = await Promise.all([collectSections(config), readReplicaLags(config)]);
  sections.servers = sections.servers.map((s) => (replicaLags.has(s.name) ? { ...s, replicaLag: replicaLags.get(s.name)! } : s));
  const perTable = tableStatuses({ ...sections, jobs: [...sections.jobs, ...fullJobs] });
  return { ...sections, perTable, problems: statusProblems({ ...sections, perTable }, config, grayGates) };
}

/** A table with members on MySQL (reads, the allowlist, or a shim mode past legacy_only) and the gates that fail for it. */
export interface GrayGateFailure {
  table: string;
  failed: { gate: string; message: string }[];
}

/**
 * Everything status shows that the contract counts as a problem (exit 1): the rule, in one place.
 * A full copy that processes still work on is progress, not a problem; one left stopped is.
 */
export function statusProblems(s: Omit<Status, 'problems'>, config: Config, grayGates: GrayGateFailure[] = []): string[] {
  const c = s.control;
  if (!c.reachable) return [`control store ${c.database} is unreachable (${c.error})`];
  if (!c.exists) return [`control store ${c.database} is not initialised (run membermig init)`];
  if ((c.problems ?? []).length > 0) return [`control store ${c.database} cannot be used by this membermig: ${c.problems!.join('; ')}`];
  if (c.appliedVersion !== c.latestVersion) return [`control store ${c.database} is at schema ${c.appliedVersion ?? 'none'} of ${c.latestVersion} (run membermig init)`];
  const out: string[] = [];
  const sync = s.sync;
  const down = (sync?.connectors ?? []).filter((k) => k.problem !== null);
  for (const k of down) out.push(k.problem!);
  // Not asked now (no cdc.kafka.connect): the last thing recorded of a connector is that it was not running.
  const o = sync?.lastConnectorOutage;
  if (!sync?.connectors && o && o.endedAt === null) out.push(`connector ${o.connector} was seen not running at ${o.beganAt} (${o.problem}) and not seen running since`);
  if (sync?.kafka?.reachable) {
    for (const t of sync.kafka.missingTopics) out.push(`topic ${t} does not exist on the broker (cdc.kafka.topic)`);
    for (const g of sync.kafka.retentionGaps) out.push(`${g.topic}[${g.partition}]: consumer group ${sync.kafka.group} is at offset ${g.nextOffset}, the broker keeps from ${g.oldestKept}: changes were deleted by retention`);
  }
  if (sync && sync.deadLetters.open > 0) out.push(`${sync.deadLetters.open} open dead letters`);
  for (const p of sync?.parked ?? []) out.push(`${p.count} writes parked for shard server ${p.server}`);
  const maxLag = config.gray.gates.max_sync_lag_seconds;
  const lag = sync ? configuredLagSeconds(sync, config) : null;
  if (lag !== null && lag > maxLag) out.push(`sync lag ${lag.toFixed(1)} s is over gray.gates.max_sync_lag_seconds (${maxLag})`);
  for (const t of s.perTable) {
    const f = t.fullCopy;
    if (f) {
      if (f.chunksFailed > 0) out.push(`${t.table}: full copy job ${f.jobId} has ${f.chunksFailed} failed chunks`);
      const working = (f.state === 'planning' || f.state === 'running') && !f.stopped;
      if (f.state !== 'done' && !working) out.push(`${t.table}: full copy job ${f.jobId} is ${f.stopped ? 'stopped' : f.state} with ${f.chunksTotal - f.chunksDone} chunks not done (membermig full goes on)`);
      const rejected = s.fullCopy?.jobs.find((j) => j.id === f.jobId)?.rejectedValues ?? 0;
      if (rejected > 0) out.push(`${t.table}: full copy job ${f.jobId} rejected ${rejected} values`);
    }
    const v = t.lastVerify;
    if (v && (v.state === 'differences' || v.state === 'failed')) out.push(`${t.table}: last verify (run ${v.runId}) ${v.state === 'failed' ? 'failed' : `found ${v.differences - v.repaired} differences not repaired`}`);
    if (t.repairQueueOpen > 0) out.push(`${t.table}: ${t.repairQueueOpen} keys in the repair queue (verify --repair)`);
  }
  for (const r of s.recreatedShardTables ?? []) out.push(recreatedWarning(r));
  // A replica behind (or silent) serves stale reads, and holds a full copy's writes to its server back.
  const maxReplicaLag = config.copy.max_replica_lag_seconds;
  for (const lag of s.servers.flatMap((v) => v.replicaLag ?? []).filter((l) => !lagAllowsWrites(l, maxReplicaLag))) {
    out.push(`${lag.replica}: ${lag.seconds === null ? `replication lag unknown, ${lag.why}` : `${lag.seconds} s behind`} (copy.max_replica_lag_seconds: ${maxReplicaLag})`);
  }
  // Dead letters are said once above, whatever gray.gates.allow_dead_letters says.
  for (const g of grayGates) for (const f of g.failed.filter((x) => x.gate !== 'dead_letters')) out.push(`${g.table}: members are on MySQL but gate ${f.gate} fails: ${f.message}`);
  return out;
}

/**
 * The lag of the sync this config runs, as the sync_lag gate reads it: its consumer group's
 * partitions of its topics (and SQL Server capture instances). A group or topic left behind by an
 * older config keeps its last row, whose age grows for ever; it is shown, but not a problem.
 */
function configuredLagSeconds(sync: SyncStatus, config: Config): number | null {
  const kafka = config.cdc?.kafka;
  const topics = kafka ? [kafka.topic].flat() : [];
  const partitions = sync.partitions.filter((p) => kafka !== undefined && p.group === kafka.group && topics.includes(p.topic));
  const seconds = [...partitions, ...sync.captureInstances].map((p) => p.lagSeconds).filter((n): n is number => n !== null);
  return seconds.length > 0 ? Math.max(...seconds) : null;
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

async function collectSections(config: Config): Promise<Omit<Status, 'perTable' | 'problems'> & { fullJobs: JobStatus[]; grayGates: GrayGateFailure[] }> {
  const map = shardMapFromConfig(config);
  const base: Omit<Status, 'control' | 'jobs' | 'workers' | 'perTable' | 'problems'> = {
    servers: Object.entries(config.servers).map(([name, s]) => ({ name, dc: s.dc ?? null, shards: map.shardsOn(name).length, replicas: s.replicas.length })),
    shards: { count: config.shards.count, function: config.shards.function, database: config.shards.database },
    tables: Object.entries(config.tables).map(([name, t]) => ({ name, source: t.source, target: t.target, shardKey: t.shard_key })),
  };
  const store = openControlStore(config, 2);
  try {
    const schema = await controlSchemaStateOrMissing(store);
    if (!schema.exists) return { ...base, control: { database: store.database, reachable: true, ...schema }, jobs: [], workers: [], fullJobs: [], grayGates: [] };
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
    // A store not yet migrated to 150 has no such table: status still answers (and says to run init).
    const recreatedShardTables = await openRecreatedShardTables(store.pool).catch((e: { code?: string }) => {
      if (e.code === 'ER_NO_SUCH_TABLE') return undefined;
      throw e;
    });
    // A table with members on MySQL: the gates that let them move there must still hold (connectors as read above).
    const grayGates: GrayGateFailure[] = [];
    for (const t of gray.tables.filter((g) => g.mode !== 'legacy_only' || g.readBp > 0 || g.allow > 0)) {
      const failed = (await checkGates(store.pool, config, t.table, sync?.connectors)).filter((g) => !g.ok);
      if (failed.length > 0) grayGates.push({ table: t.table, failed: failed.map((g) => ({ gate: g.gate, message: g.message })) });
    }
    return { ...base, control: { database: store.database, reachable: true, ...schema }, jobs, workers, gray, verify, ...(sync ? { sync } : {}), fullCopy, leases, ...(recreatedShardTables ? { recreatedShardTables } : {}), fullJobs, grayGates };
  } catch (e) {
    return { ...base, control: { database: store.database, reachable: false, error: (e as Error).message }, jobs: [], workers: [], fullJobs: [], grayGates: [] };
  } finally {
    await store.close();
  }
}
