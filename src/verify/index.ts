import { createHash } from 'node:crypto';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { Config } from '../config/schema.js';
import { RefusedError } from '../errors.js';
import { parkedWritesOf } from '../cdc/parking.js';
import { isTransient, type RetryPolicy } from '../mysql/retry.js';
import { rowsQuery } from '../mysql/pool.js';
import { planShardTables, refuseMissingShardTables } from '../target/tables.js';
import type { Logger } from '../log.js';
import type { CanonicalHash } from '../rows/canonical.js';
import type { TableSpec } from '../rows/types.js';
import { shardMapFromConfig, type ShardMap } from '../shard/map.js';
import { createSourceReader, describeTables, MysqlSourceReader, type SourceReader } from '../source/index.js';
import { openControlStore, requireUsableStore, type ControlStore } from '../store/control.js';
import { chunkFailures, type Chunk, type ChunkFailure } from '../store/leases.js';
import { ChunkLedger, chunkFeed } from './chunk-ledger.js';
import { newWorkerId, startJobWorker } from '../store/workers.js';
import { ReplicaLagGate, writesWaitingForReplicas } from '../target/replica-lag.js';
import { createShardWriter, type ShardWriter } from '../target/writer.js';
import { compareRange, recheckKeys, type Candidate, type Difference, type DrillContext } from './drill.js';
import { ChangesInFlight } from './in-flight.js';
import { currentSyncLagSeconds } from './lag.js';
import { drainRepairQueue, legacyBehindKeys, planInGroups, repairDifferences, type PlannedRepair, type QueueOutcome } from './repair.js';
import {
  finishJobIfDone,
  markNotRepaired,
  markRepaired,
  openVerifyJob,
  readDifferences,
  readRuns,
  recordDifferences,
  forgetEarlierAttempt,
  type ChunkResult,
  type StoredDifference,
  type TableRun,
  type VerifyJob,
} from './runs.js';
import { planChunks, verifyChunkRows } from './plan.js';
import { MssqlLegacySide } from './mssql.js';
import { MysqlLegacySide, ShardSide, StreamingLegacySide, keyId, type LegacySide } from './sides.js';
import { MssqlReader } from '../source/mssql/reader.js';
import type { KeyRange, RowFilter } from './sql.js';

export type { Difference, DiffKind } from './drill.js';
export type { TableRun, StoredDifference } from './runs.js';

export interface VerifyOptions {
  logger: Logger;
  /** Logical table names (default: every configured table). */
  tables?: string[];
  /** Logical shards to check (default: all). */
  shards?: number[];
  /** Check about this percentage of the rows, in chunks chosen at random and weighed by their estimated rows (src/verify/plan.ts). */
  samplePercent?: number;
  /** Only rows whose updated_at column (tables.NAME.updated_at) is at or after this UTC time. */
  since?: string;
  /** --since as a duration: `since` is this many seconds before the control server's now (resolveSince). */
  sinceAgoSeconds?: number;
  /** Seconds to wait before re-checking a mismatch (default verify.recheck_after_seconds), plus the sync lag. */
  recheckAfterSeconds?: number;
  repair?: boolean;
  dryRun?: boolean;
  /** Continuous mode: a new pass this many seconds after the last one ended, until `signal` aborts. */
  watchSeconds?: number;
  /** Stops the run: no new chunk is taken, those in hand are finished and recorded, the rest left for a rerun. */
  signal?: AbortSignal;
  /** Chunks checked at once by this process (default verify.workers). */
  workers?: number;
  chunkRows?: number;
  hash?: CanonicalHash;
  /** Drill-down compares ranges of at most this many rows row by row (default 512); smaller splits more. */
  leafRows?: number;
  /** Abandon a running (or killed) job of this scope and check everything again, rather than join it. */
  restart?: boolean;
  /** Called after each pass (watch mode reports progress with it). */
  onPass?: (result: VerifyResult) => void;
  /** How many differences the result lists (all are in the control store). */
  listDifferences?: number;
  /** How long one re-check waits for sync to apply what Kafka held (default IN_FLIGHT_WAIT_MS; tests). */
  inFlightWaitMs?: number;
}

export interface VerifyResult {
  /** stopped: a stop request ended the pass before every chunk was checked (a rerun goes on with the rest). */
  state: 'clean' | 'differences' | 'failed' | 'stopped';
  passes: number;
  hash: CanonicalHash;
  jobId: number;
  /** The job was started by an earlier process (killed or stopped) and this one finished it: counts and seconds include that one's work. */
  joined: boolean;
  tables: TableRun[];
  /** The first differences of the last pass (with repair actions when repaired). */
  differences: StoredDifference[];
  /** --dry-run: what --repair would do. */
  plannedRepairs: (PlannedRepair & { table: string })[];
  repairQueue: QueueOutcome[];
  /** Why chunks failed (state failed), per table and error: a shard server down, a query refused. */
  failures: ChunkFailure[];
}

/** Ranges up to this many rows are compared row by row at once; bigger ones are split first. */
const LEAF_ROWS = 1024;
const FANOUT = 16;
const MAX_ATTEMPTS = 3;
const RETRY_BACKOFF_MS = 250;
/** Chunks completing or waiting for their re-check, per process. */
const MAX_PENDING = 64;

/** Everything one table's checks need, built once per run. */
interface TableContext extends DrillContext {
  runId: number;
  /** What sync has still to apply from Kafka (null without a Kafka change source). */
  inFlight: ChangesInFlight | null;
}

/** Validates flags against the config before anything connects. */
export function checkVerifyOptions(config: Config, options: VerifyOptions): string[] {
  const tables = options.tables ?? Object.keys(config.tables);
  for (const t of tables) if (!config.tables[t]) throw new RefusedError(`--tables: ${t} is not in the config (tables: ${Object.keys(config.tables).join(', ')})`);
  if (options.shards) {
    for (const s of options.shards) {
      if (!Number.isInteger(s) || s < 0 || s >= config.shards.count) throw new RefusedError(`--shards: ${s} is outside 0..${config.shards.count - 1}`);
    }
    if (config.shards.function === 'murmur3') throw new RefusedError('--shards needs a shard function with an SQL form (mod, crc32); this config uses murmur3');
  }
  if (options.since !== undefined || options.sinceAgoSeconds !== undefined) {
    for (const t of tables) {
      if (!config.tables[t]!.updated_at) throw new RefusedError(`--since: table ${t} has no updated_at column configured (tables.${t}.updated_at)`);
    }
  }
  if (options.workers !== undefined && !(Number.isInteger(options.workers) && options.workers >= 1)) throw new RefusedError(`--workers: expected a positive integer, got ${options.workers}`);
  if (options.samplePercent !== undefined && !(options.samplePercent > 0 && options.samplePercent <= 100)) {
    throw new RefusedError(`--sample: expected a percentage in (0, 100], got ${options.samplePercent}`);
  }
  if (options.dryRun && !options.repair) throw new RefusedError('--dry-run only makes sense with --repair');
  return tables;
}

/**
 * A --since duration as a time, counted back from the control server's clock: the one clock
 * membermig takes times by, where this host's may be minutes off. Once per run (--watch too).
 */
async function resolveSince(store: ControlStore, options: VerifyOptions): Promise<VerifyOptions> {
  if (options.sinceAgoSeconds === undefined) return options;
  const [rows] = await store.pool.query<RowDataPacket[]>("SELECT DATE_FORMAT(NOW(6) - INTERVAL ? MICROSECOND, '%Y-%m-%d %H:%i:%s.%f') AS at", [
    Math.round(options.sinceAgoSeconds * 1e6),
  ]);
  return { ...options, since: String(rows[0]!.at) };
}

/** The hash both sides can compute: CRC32 between MySQL servers (or md5 if configured), MD5 when SQL Server is involved. */
export function chooseHash(config: Config): CanonicalHash {
  if (config.source.kind === 'mssql') {
    if (config.verify.hash === 'crc32') throw new RefusedError('verify.hash: crc32 cannot be computed by SQL Server (no CRC32 in T-SQL); use auto or md5');
    return 'md5';
  }
  return config.verify.hash === 'auto' ? 'crc32' : config.verify.hash;
}

/**
 * membermig verify: compares the legacy side and the shards chunk by chunk, drills down to the
 * differing rows, re-checks them after the sync lag, optionally repairs them, and records the
 * run in the control store. In watch mode it repeats until the signal aborts.
 */
export async function runVerify(config: Config, options: VerifyOptions): Promise<VerifyResult> {
  const tables = checkVerifyOptions(config, options);
  const log = options.logger;
  const map = shardMapFromConfig(config);
  const hash = options.hash ?? chooseHash(config);
  const store = openControlStore(config, (options.workers ?? config.verify.workers) + 3);
  const reader = createSourceReader(config, log);
  const shardWriter = createShardWriter(config);
  // Repairs write rows as a copy does: while a replica of the server lags, they wait (src/target/replica-lag.ts).
  const repairing = options.repair === true && !options.dryRun;
  const replicaLag = repairing ? new ReplicaLagGate(config, config.copy.max_replica_lag_seconds, log) : undefined;
  const writer = replicaLag ? writesWaitingForReplicas(shardWriter, replicaLag, () => options.signal?.aborted === true) : shardWriter;
  const inFlight = ChangesInFlight.fromConfig(config, { tables, reader, control: store.pool }, log, options.inFlightWaitMs);
  try {
    await requireUsableStore(store, config.shards);
    options = await resolveSince(store, options);
    const started = performance.now();
    const specs = await describeTables(reader, config, tables);
    log.debug({ ms: Math.round(performance.now() - started) }, 'tables described');
    // A missing shard table is refused as full refuses it (each of its chunks would fail otherwise, and be retried).
    // Repairs write by primary key: for them, one of another shape or with another unique index is refused too.
    // A server that refuses us is reported per chunk (quickly), but one that accepts connections and never answers
    // (hung, kill -STOP) ends the run here: every chunk compares with every server, and each would wait it out.
    const tolerate = (e: Error) => (e as { code?: string }).code !== 'ETIMEDOUT' && (!repairing || isTransient(e));
    refuseMissingShardTables(await planShardTables(config, map, specs, { tolerateUnreachable: tolerate, refuseShape: repairing }));
    await replicaLag?.refuseReplicasThatCannotTell();
    const shards = options.shards ?? Array.from({ length: map.count }, (_, i) => i);
    const contexts = specs.map((spec) => tableContext(config, options, spec, map, reader, writer, hash, shards));
    const run: VerifyRun = { config, store, reader, writer, hash, specs, contexts, inFlight };

    let passes = 0;
    let result: VerifyResult;
    let lastComplete: VerifyResult | undefined;
    for (;;) {
      passes++;
      const repairQueue: QueueOutcome[] = [];
      if (options.repair) for (const ctx of contexts) repairQueue.push(await drainQueue(store.pool, ctx, writer, options));
      // --restart abandons a job only before the first pass; later passes plan their own anyway.
      const passOptions = { ...options, restart: options.restart === true && passes === 1 };
      inFlight?.beginPass();
      result = { ...(await runPass(run, passOptions)), passes, repairQueue };
      log.info({ pass: passes, state: result.state, tables: result.tables.map((t) => `${t.table}:${t.state}`) }, 'verify pass done');
      // Watch mode ends with a stop request: one that cuts a pass short reports the last whole pass.
      if (result.state === 'stopped') return lastComplete ? { ...lastComplete, passes } : result;
      options.onPass?.(result);
      lastComplete = result;
      if (options.watchSeconds === undefined || options.signal?.aborted) break;
      if (!(await sleep(options.watchSeconds * 1000, options.signal))) break;
    }
    return result;
  } finally {
    await Promise.allSettled([reader.close(), writer.close(), store.close(), inFlight?.close(), replicaLag?.close()]);
  }
}

/**
 * repair_queue entries are read from the legacy side by key, which only the MySQL legacy side
 * can do without a scan; other sources leave them open (and say so).
 */
async function drainQueue(pool: Pool, ctx: DrillContext, writer: ShardWriter, options: VerifyOptions): Promise<QueueOutcome> {
  const why = !ctx.legacy.readsByKey ? 'this legacy source cannot read rows by key yet' : (await parkedWritesOf(pool, ctx.spec.name)) > 0 ? PARKED_FIRST : null;
  if (why) {
    const [rows] = await pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM repair_queue WHERE table_name = ? AND resolved_at IS NULL', [ctx.spec.name]);
    const open = Number(rows[0]!.n);
    if (open > 0) options.logger.warn({ table: ctx.spec.name, open }, `repair_queue: ${why}; entries left open`);
    return { table: ctx.spec.name, entries: open, resolved: 0, left: open, legacyBehind: 0, unrepresentable: 0, malformed: 0, problems: [] };
  }
  const outcome = await drainRepairQueue(pool, ctx, writer, options.dryRun === true);
  if (outcome.malformed > 0) options.logger.warn({ table: ctx.spec.name, malformed: outcome.malformed, problems: outcome.problems }, 'repair_queue: entries whose pk does not name the key are left open');
  return outcome;
}

/** Checksums pushed down where the legacy database can compute the canonical hash, else hashed in Node. */
function legacySide(reader: SourceReader, spec: TableSpec, hash: CanonicalHash, map: ShardMap, statementTimeoutMs: number): LegacySide {
  if (reader instanceof MysqlSourceReader) return new MysqlLegacySide(reader, spec, hash, map, statementTimeoutMs);
  if (reader instanceof MssqlReader && hash === 'md5') return new MssqlLegacySide(reader, spec, map);
  return new StreamingLegacySide(reader, spec, hash, map);
}

function tableContext(
  config: Config,
  options: VerifyOptions,
  spec: TableSpec,
  map: ShardMap,
  reader: SourceReader,
  writer: ShardWriter,
  hash: CanonicalHash,
  shards: number[],
): DrillContext {
  const statementTimeoutMs = config.verify.statement_timeout_seconds * 1000;
  const legacy = legacySide(reader, spec, hash, map, statementTimeoutMs);
  const filter: RowFilter = {};
  const updatedAt = config.tables[spec.name]!.updated_at;
  if (options.since !== undefined && updatedAt) {
    const column = spec.columns.find((c) => c.source === updatedAt);
    // A time compared with a number: MySQL takes '2026-…' as 2026 and keeps every row, Node's text order drops them all.
    if (column && NUMERIC_TYPE.test(column.targetType)) {
      throw new RefusedError(`--since: tables.${spec.name}.updated_at (${updatedAt}) is a number (${column.targetType}), not a time: --since cannot select rows by it`);
    }
    filter.since = { legacyColumn: updatedAt, shardColumn: column?.target ?? updatedAt, value: options.since };
  }
  if (options.shards) filter.shards = { expression: (c) => map.sqlShardExpression(c)!, list: options.shards };
  return { spec, hash, map, legacy, shards: new ShardSide((s) => rowsQuery(writer.poolOf(s), statementTimeoutMs), spec, hash, map, shards), filter, leafRows: options.leafRows ?? LEAF_ROWS, fanout: FANOUT };
}

const NUMERIC_TYPE = /^(tinyint|smallint|mediumint|int|integer|bigint|decimal|numeric|float|double|real|bit|year)\b/i;

/** What every pass of one verify run shares. */
interface VerifyRun {
  config: Config;
  store: ControlStore;
  reader: SourceReader;
  writer: ShardWriter;
  hash: CanonicalHash;
  specs: TableSpec[];
  contexts: DrillContext[];
  inFlight: ChangesInFlight | null;
}

async function runPass(run: VerifyRun, options: VerifyOptions): Promise<Omit<VerifyResult, 'passes' | 'repairQueue'>> {
  const { config, store, reader, writer, hash, specs, contexts, inFlight } = run;
  const log = options.logger;
  const chunkRows = options.chunkRows ?? verifyChunkRows(config);
  const scope = {
    shards: options.shards ?? 'all',
    sample: options.samplePercent ?? null,
    since: options.since ?? null,
    hash,
    repair: options.repair ? (options.dryRun ? 'dry-run' : 'yes') : 'no',
  };
  const jobName = verifyJobName(specs.map((s) => s.name), scope);
  const started = performance.now();
  const job = await openVerifyJob(store.pool, jobName, { scope }, async () => {
    const planned = [];
    for (const ctx of contexts) planned.push({ table: ctx.spec.name, scope, chunks: await planChunks(reader, ctx.legacy, ctx.spec, chunkRows, options.samplePercent) });
    return planned;
  }, options.restart === true);
  log.info({ job: job.jobId, joined: !job.created, ms: Math.round(performance.now() - started) }, job.created ? 'verify job planned' : 'joined a running verify job');
  const byTable = new Map(contexts.map((c) => [c.spec.name, { ...c, runId: job.runIds[c.spec.name]!, inFlight }]));
  const { planned, unanswered } = await workJob(config, options, store.pool, job, byTable, writer);
  log.debug({ ms: Math.round(performance.now() - started) }, unanswered.length > 0 ? 'pass ended: a server did not answer' : 'chunks done, job finished');

  const runs = await readRuns(store.pool, job.jobId, job.runIds);
  const differences = await readDifferences(store.pool, Object.values(job.runIds), options.listDifferences ?? 50);
  // Only a stop request, or a server that stopped answering, leaves the job unfinished.
  const stopped = runs.some((r) => r.state === 'running');
  const failed = runs.some((r) => r.state === 'failed') || unanswered.length > 0;
  const state = failed ? 'failed' : stopped ? 'stopped' : runs.some((r) => r.state !== 'clean') ? 'differences' : 'clean';
  const failures = state === 'failed' ? [...unanswered, ...(await chunkFailures(store.pool, job.jobId))] : [];
  return { state, hash, jobId: job.jobId, joined: !job.created, tables: runs, differences, plannedRepairs: planned, failures };
}

/**
 * Claims and checks chunks until none is left, with `workers` chunks in flight; a chunk with
 * suspects is completed only after its re-check (and repair), which runs beside later chunks.
 */
async function workJob(
  config: Config,
  options: VerifyOptions,
  pool: Pool,
  job: VerifyJob,
  tables: Map<string, TableContext>,
  writer: ShardWriter,
): Promise<{ planned: (PlannedRepair & { table: string })[]; unanswered: ChunkFailure[] }> {
  const log = options.logger;
  const worker = newWorkerId();
  const leaseSeconds = config.copy.lease_seconds;
  const workers = options.workers ?? config.verify.workers;
  const recheckAfter = options.recheckAfterSeconds ?? config.verify.recheck_after_seconds;
  const planned: (PlannedRepair & { table: string })[] = [];
  const pending = new Set<Promise<void>>();
  // A server that stopped answering (hung, kill -STOP) ends the pass: every chunk compares with
  // every server, so each would wait out its timeout in turn. Its chunks go back to pending.
  const unanswered = new Map<string, ChunkFailure>();
  const ending = () => options.signal?.aborted === true || unanswered.size > 0;

  const retry: RetryPolicy = { retries: config.copy.retries, baseMs: config.copy.retry_base_ms };
  const ledger = new ChunkLedger({ pool, jobId: job.jobId, workerId: worker, leaseSeconds, retry, logger: log });
  const member = await startJobWorker(pool, { id: worker, jobId: job.jobId, command: 'verify', leaseSeconds, logger: log, held: () => [...ledger.held.values()] });
  const feed = chunkFeed(() => ledger.claim(), workers);

  const finishChunk = async (chunk: Chunk, ctx: TableContext, work: () => Promise<ChunkResult>) => {
    let result: ChunkResult;
    try {
      result = await work();
    } catch (e) {
      const message = (e as Error).message ?? String(e);
      if (e instanceof StoppedBeforeRecheck) return ledger.giveBack(chunk, 'verify was stopped before its re-check');
      if (isStatementTimeout(e)) {
        const error = `${message}: the pass ended, its chunks are left for the next run (verify.statement_timeout_seconds)`;
        unanswered.set(error, { table: ctx.spec.name, chunks: (unanswered.get(error)?.chunks ?? 0) + 1, error });
        log.warn({ err: message, table: ctx.spec.name, chunk: chunk.chunkNo }, 'a server did not answer: ending the pass');
        return ledger.giveBack(chunk, message);
      }
      const giveUp = chunk.attempts >= MAX_ATTEMPTS;
      log.warn({ err: message, table: ctx.spec.name, chunk: chunk.chunkNo, attempt: chunk.attempts }, giveUp ? 'chunk failed' : 'chunk failed; will retry');
      if (!giveUp) await sleep(RETRY_BACKOFF_MS * chunk.attempts, options.signal);
      return ledger.giveBack(chunk, message, giveUp ? 'failed' : 'pending');
    }
    await ledger.checked(chunk, result);
  };

  /** Runs chunk follow-up work (completion, re-check) beside the next chunks, at most MAX_PENDING at once. */
  const inBackground = async (work: Promise<void>) => {
    const p = work.finally(() => pending.delete(p));
    pending.add(p);
    while (pending.size >= MAX_PENDING) await Promise.race(pending);
  };

  const slot = async () => {
    for (;;) {
      const chunk = ending() ? null : await feed.next();
      if (!chunk) {
        await ledger.record();
        if (pending.size === 0) return;
        await Promise.race(pending);
        continue;
      }
      const ctx = tables.get(chunk.tableName)!;
      const range: KeyRange = { lower: chunk.lowerKey, upper: chunk.upperKey };
      let compared;
      try {
        if (chunk.attempts > 1) await forgetEarlierAttempt(pool, ctx.runId, chunk.chunkNo);
        compared = await compareRange(ctx, range);
      } catch (e) {
        await finishChunk(chunk, ctx, () => Promise.reject(e));
        continue;
      }
      const base = { legacyRows: compared.legacy.count, targetRows: compared.target.count, differences: 0, repaired: 0 };
      if (compared.candidates.length === 0) {
        await inBackground(finishChunk(chunk, ctx, async () => base));
        continue;
      }
      log.info({ table: ctx.spec.name, chunk: chunk.chunkNo, suspects: compared.candidates.length }, 'mismatch: re-checking after the delay');
      await inBackground(
        finishChunk(chunk, ctx, async () => {
          const persistent = await recheckUntilSteady(pool, ctx, compared.candidates, { recheckAfter, syncGroup: config.cdc?.kafka?.group }, options.signal);
          return { ...base, ...(await settleDifferences(pool, options, ctx, writer, persistent, { range, chunkNo: chunk.chunkNo }, planned)) };
        }),
      );
    }
  };

  try {
    // Until the job ends: work what can be claimed; chunks leased by other verifiers are waited
    // for, and taken over if their lease expires (that verifier died).
    for (;;) {
      await Promise.all(Array.from({ length: workers }, slot));
      await Promise.all(pending);
      await ledger.record();
      if ((await finishJobIfDone(pool, job)) || ending()) break;
      await sleep(500, options.signal);
    }
    // Stopped: chunks claimed but not started go back at once, rather than waiting out their lease.
    const why = unanswered.size > 0 ? 'the pass ended before checking it (a server did not answer)' : 'verify was stopped before checking it';
    for (const chunk of await feed.drain()) await ledger.giveBack(chunk, why);
  } finally {
    await member.stop();
  }
  return { planned, unanswered: [...unanswered.values()] };
}

/**
 * A statement a server did not answer in time (src/mysql/pool.ts rowsQuery; the mssql driver's
 * requestTimeout: ETIMEOUT), or a connection it never accepted.
 */
function isStatementTimeout(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === 'PROTOCOL_SEQUENCE_TIMEOUT' || code === 'ETIMEDOUT' || code === 'ETIMEOUT';
}

/**
 * The job a verifier joins: the same tables and scope, whatever their length. The name column
 * holds 191 characters; cut there, a long --shards list lost the rest of the scope, and a plain
 * verify joined a killed --sample one and finished it as its own. A name too long for the column
 * ends in a digest of the whole instead.
 */
export function verifyJobName(tables: string[], scope: object): string {
  const name = `${tables.join(',')}|${JSON.stringify(scope)}`;
  if (name.length <= JOB_NAME_MAX) return name;
  return `${name.slice(0, JOB_NAME_MAX - 41)}|${createHash('sha1').update(name).digest('hex')}`;
}

const JOB_NAME_MAX = 191;

/**
 * Sync parks a table's writes for a shard server that cannot take them, and replays them, in log
 * order, once it can: a repair written before would be overwritten by their older rows. Repairs of
 * the table wait until none is parked.
 */
const PARKED_FIRST = 'sync has writes of this table parked for a shard server that could not take them; they land first, then run verify --repair again';

const MAX_RECHECKS = 3;

/** A stop request came while a chunk waited for its re-check: the chunk is left for the next run. */
class StoppedBeforeRecheck extends Error {}

/**
 * Looks at suspects again after the delay plus the sync lag, and once sync has applied what the
 * change topics held when they were seen (ChangesInFlight). A difference is persistent when it
 * is seen the same way (kind, shard and the rows themselves) at two re-checks in a row; one that
 * changed is still moving and is looked at again, up to MAX_RECHECKS times (then reported as last
 * seen). The first look (checksums) read no rows, so it never counts as one of the two.
 */

async function recheckUntilSteady(
  pool: Pool,
  ctx: TableContext,
  candidates: Candidate[],
  wait: { recheckAfter: number; syncGroup: string | undefined },
  signal?: AbortSignal,
): Promise<Difference[]> {
  // Kind, shard and the rows themselves: a row that changed again between two looks is still moving.
  const signature = (d: Difference) => `${keyId(d.key)}|${d.kind}|${d.shard}|${d.seen ?? ''}`;
  let suspects = candidates;
  const steady: Difference[] = [];
  for (let round = 1; suspects.length > 0; round++) {
    const ends = await ctx.inFlight?.ends();
    if (!(await sleep((wait.recheckAfter + (await currentSyncLagSeconds(pool, wait.syncGroup))) * 1000, signal))) throw new StoppedBeforeRecheck();
    await ctx.inFlight?.waitApplied(ends ?? null);
    const seen = await recheckKeys(ctx, suspects);
    if (round === MAX_RECHECKS) return [...steady, ...seen];
    const before = new Set(suspects.map(signature));
    const within = new Map(suspects.map((c) => [keyId(c.key), c.within]));
    steady.push(...seen.filter((d) => before.has(signature(d))));
    suspects = seen.filter((d) => !before.has(signature(d))).map((d) => ({ ...d, within: within.get(keyId(d.key))! }));
  }
  return steady;
}

/** Records persistent differences; with --repair, repairs and re-verifies them (or plans it, --dry-run). */
async function settleDifferences(
  pool: Pool,
  options: VerifyOptions,
  ctx: TableContext,
  writer: ShardWriter,
  diffs: Difference[],
  chunk: { range: KeyRange; chunkNo: number },
  planned: (PlannedRepair & { table: string })[],
): Promise<{ differences: number; repaired: number }> {
  if (diffs.length === 0) return { differences: 0, repaired: 0 };
  const within = chunk.range;
  const ids = await recordDifferences(pool, ctx.runId, ctx.spec.name, chunk.chunkNo, diffs);
  options.logger.warn({ table: ctx.spec.name, differences: diffs.length }, 'persistent differences');
  if (!options.repair) return { differences: diffs.length, repaired: 0 };
  const parked = (await parkedWritesOf(pool, ctx.spec.name)) > 0;
  const held = parked ? new Set(diffs.map((d) => keyId(d.key))) : await legacyBehindKeys(pool, ctx.spec);
  if (options.dryRun) {
    planned.push(...(await planInGroups(ctx, diffs, within, held)).map((p) => ({ ...p, table: ctx.spec.name })));
    return { differences: diffs.length, repaired: 0 };
  }
  const outcome = await repairDifferences(ctx, writer, diffs, within, held);
  const holding = outcome.planned.filter((p) => p.action === 'hold');
  if (holding.length > 0) {
    const why = parked ? PARKED_FIRST : 'legacy is behind MySQL for these keys (a shim write to legacy failed)';
    options.logger.warn({ table: ctx.spec.name, keys: holding.length }, `not repaired: ${why}`);
  }
  const keeping = outcome.planned.filter((p) => p.action === 'keep');
  if (keeping.length > 0) options.logger.warn({ table: ctx.spec.name, keys: keeping.length }, 'not repaired: the legacy rows hold values the target cannot hold (see verify_diffs.reason); their copies are kept');
  const verified = new Set(outcome.verified.map((p) => `${keyId(p.key)}|${p.kind}|${p.shard}`));
  let repaired = 0;
  for (let i = 0; i < diffs.length; i++) {
    const d = diffs[i]!;
    const p = outcome.planned[i]!;
    if (p.action === 'hold' || p.action === 'keep') await markNotRepaired(pool, ids[i]!, p.action);
    else if (verified.has(`${keyId(d.key)}|${d.kind}|${d.shard}`)) {
      await markRepaired(pool, ids[i]!, p.action);
      repaired++;
    }
  }
  return { differences: diffs.length, repaired };
}

/** Resolves true after `ms`, or false as soon as the signal aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export type { Candidate };
