import { Kafka, logLevel as KafkaLogLevel, type Consumer, type EachBatchPayload, type KafkaMessage, type LogEntry } from 'kafkajs';
import type { Config } from '../config/schema.js';
import { RefusedError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import type { ControlStore } from '../store/control.js';
import type { ShardWriter } from '../target/writer.js';
import { applyChanges, type ApplyContext } from './apply.js';
import { deadLetterCounts, recordDeadLetters, retryOpenDeadLetters } from './deadletters.js';
import { waitingForParked } from './parking.js';
import { DebeziumDecoder } from './debezium/decode.js';
import type { SyncMetrics } from './metrics.js';
import { runMssqlSync, type MssqlSyncResult } from './mssql/sync.js';
import type { SyncOutcome } from './runtime.js';
import { QUIET_TOPICS, readConnectors, watchConnectors, type ConnectorHealth } from './connect.js';
import { recordConnectorHealth } from './connector-outages.js';
import { connectKafka } from './kafka-admin.js';
import { RestartingConsumer } from './kafka-consumer.js';
import { keepMirrorFresh, watchCaughtUp } from './kafka-progress.js';
import { prepareTopics } from './kafka-topics.js';
import { mirrorOffsets } from './offsets.js';
import { recopyKeys } from './recopy.js';
import { createSourceReader } from '../source/index.js';
import { openApplyRuntime } from './runtime.js';
import type { ChangeEvent, PoisonEvent } from './types.js';

/**
 * `membermig sync`: consumes Debezium change events from Kafka as one member of the consumer
 * group, applies them to the shards (src/cdc/apply.ts) and commits each partition's offset only
 * after the shard writes and dead letters it covers are durable, then mirrors it in cdc_offsets.
 *
 * Order: a partition's events are applied in offset order, batch after batch; partitions are
 * applied concurrently (Debezium keys messages by primary key, so a key lives in one partition).
 * A rebalance hands a partition over from its last committed offset: the new owner may replay
 * what the old one applied but did not commit, which converges since every write is idempotent,
 * and the old owner only rejoins the group after its in-flight batch (eager rebalancing).
 */

export interface SyncOptions {
  logger?: Logger;
  /** Stop once the group's committed offsets reach every partition's end. */
  untilCaughtUp?: boolean;
  /** Replay the open dead letters first (after a fix), in log order. */
  retryDeadLetters?: boolean;
  /** Serve Prometheus metrics on this port (0 = any free port). */
  metricsPort?: number;
  metricsHost?: string;
  /** Aborting stops the process cleanly: the in-flight batch finishes and is committed. */
  signal?: AbortSignal;
  /** How often --until-caught-up compares committed offsets with partition ends. */
  caughtUpCheckMs?: number;
  /** Called after each batch is durable and committed (benchmarks measure end-to-end lag with it). */
  onBatchCommitted?: (batch: { topic: string; partition: number; events: ChangeEvent[]; committedAtMs: number }) => void;
}

export interface SyncPartitionResult {
  topic: string;
  partition: number;
  events: number;
  nextOffset: string;
}

export type SyncResult = KafkaSyncResult | MssqlSyncResult;

export interface KafkaSyncResult extends SyncOutcome {
  source: 'kafka';
  group: string;
  topics: string[];
  /** Partitions this process applied batches from (a rebalance may move them). */
  partitions: SyncPartitionResult[];
  tombstones: number;
  /** The connectors of cdc.kafka.connect that were not running at the end: "caught up" then means only with the topics. */
  connectorsDown?: string[];
}

interface Runtime {
  config: Config;
  kafkaConfig: NonNullable<NonNullable<Config['cdc']>['kafka']>;
  logger: Logger;
  store: ControlStore;
  writer: ShardWriter;
  decoder: DebeziumDecoder;
  apply: ApplyContext;
  metrics: SyncMetrics;
  stopping: () => boolean;
  onBatchCommitted?: SyncOptions['onBatchCommitted'];
}

/**
 * `membermig sync`: from Kafka (cdc.kafka) or, without Kafka, straight from SQL Server's CDC
 * tables (cdc.mssql, src/cdc/mssql/sync.ts). Both apply through src/cdc/runtime.ts.
 */
export async function runSync(config: Config, options: SyncOptions = {}): Promise<SyncResult> {
  if (config.cdc?.kafka && config.cdc.mssql) {
    throw new RefusedError('cdc.kafka and cdc.mssql are both set: sync reads one change source; keep the one this cutover uses');
  }
  if (config.cdc?.mssql) return runMssqlSync(config, options);
  return runKafkaSync(config, options);
}

async function runKafkaSync(config: Config, options: SyncOptions): Promise<KafkaSyncResult> {
  const logger = options.logger ?? silentLogger;
  const kafkaConfig = config.cdc?.kafka;
  if (!kafkaConfig) throw new RefusedError('sync needs a change source in the config: cdc.kafka (brokers, topic, group) or cdc.mssql (capture_instances)');
  const topics = Array.isArray(kafkaConfig.topic) ? kafkaConfig.topic : [kafkaConfig.topic];
  const started = Date.now();

  let stopRequested = false;
  let stopFreshness: () => void = () => {};
  let stopWatchingConnectors: () => void = () => {};
  const stopping = () => stopRequested || options.signal?.aborted === true;
  const applyRuntime = await openApplyRuntime(config, logger, stopping);
  const { store, writer, metrics, parking } = applyRuntime;
  const kafka = new Kafka({ clientId: kafkaConfig.client_id, brokers: kafkaConfig.brokers, logLevel: KafkaLogLevel.WARN, logCreator: kafkaLogs(logger), retry: { retries: 10 } });
  const admin = kafka.admin();
  let consumer: RestartingConsumer | undefined;
  try {
    const rt: Runtime = {
      config,
      kafkaConfig,
      logger,
      store,
      writer,
      decoder: new DebeziumDecoder([...applyRuntime.apply.specs.values()], {
        decimalHandling: kafkaConfig.decimal_handling,
        replaceNullWithDefault: kafkaConfig.replace_null_with_default,
        excludedColumns: Object.fromEntries(Object.entries(config.tables).map(([name, t]) => [name, t.exclude_columns])),
      }),
      metrics,
      stopping,
      ...(options.onBatchCommitted ? { onBatchCommitted: options.onBatchCommitted } : {}),
      apply: applyRuntime.apply,
    };
    const metricsPort = options.metricsPort !== undefined ? await metrics.listen(options.metricsPort, options.metricsHost) : undefined;
    if (metricsPort !== undefined) logger.info({ port: metricsPort }, 'metrics at /metrics');

    const result: KafkaSyncResult = {
      source: 'kafka',
      group: kafkaConfig.group,
      topics,
      stoppedBy: 'signal',
      started: false,
      partitions: [],
      eventsApplied: 0,
      tombstones: 0,
      deletesKept: {},
      deadLettered: 0,
      deadLetters: { open: 0, resolved: 0 },
      parked: {},
      ...(metricsPort !== undefined ? { metricsPort } : {}),
      elapsedSeconds: 0,
    };

    const partitions = new Map<string, SyncPartitionResult>();
    const aborted = stopRequest(options.signal);
    // Start-up talks to Kafka with kafkajs's retries (two minutes against brokers that are away):
    // a stop request ends the wait at once, and a start-up still under way then starts nothing.
    const startUp = (async () => {
      await connectKafka(admin, kafkaConfig.brokers);
      await prepareTopics(admin, { store, group: kafkaConfig.group, topics, brokers: kafkaConfig.brokers, logger });
      if (stopping()) return;
      // After the topics are checked: a topic missing or compacted is refused (exit 2) before any write.
      if (options.retryDeadLetters) result.retried = await retryDeadLetters(rt);
      if (stopping()) return;
      consumer = new RestartingConsumer(kafka, { kafkaConfig, topics, logger, stopping, eachBatch: batchApplier(rt, result, partitions), onSkippedBatch: commitPastSkipped(rt) });
      await consumer.start();
      if (stopping()) return; // start() gives up quietly when a stop came meanwhile: nothing more to start
      result.started = true;
      stopFreshness = keepMirrorFresh(admin, store, kafkaConfig.group, topics, logger);
      if (kafkaConfig.connect) {
        stopWatchingConnectors = watchConnectors(kafkaConfig.connect, {
          changed: connectorChanged(logger, metrics),
          // Each check, not only on a change: an outage another process ended early is opened again.
          checked: (seen) => recordConnectorHealth(store.pool, seen).catch((e: Error) => logger.warn({ err: e.message }, 'could not record the connector states in the control store')),
        });
      }
    })();
    startUp.catch(() => {}); // when a stop request wins the race below, its failure is nobody's
    const first = await Promise.race([startUp.then(() => 'started' as const), aborted]);
    const nothingParked = waitingForParked(logger);
    const caughtUp = () =>
      options.untilCaughtUp
        ? watchCaughtUp(admin, kafkaConfig.group, topics, options.caughtUpCheckMs ?? 300, stopping, async () => nothingParked(await parking.counts())).then(() => 'caught-up' as const)
        : new Promise<never>(() => {});
    if (first === 'stopped' && !result.started) logger.warn({ brokers: kafkaConfig.brokers }, 'stopped before Kafka answered: nothing was consumed');
    const reason = first === 'stopped' ? first : await Promise.race([aborted, caughtUp()]);
    stopRequested = true;
    await consumer?.stop();
    result.stoppedBy = reason === 'caught-up' ? 'caught-up' : 'signal';
    result.partitions = [...partitions.values()].sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
    const counts = await deadLetterCounts(store.pool);
    result.deadLetters = { open: counts.open, resolved: counts.resolved };
    result.parked = Object.fromEntries(await parking.counts());
    result.deletesKept = { ...applyRuntime.deletesKept };
    if (kafkaConfig.connect && result.started) {
      const down = (await readConnectors(kafkaConfig.connect)).flatMap((c) => (c.problem ? [c.problem] : []));
      if (down.length > 0) result.connectorsDown = down;
    }
    result.elapsedSeconds = (Date.now() - started) / 1000;
    return result;
  } finally {
    stopRequested = true;
    stopFreshness();
    stopWatchingConnectors();
    await consumer?.disconnect();
    // Against a broker that accepts connections and never answers, disconnect waits for the
    // start-up's request to time out (30 s): a stopped run does not wait for it.
    await Promise.race([admin.disconnect().catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())]);
    await applyRuntime.close();
  }
}

/** A connector that stopped filling its topics is a warning: sync will look caught up with quiet topics (the outage is recorded by each check). */
function connectorChanged(logger: Logger, metrics: SyncMetrics) {
  return async (health: ConnectorHealth, previous: string | null | undefined): Promise<void> => {
    metrics.connectorRunning.set({ connector: health.name }, health.problem === null ? 1 : 0);
    if (health.problem !== null) logger.warn({ connector: health.name, state: health.state }, `${health.problem}: ${QUIET_TOPICS}`);
    else if (previous) logger.info({ connector: health.name }, `connector ${health.name} is running again`);
  };
}

/** Resolves when the signal aborts (at once if it already has); never without a signal. */
function stopRequest(signal: AbortSignal | undefined): Promise<'stopped'> {
  if (signal?.aborted) return Promise.resolve('stopped');
  return new Promise((resolve) => signal?.addEventListener('abort', () => resolve('stopped'), { once: true }));
}

/**
 * The consumer's batch handler: a partition's fetched batch is cut into chunks of
 * max_batch_events, each decoded here and applied and committed in a group (GroupCommitter),
 * and tallied into the result.
 */
function batchApplier(rt: Runtime, result: KafkaSyncResult, partitions: Map<string, SyncPartitionResult>) {
  const committer = new GroupCommitter(rt);
  const max = rt.kafkaConfig.max_batch_events;
  return async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload, consumer: Consumer): Promise<void> => {
    const messages = batch.messages;
    for (let i = 0; i < messages.length; i += max) {
      if (!isRunning() || isStale()) return;
      const chunk = messages.slice(i, i + max);
      const decoded = decodePart(rt, batch.topic, batch.partition, chunk);
      // The batch's last chunk commits past what the batch holds after its last message (a transaction's
      // commit marker): else the partition stays one short of its end, and --until-caught-up never ends.
      const batchEnd = i + max >= messages.length ? (BigInt(batch.lastOffset()) + 1n).toString() : undefined;
      const part: Part = { consumer, heartbeat, topic: batch.topic, partition: batch.partition, highWatermark: batch.highWatermark, messages: chunk, decoded, ...(batchEnd ? { batchEnd } : {}) };
      const outcome = await committer.submit(part);
      resolveOffset(chunk[chunk.length - 1]!.offset);
      result.eventsApplied += outcome.applied;
      result.tombstones += outcome.tombstones;
      result.deadLettered += outcome.deadLettered;
      const key = `${batch.topic}/${batch.partition}`;
      const p = partitions.get(key) ?? { topic: batch.topic, partition: batch.partition, events: 0, nextOffset: '0' };
      p.events += chunk.length;
      p.nextOffset = outcome.nextOffset;
      partitions.set(key, p);
      await heartbeat();
    }
  };
}

/**
 * A batch of records sync never sees (kafkajs filtered them: a transaction's marker, aborted
 * messages): its offsets are committed and mirrored, as after an applied batch.
 */
function commitPastSkipped(rt: Runtime) {
  return async (skipped: { topic: string; partition: number; nextOffset: string; highWatermark: string }, consumer: Consumer): Promise<void> => {
    await consumer.commitOffsets([{ topic: skipped.topic, partition: skipped.partition, offset: skipped.nextOffset }]);
    await mirrorOffsets(rt.store.pool, [
      { group: rt.kafkaConfig.group, topic: skipped.topic, partition: skipped.partition, nextOffset: skipped.nextOffset, highWatermark: skipped.highWatermark, lastSourceTsMs: null, appliedEvents: 0 },
    ]);
  };
}

interface BatchOutcome {
  applied: number;
  tombstones: number;
  deadLettered: number;
  nextOffset: string;
}

/** One partition's chunk of messages, waiting to be applied in the next group. */
interface Part {
  consumer: Consumer;
  /** The fetch's heartbeat (kafkajs): fails once the group has moved the partition to another member. */
  heartbeat: () => Promise<void>;
  topic: string;
  partition: number;
  highWatermark: string;
  messages: KafkaMessage[];
  decoded: DecodedPart;
  /** The last chunk of a fetched batch: the offset after the batch's last record, data or not. */
  batchEnd?: string;
}

interface DecodedPart {
  events: ChangeEvent[];
  poisons: PoisonEvent[];
  tombstones: number;
  lastSourceTsMs: number | null;
}

/**
 * Decoding happens in the partition's handler, before its chunk joins a group, so the CPU work of
 * the next group overlaps the shard writes of the current one.
 */
function decodePart(rt: Runtime, topic: string, partition: number, messages: KafkaMessage[]): DecodedPart {
  const out: DecodedPart = { events: [], poisons: [], tombstones: 0, lastSourceTsMs: null };
  for (const m of messages) {
    const decoded = rt.decoder.decode({ topic, partition, offset: m.offset, key: m.key, value: m.value });
    if (decoded.kind === 'tombstone') out.tombstones++;
    else if (decoded.kind === 'poison') out.poisons.push(decoded.poison);
    else {
      for (const e of decoded.events) {
        out.events.push(e);
        if (e.sourceTsMs !== undefined) out.lastSourceTsMs = e.sourceTsMs;
      }
    }
  }
  return out;
}

/**
 * Group commit: the chunks that partitions hand in while a group is being applied are applied
 * together next (one write per shard, one offset commit, one mirror statement), so per-batch
 * costs are shared by every partition. Keys never span partitions and each partition has at most
 * one chunk in a group, so applying them together keeps every key's order.
 */
class GroupCommitter {
  private queue: { part: Part; resolve: (o: BatchOutcome) => void; reject: (e: unknown) => void }[] = [];
  private running = false;

  constructor(private readonly rt: Runtime) {}

  submit(part: Part): Promise<BatchOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ part, resolve, reject });
      void this.run();
    });
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const group = this.queue.splice(0);
        try {
          const outcomes = await applyGroup(this.rt, group.map((g) => g.part));
          group.forEach((g, i) => g.resolve(outcomes[i]!));
        } catch (e) {
          for (const g of group) g.reject(e);
        }
      }
    } finally {
      this.running = false;
    }
  }
}

/** Decode, apply, record dead letters, commit, mirror: a group of partitions' chunks. */
async function applyGroup(rt: Runtime, parts: Part[]): Promise<BatchOutcome[]> {
  const t0 = performance.now();
  const all: ChangeEvent[] = parts.flatMap((p) => p.decoded.events);
  const poisons: PoisonEvent[] = parts.flatMap((p) => p.decoded.poisons);
  const perPart = parts.map((p) => ({ ...p.decoded, failed: 0, held: 0 }));
  const t1 = performance.now();
  const { failed, held } = await applyChanges(rt.apply, all, () => stillMember(parts));
  // Held events (their key's legacy row is behind MySQL) are not applied: not counted as applied.
  for (const e of held) {
    const i = parts.findIndex((p) => p.topic === e.origin.source && p.partition === e.origin.partition);
    if (i >= 0) perPart[i]!.held++;
  }
  const t2 = performance.now();
  for (const f of failed) {
    // The message's raw bytes for the dead letter: looked up only for the (rare) failed events.
    const i = parts.findIndex((p) => p.topic === f.event.origin.source && p.partition === f.event.origin.partition);
    const m = i >= 0 ? parts[i]!.messages.find((message) => message.offset === f.event.origin.offset) : undefined;
    poisons.push({ origin: f.event.origin, table: f.event.table, messageKey: m?.key ?? null, rawValue: m?.value ?? null, reason: f.reason });
    if (i >= 0) perPart[i]!.failed++;
  }
  await recordDeadLetters(rt.store.pool, poisons);
  const nextOffsets = parts.map((p) => {
    const afterLast = BigInt(p.messages[p.messages.length - 1]!.offset) + 1n;
    return (p.batchEnd !== undefined && BigInt(p.batchEnd) > afterLast ? BigInt(p.batchEnd) : afterLast).toString();
  });
  for (const consumer of new Set(parts.map((p) => p.consumer))) {
    await consumer.commitOffsets(parts.flatMap((p, i) => (p.consumer === consumer ? [{ topic: p.topic, partition: p.partition, offset: nextOffsets[i]! }] : [])));
  }
  const t3 = performance.now();
  await mirrorOffsets(
    rt.store.pool,
    parts.map((p, i) => ({
      group: rt.kafkaConfig.group,
      topic: p.topic,
      partition: p.partition,
      nextOffset: nextOffsets[i]!,
      highWatermark: p.highWatermark,
      lastSourceTsMs: perPart[i]!.lastSourceTsMs,
      appliedEvents: perPart[i]!.events.length - perPart[i]!.failed - perPart[i]!.held,
    })),
  );
  const committedAtMs = Date.now();
  const outcomes = parts.map((p, i) => {
    const stats = perPart[i]!;
    const applied = stats.events.length - stats.failed - stats.held;
    const lag = Math.max(0, Number(BigInt(p.highWatermark) - BigInt(nextOffsets[i]!)));
    const labels = { topic: p.topic, partition: String(p.partition) };
    rt.metrics.lagMessages.set(labels, lag);
    rt.metrics.lagSeconds.set(labels, lag === 0 || stats.lastSourceTsMs === null ? 0 : Math.max(0, (committedAtMs - stats.lastSourceTsMs) / 1000));
    rt.metrics.applied.inc({ topic: p.topic }, applied);
    if (stats.tombstones > 0) rt.metrics.tombstones.inc({ topic: p.topic }, stats.tombstones);
    const dead = stats.poisons.length + stats.failed;
    if (dead > 0) rt.metrics.deadLettered.inc({ topic: p.topic }, dead);
    rt.onBatchCommitted?.({ topic: p.topic, partition: p.partition, events: stats.events, committedAtMs });
    return { applied, tombstones: stats.tombstones, deadLettered: dead, nextOffset: nextOffsets[i]! };
  });
  if (poisons.length > 0) rt.logger.warn({ count: poisons.length, first: poisons[0]!.reason }, 'events dead-lettered');
  const t4 = performance.now();
  rt.logger.debug(
    { partitions: parts.map((p, i) => `${p.topic}/${p.partition}@${nextOffsets[i]}`), events: all.length, ms: { collect: Math.round(t1 - t0), apply: Math.round(t2 - t1), commit: Math.round(t3 - t2), mirror: Math.round(t4 - t3) } },
    'batch committed',
  );
  return outcomes;
}

/**
 * Fencing: a process that stalled between fetch and write (a long control-store wait, a GC or VM
 * pause, SIGSTOP) past the session timeout has lost its partitions to another member, which may
 * have applied these events and newer ones of the same keys since; written now, they would put
 * older rows back. kafkajs heartbeats only between batches, so a stall of that length has let
 * the heartbeat interval pass and this heartbeat asks the broker, which refuses a member it no
 * longer knows (the group then rejoins and the batch is fetched again by its new owner).
 */
async function stillMember(parts: Part[]): Promise<void> {
  for (const heartbeat of new Set(parts.map((p) => p.heartbeat))) await heartbeat();
}

/**
 * Replays open dead letters in log order, after a fix: each must decode now, and its keys are then
 * copied again from the legacy table (src/cdc/recopy.ts; never its stored image, which later events
 * may have passed). Resolved when that worked, else its reason is updated.
 */
async function retryDeadLetters(rt: Runtime): Promise<{ resolved: number; stillFailing: number }> {
  const reader = createSourceReader(rt.config, rt.logger);
  let outcome: { resolved: number; stillFailing: number };
  try {
    outcome = await retryOpenDeadLetters(rt.store.pool, async (dl) => {
      const decoded = rt.decoder.decode({ topic: dl.source, partition: dl.partition ?? 0, offset: dl.offset, key: dl.messageKey, value: dl.rawValue });
      if (decoded.kind === 'poison') return decoded.poison.reason;
      if (decoded.kind === 'changes') return recopyKeys(rt.apply, reader, decoded.events);
      if (dl.rawValue !== null) return null; // a tombstone: nothing to apply
      return dl.reason.startsWith('no message') ? dl.reason : `no message is stored for it (${dl.reason}): repair the row with membermig verify --repair`;
    }, undefined, () => rt.apply.shouldStop?.() === true);
  } finally {
    await reader.close();
  }
  const { resolved, stillFailing } = outcome;
  rt.logger.info({ resolved, stillFailing }, 'dead letters retried');
  return { resolved, stillFailing };
}

/** kafkajs logs into the command's pino logger (stderr), one level quieter: it reports every rebalance as an error. */
function kafkaLogs(logger: Logger) {
  return () =>
    ({ level, log }: LogEntry) => {
      const { message, ...rest } = log;
      if (level <= KafkaLogLevel.ERROR) logger.warn({ kafka: rest }, `kafka: ${message}`);
      else logger.debug({ kafka: rest }, `kafka: ${message}`);
    };
}
