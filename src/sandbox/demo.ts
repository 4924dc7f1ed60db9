import { Readable } from 'node:stream';
import type { Admin } from 'kafkajs';
import { withKafkaAdmin } from '../cdc/kafka-admin.js';
import type { Config } from '../config/schema.js';
import { runFullCopy, type FullCopyResult } from '../copy/index.js';
import { isCaughtUp } from '../cdc/kafka-progress.js';
import { runSync, type SyncResult } from '../cdc/sync.js';
import { setGray, setShimMode, type ChangeResult } from '../gray/operations.js';
import type { GraySetting, ShimSetting } from '../gray/route.js';
import { runInit, type InitResult } from '../init/index.js';
import { silentLogger, type Logger } from '../log.js';
import { connectMysql, quoteId } from '../mysql/connect.js';
import { shardMapFromConfig } from '../shard/map.js';
import { controlDatabase, openControlStore } from '../store/control.js';
import { collectStatus, type Status } from '../store/status.js';
import { runVerify, type VerifyResult } from '../verify/index.js';
import { MEMBER_BENCH_DDL, memberLine } from './members.js';
import { startMemberWriter, type MemberWriter, type WriterStats } from './writer.js';

/**
 * The whole cutover on one config, by the core functions the commands call: seed the legacy
 * `member` table, then init → the writer's changes reach Kafka → full (while the writer keeps changing
 * members) → sync until caught up → sync keeps running → verify → shim dual_legacy_primary → gray 1% → 10% → 50% → 100% with a
 * verify before each raise (the gates are checked for real) → writer stops, sync catches up →
 * final verify → status. The writer keeps running through the gray steps, as the business would.
 */
export interface DemoOptions {
  rows: number;
  logger?: Logger;
  /** Drop the control store, the shard databases and the consumer group first (a rerun starts clean). */
  fresh?: boolean;
  /** The writer's changes per second during full and the rest of the cutover. */
  writesPerSecond?: number;
  grayPercents?: number[];
  /** Called as each step ends (the CLI prints it then). */
  onStep?: (step: DemoStep) => void;
}

interface StepBase {
  /** What an operator would have typed. */
  command: string;
  title: string;
  seconds: number;
  ok: boolean;
  error?: string;
}

/** What each kind of step returns: the same result object its command prints. */
export interface DemoStepResults {
  seed: SeedResult;
  init: InitResult;
  capture: CaptureResult;
  full: FullCopyResult & { writer: WriterStats };
  sync: SyncResult;
  verify: VerifyResult;
  shim: ChangeResult<ShimSetting>;
  gray: ChangeResult<GraySetting>;
  writer: WriterStats;
  status: Status;
  failed: null;
}

export type DemoStep = { [K in keyof DemoStepResults]: StepBase & { kind: K; result: DemoStepResults[K] } }[keyof DemoStepResults];

export interface SeedResult {
  table: string;
  rows: number;
  /** Seeded without the binlog: rows from before the capture started are full's job, not sync's. */
  captured: false;
}

/** Change capture is live: Debezium streams the writer's changes into the topics. */
export interface CaptureResult {
  topics: string[];
  /** The topics' messages before the writer began, and once its changes arrived. */
  messagesBefore: number;
  messagesNow: number;
}

export interface DemoResult {
  ok: boolean;
  rows: number;
  seconds: number;
  steps: DemoStep[];
  status: Status | null;
}

const TABLE = 'member';
const OPERATOR = 'membermig-demo';

export async function runDemo(config: Config, options: DemoOptions): Promise<DemoResult> {
  const logger = options.logger ?? silentLogger;
  const started = Date.now();
  const steps: DemoStep[] = [];
  const table = config.tables[TABLE];
  if (!table) throw new Error(`the demo needs a table named ${TABLE} in the config`);
  if (!config.cdc?.kafka) throw new Error('the demo needs cdc.kafka in the config (membermig sandbox up without --no-kafka)');
  const kafka = config.cdc.kafka;
  const rate = options.writesPerSecond ?? 40;

  const step = async <K extends keyof DemoStepResults>(
    kind: K,
    command: string,
    title: string,
    work: () => Promise<DemoStepResults[K]>,
    isOk: (r: DemoStepResults[K]) => boolean,
  ): Promise<DemoStepResults[K]> => {
    const t0 = Date.now();
    try {
      const result = await work();
      const s = { kind, command, title, seconds: (Date.now() - t0) / 1000, ok: isOk(result), result } as DemoStep;
      steps.push(s);
      options.onStep?.(s);
      if (!s.ok) throw new StepFailed(title);
      return result;
    } catch (e) {
      if (e instanceof StepFailed) throw e;
      const s: DemoStep = { kind: 'failed', command, title, seconds: (Date.now() - t0) / 1000, ok: false, error: (e as Error).message, result: null };
      steps.push(s);
      options.onStep?.(s);
      throw new StepFailed(title);
    }
  };

  let writer: MemberWriter | undefined;
  let background: BackgroundSync | undefined;
  let status: Status | null = null;
  let ok = false;
  try {
    if (options.fresh) await resetDemo(config, logger);
    await step('seed', `(seed ${options.rows} members into ${table.source})`, `seed ${options.rows} members into the legacy database`, () => seedMembers(config, table.source, options.rows), () => true);
    await step('init', 'membermig init', 'prepare: control store, shard databases and tables', () => runInit(config, { logger }), (r) => r.ok);

    const topics = topicsOf(kafka.topic);
    const messagesBefore = await withKafkaAdmin({ clientId: 'membermig-demo', brokers: kafka.brokers }, (admin) => topicMessages(admin, topics));
    writer = await startMemberWriter({ url: config.source.url, table: table.source, seededRows: options.rows, perSecond: rate, logger });
    const w = writer;
    // Full copies rows; the changes made meanwhile reach the shards through sync only if capture
    // already streams them. A connector that is still starting would deliver them late, after
    // sync has called itself caught up and verify has looked.
    await step('capture', '(wait for the writer\'s changes in Kafka)', 'change capture is live: the writer\'s changes reach Kafka', () => waitForCapture(kafka.brokers, topics, messagesBefore), () => true);
    await step('full', 'membermig full', `full copy while members keep changing (${rate} changes/s)`, async () => ({ ...(await runFullCopy(config, { logger })), writer: w.stats() }), (r) => r.state === 'done' && r.rejectedValues === 0 && r.errors.length === 0);
    await step('sync', 'membermig sync --until-caught-up', 'apply the changes made during the copy', () => runSync(config, { logger, untilCaughtUp: true }), (r) => r.deadLetters.open === 0);
    background = startBackgroundSync(config, logger);

    const verify = (title: string) => step('verify', 'membermig verify', title, () => runVerify(config, { logger }), (r) => r.state === 'clean');
    const change = { operator: OPERATOR, reason: 'membermig sandbox demo' };
    // A sync that is still joining its group applies nothing yet and reports no lag: verify would
    // take the changes it has not applied for differences.
    await step('verify', 'membermig verify', 'verify legacy against the shards (sync running, members changing)', async () => {
      await background!.consuming();
      return runVerify(config, { logger });
    }, (r) => r.state === 'clean');
    await step('shim', `membermig shim set ${TABLE} dual_legacy_primary`, 'services write both sides, legacy primary', () => withStore(config, (store) => setShimMode(store, config, TABLE, 'dual_legacy_primary', change)), (r) => r.after.mode === 'dual_legacy_primary');
    const percents = options.grayPercents ?? [1, 10, 50, 100];
    for (const [i, p] of percents.entries()) {
      if (i > 0) await verify(`verify before raising gray past ${percents[i - 1]}%`);
      await step('gray', `membermig gray set ${TABLE} --read ${p}% --write ${p}%`, `gray release: ${p}% of members read and write MySQL`, () => withStore(config, (store) => setGray(store, config, TABLE, { read: p * 100, write: p * 100 }, change)), (r) => r.after.read_bp === p * 100);
    }

    await step('writer', '(stop the writer)', 'members stop changing', () => writer!.stop(), (r) => r.errors === 0);
    writer = undefined;
    await step('sync', 'membermig sync (running since the first catch-up)', 'sync catches up with the last changes, then stops', async () => {
      const b = background!;
      await waitForCaptureIdle(kafka.brokers, topics);
      await waitCaughtUp(kafka.brokers, kafka.group, topics, () => b.failure());
      background = undefined;
      return b.stop();
    }, (r) => r.deadLetters.open === 0);
    await verify('final verify: every row in its shard, equal to the legacy row');
    status = await step('status', 'membermig status', 'where everything stands', () => collectStatus(config), (s) => s.control.reachable);
    ok = true;
  } catch (e) {
    if (!(e instanceof StepFailed)) throw e;
  } finally {
    await writer?.stop().catch(() => {});
    await background?.stop().catch(() => {});
  }
  // After a failed step the status still shows where things stand (best effort: the store may be what failed).
  status ??= await collectStatus(config).catch(() => null);
  return { ok: ok && steps.every((s) => s.ok), rows: options.rows, seconds: (Date.now() - started) / 1000, steps, status };
}

class StepFailed extends Error {}

const topicsOf = (t: string | string[]): string[] => (Array.isArray(t) ? t : [t]);

async function withStore<T>(config: Config, work: (store: ReturnType<typeof openControlStore>) => Promise<T>): Promise<T> {
  const store = openControlStore(config, 2);
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

interface BackgroundSync {
  /** Why it stopped on its own, if it did. */
  failure(): Error | undefined;
  /** Resolves once it has committed a batch: it has joined its group and applies changes. */
  consuming(timeoutMs?: number): Promise<void>;
  stop(): Promise<SyncResult>;
}

/** `membermig sync` as the service it is in production: runs until stopped. */
function startBackgroundSync(config: Config, logger: Logger): BackgroundSync {
  const abort = new AbortController();
  let failed: Error | undefined;
  let committed = false;
  const running = runSync(config, { logger, signal: abort.signal, onBatchCommitted: () => (committed = true) });
  running.catch((e: Error) => (failed = e)); // reported when stopped, and while waiting for it
  return {
    failure: () => failed,
    consuming: async (timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!committed) {
        if (failed) throw new Error(`sync stopped: ${failed.message}`);
        if (Date.now() > deadline) throw new Error(`sync applied no change within ${timeoutMs / 1000} s of starting`);
        await sleep(100);
      }
    },
    stop: async () => {
      abort.abort();
      return running;
    },
  };
}

/**
 * Creates the legacy table afresh and fills it with LOAD DATA, outside the binlog: these rows
 * stand for the data that existed before change capture began, which `full` copies. The CREATE
 * TABLE is logged, so Debezium knows the table's shape for the changes that follow.
 */
export async function seedMembers(config: Config, source: string, rows: number): Promise<SeedResult> {
  const conn = await connectMysql(config.source.url, { multipleStatements: false });
  const [db, name] = source.split('.') as [string, string];
  try {
    await conn.query(`CREATE DATABASE IF NOT EXISTS ${quoteId(db)} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
    await conn.query(`USE ${quoteId(db)}`);
    await conn.query(`DROP TABLE IF EXISTS ${quoteId(name)}`);
    await conn.query(MEMBER_BENCH_DDL.replace('CREATE TABLE member', `CREATE TABLE ${quoteId(name)}`));
    await conn.query('SET SESSION sql_log_bin = 0');
    await conn.query({
      sql: `LOAD DATA LOCAL INFILE 'members' INTO TABLE ${quoteId(name)} CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'`,
      infileStreamFactory: () => Readable.from(memberLines(rows)),
    });
    await conn.query('SET SESSION sql_log_bin = 1');
  } finally {
    await conn.end();
  }
  return { table: source, rows, captured: false };
}

/** LOAD DATA text in blocks of 2,000 lines (mysql2 sends Buffers). */
function* memberLines(rows: number): Generator<Buffer> {
  const block: string[] = [];
  for (let i = 0; i < rows; i++) {
    block.push(memberLine(i));
    if (block.length === 2000) yield Buffer.from(block.splice(0).join(''));
  }
  if (block.length > 0) yield Buffer.from(block.join(''));
}

/** A rerun starts clean: no control store, no shard databases, no committed offsets of the group. */
async function resetDemo(config: Config, logger: Logger): Promise<void> {
  const control = await connectMysql(config.control.url.replace(/\/[^/]*$/, '/'));
  try {
    await control.query(`DROP DATABASE IF EXISTS ${quoteId(controlDatabase(config))}`);
  } finally {
    await control.end();
  }
  const map = shardMapFromConfig(config);
  for (const server of map.servers()) {
    const conn = await connectMysql(server.primary);
    try {
      for (const shard of map.shardsOn(server.name)) await conn.query(`DROP DATABASE IF EXISTS ${quoteId(map.databaseOf(shard))}`);
    } finally {
      await conn.end();
    }
  }
  const kafka = config.cdc?.kafka;
  if (kafka) {
    await withKafkaAdmin({ clientId: 'membermig-demo', brokers: kafka.brokers }, (admin) => admin.deleteGroups([kafka.group]).catch(() => [])); // absent on a first run
  }
  logger.info('demo: control store, shard databases and consumer group reset');
}

/** Messages in the topics: the sum of their partitions' ends. */
async function topicMessages(admin: Admin, topics: string[]): Promise<number> {
  const ends = await Promise.all(topics.map((t) => admin.fetchTopicOffsets(t)));
  return ends.flat().reduce((sum, p) => sum + Number(p.high), 0);
}

/** Waits until the topics hold more messages than before the writer began: Debezium streams its changes. */
async function waitForCapture(brokers: string[], topics: string[], messagesBefore: number, timeoutMs = 60_000): Promise<CaptureResult> {
  return withKafkaAdmin({ clientId: 'membermig-demo', brokers }, async (admin) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const messagesNow = await topicMessages(admin, topics);
      if (messagesNow > messagesBefore) return { topics, messagesBefore, messagesNow };
      if (Date.now() > deadline) throw new Error(`no change reached ${topics.join(', ')} within ${timeoutMs / 1000} s of the writer starting: is the Debezium connector streaming from the legacy database?`);
      await sleep(250);
    }
  });
}

/** Debezium has produced everything: the topics' ends stop moving for two seconds. */
async function waitForCaptureIdle(brokers: string[], topics: string[], timeoutMs = 60_000): Promise<void> {
  await withKafkaAdmin({ clientId: 'membermig-demo', brokers }, async (admin) => {
    const ends = () => topicMessages(admin, topics);
    const deadline = Date.now() + timeoutMs;
    let last = await ends();
    let stableSince = Date.now();
    while (Date.now() - stableSince < 2000) {
      if (Date.now() > deadline) throw new Error(`the change topics kept growing for ${timeoutMs / 1000} s after the writer stopped`);
      await sleep(250);
      const now = await ends();
      if (now !== last) {
        last = now;
        stableSince = Date.now();
      }
    }
  });
}

async function waitCaughtUp(brokers: string[], group: string, topics: string[], failure: () => Error | undefined, timeoutMs = 120_000): Promise<void> {
  await withKafkaAdmin({ clientId: 'membermig-demo', brokers }, async (admin) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await isCaughtUp(admin, group, topics))) {
      const failed = failure();
      if (failed) throw new Error(`sync stopped: ${failed.message}`);
      if (Date.now() > deadline) throw new Error(`sync did not catch up within ${timeoutMs / 1000} s`);
      await sleep(250);
    }
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
