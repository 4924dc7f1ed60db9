/**
 * `npm run bench -- sync`: change events applied per second to 16 shards (two MariaDB servers)
 * from a 12-partition topic, beside kcat's raw consume rate of the same topic in the same run,
 * then the end-to-end lag (source commit time → shard write committed) at a steady 5,000 events/s.
 *
 * Everything runs here on private servers: three MariaDB (legacy + control store, two shard hosts)
 * and one Kafka broker (fetched with Maven on first use, see test/services/kafka.ts). Events are
 * Debezium MariaDB envelopes with schemas (JsonConverter, schemas.enable=true), shaped as the real
 * connector writes them in the end-to-end tests. kcat comes from Debian (installed if missing).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { stringify } from 'yaml';
import { runSync } from '../src/cdc/sync.js';
import { parseConfig, type Config } from '../src/config/index.js';
import { runInit } from '../src/init/index.js';
import { createLogger, type LogLevel } from '../src/log.js';
import { connectMysql } from '../src/mysql/connect.js';
import { startMariaDb, type MariaDbInstance } from '../src/sandbox/mariadb.js';
import { startKafka, type KafkaBroker } from '../src/sandbox/kafka.js';
import type { Benchmark, BenchFigure, BenchRatio } from './types.js';

const PARTITIONS = 12;
/** 16 by default; BENCH_SHARDS for another count (half on each server), e.g. 1024 to see per-shard write costs. */
const SHARDS = Number(process.env.BENCH_SHARDS ?? 16);
/** Table caches that hold every shard table, as `membermig init` asks of a shard server. */
const shardServerArgs = [`--table-definition-cache=${Math.max(400, SHARDS + 100)}`, `--table-open-cache=${Math.max(2000, SHARDS + 100)}`];
/** BENCH_DURABLE=1: shard servers that flush their log at each commit (innodb_flush_log_at_trx_commit=1, as in production). */
const DURABLE = process.env.BENCH_DURABLE === '1';
const EVENTS = Number(process.env.MEMBERMIG_BENCH_SYNC_EVENTS ?? 200_000);
const KEYS = 50_000;
const STEADY_RATE = 5_000;
const STEADY_SECONDS = 20;

function ensureKcat(): string {
  const found = spawnSync('sh', ['-c', 'command -v kcat'], { encoding: 'utf8' }).stdout.trim();
  if (found) return found;
  process.stderr.write('kcat missing: apt-get install kcat\n');
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore' });
  execFileSync('apt-get', ['install', '-y', '-qq', 'kcat'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return 'kcat';
}

/** A Debezium MariaDB change event with schemas, for member(member_id, name, points, updated_at). */
function envelope(db: string, op: 'c' | 'u', id: number, version: number, tsMs: number): string {
  const field = (type: string, name: string, optional = true, extra: Record<string, unknown> = {}) => ({ type, optional, ...extra, field: name });
  const row = [
    field('int64', 'member_id', false),
    field('string', 'name'),
    field('bytes', 'points', true, { name: 'org.apache.kafka.connect.data.Decimal', version: 1, parameters: { scale: '2', 'connect.decimal.precision': '18' } }),
    field('int64', 'updated_at', true, { name: 'io.debezium.time.MicroTimestamp', version: 1 }),
  ];
  const value = { type: 'struct', fields: row, optional: true, name: `bench.${db}.member.Value` };
  const schema = {
    type: 'struct',
    fields: [
      { ...value, field: 'before' },
      { ...value, field: 'after' },
      {
        type: 'struct',
        fields: ['version', 'connector', 'name', 'db', 'table', 'file'].map((f) => field('string', f, false)).concat([field('int64', 'ts_ms', false), field('int64', 'pos', false)]),
        optional: false,
        name: 'io.debezium.connector.mariadb.Source',
        field: 'source',
      },
      field('string', 'op', false),
      field('int64', 'ts_ms'),
    ],
    optional: false,
    name: `bench.${db}.member.Envelope`,
    version: 2,
  };
  const cents = BigInt(id * 100 + version);
  const points = Buffer.from(cents.toString(16).padStart(8, '0'), 'hex').toString('base64');
  const after = { member_id: id, name: `会员${id}-v${version}`, points, updated_at: 1_709_296_496_123_456 + version };
  const payload = {
    before: op === 'u' ? { ...after, name: `会员${id}-v${version - 1}` } : null,
    after,
    source: { version: '3.2.0.Final', connector: 'mariadb', name: 'bench', db, table: 'member', file: 'mysql-bin.000001', ts_ms: tsMs, pos: id },
    op,
    ts_ms: tsMs,
  };
  return JSON.stringify({ schema, payload });
}

/** Lines for `kcat -P -K '\t'`: key TAB value, one event per line (JSON holds no raw tab or newline). */
function lines(db: string, ids: number[], versions: Map<number, number>, tsMs: () => number): string {
  const keySchema = JSON.stringify({ type: 'struct', fields: [{ type: 'int64', optional: false, field: 'member_id' }], optional: false, name: `bench.${db}.member.Key` });
  return ids
    .map((id) => {
      const version = (versions.get(id) ?? 0) + 1;
      versions.set(id, version);
      return `{"schema":${keySchema},"payload":{"member_id":${id}}}\t${envelope(db, version === 1 ? 'c' : 'u', id, version, tsMs())}\n`;
    })
    .join('');
}

/** A source ts placed in lines built ahead of time, replaced by the real one when they are sent. */
const TS_PLACEHOLDER = '9999999999999';

/** Lines built now (JSON work) and stamped with the source ts when sent (a copy): see the steady phase. */
function stampable(text: string): (tsMs: number) => Buffer {
  const parts = text.split(TS_PLACEHOLDER).map((part) => Buffer.from(part));
  return (tsMs) => {
    const ts = Buffer.from(String(tsMs));
    return Buffer.concat(parts.flatMap((part, i) => (i === 0 ? [part] : [ts, part])));
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const bench: Benchmark = {
  name: 'sync',
  description: `sync: events/s applied to ${SHARDS} shards from a ${PARTITIONS}-partition topic vs kcat raw consume; end-to-end lag at ${STEADY_RATE} events/s`,
  async run() {
    const kcat = ensureKcat();
    const root = mkdtempSync(join(tmpdir(), 'membermig-bench-sync-'));
    const servers: MariaDbInstance[] = [];
    let broker: KafkaBroker | undefined;
    try {
      const [legacy, shardA, shardB, kafka] = await Promise.all([
        startMariaDb({ dir: join(root, 'legacy'), binlog: true, bufferPoolMb: 256 }),
        startMariaDb({ dir: join(root, 'shard-a'), bufferPoolMb: 512, durable: DURABLE, extraArgs: shardServerArgs }),
        startMariaDb({ dir: join(root, 'shard-b'), bufferPoolMb: 512, durable: DURABLE, extraArgs: shardServerArgs }),
        startKafka({ dir: join(root, 'kafka'), partitions: PARTITIONS, heapMb: 1024 }),
      ]);
      servers.push(legacy, shardA, shardB);
      broker = kafka;
      const db = 'bench_legacy';
      const conn = await connectMysql(legacy.url);
      await conn.query(`CREATE DATABASE ${db}`);
      await conn.query(`CREATE TABLE ${db}.member (member_id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(40) CHARACTER SET utf8mb4 NOT NULL, points DECIMAL(18,2) NOT NULL, updated_at DATETIME(6) NOT NULL)`);
      await conn.end();
      const topic = `bench.${db}.member`;
      const raw = {
        control: { url: `${legacy.url}bench_control` },
        source: { kind: 'mysql', url: `${legacy.url}${db}` },
        servers: { 'shard-a': { primary: shardA.url, max_connections: 8 }, 'shard-b': { primary: shardB.url, max_connections: 8 } },
        shards: { count: SHARDS, function: 'crc32', database: 'bench_s{shard:02}', placement: [{ shards: `0-${SHARDS / 2 - 1}`, server: 'shard-a' }, { shards: `${SHARDS / 2}-${SHARDS - 1}`, server: 'shard-b' }] },
        tables: { member: { source: `${db}.member`, target: 'member', shard_key: 'member_id' } },
        cdc: { kafka: { brokers: kafka.brokers, topic, group: 'bench-sync', max_batch_events: 2000, partitions_concurrently: 12 } },
      };
      const config: Config = parseConfig(stringify(raw), join(root, 'membermig.yaml'));
      const init = await runInit(config);
      if (!init.ok) throw new Error('init failed: ' + JSON.stringify(init.servers));

      const client = new Kafka({ clientId: 'bench', brokers: kafka.brokers, logLevel: logLevel.NOTHING });
      const admin = client.admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
      await admin.disconnect();
      // The backlog, produced by kcat (librdkafka) from a file; keys hashed to partitions as Debezium's are.
      const versions = new Map<number, number>();
      process.stderr.write(`producing ${EVENTS} events over ${KEYS} keys\n`);
      const file = join(root, 'events.txt');
      writeFileSync(file, '');
      for (let i = 0; i < EVENTS; i += 10_000) {
        const ids = Array.from({ length: Math.min(10_000, EVENTS - i) }, (_, j) => ((i + j) % KEYS) + 1);
        appendFileSync(file, lines(db, ids, versions, () => Date.now()));
      }
      const kcatProduce = ['-P', '-b', kafka.brokers[0]!, '-t', topic, '-K', '\t', '-X', 'linger.ms=5'];
      const tProduce = Date.now();
      const p = spawnSync(kcat, [...kcatProduce, '-l', file], { stdio: ['ignore', 'ignore', 'pipe'] });
      if (p.status !== 0) throw new Error(`kcat -P failed: ${p.stderr?.toString()}`);
      const produceSeconds = (Date.now() - tProduce) / 1000;

      // kcat: the raw consume rate of the same topic, start to end, output discarded.
      const tKcat = process.hrtime.bigint();
      const k = spawnSync(kcat, ['-C', '-b', kafka.brokers[0]!, '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%s\n'], { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 20 });
      const kcatSeconds = Number(process.hrtime.bigint() - tKcat) / 1e9;
      if (k.status !== 0) throw new Error(`kcat failed: ${k.stderr?.toString()}`);

      // membermig sync: from the first batch to caught up (startup and group join reported apart).
      process.stderr.write('sync: applying the backlog\n');
      let firstBatchAt = 0;
      let lastBatchAt = 0;
      const tSync = Date.now();
      const cpuSync = process.cpuUsage();
      const result = await runSync(config, {
        ...(process.env.MEMBERMIG_BENCH_LOG ? { logger: createLogger(process.env.MEMBERMIG_BENCH_LOG as LogLevel) } : {}),
        untilCaughtUp: true,
        caughtUpCheckMs: 100,
        onBatchCommitted: ({ committedAtMs }) => {
          if (firstBatchAt === 0) firstBatchAt = committedAtMs;
          lastBatchAt = committedAtMs;
        },
      });
      const syncTotalSeconds = (Date.now() - tSync) / 1000;
      const syncCpu = process.cpuUsage(cpuSync);
      const syncCpuMicrosPerEvent = (syncCpu.user + syncCpu.system) / EVENTS;
      const syncApplySeconds = (lastBatchAt - firstBatchAt) / 1000;
      if (result.eventsApplied !== EVENTS) throw new Error(`applied ${result.eventsApplied} of ${EVENTS}`);
      const rows = await countRows(config);
      if (rows !== KEYS) throw new Error(`shards hold ${rows} rows, expected ${KEYS}`);

      // Steady 5,000 events/s for STEADY_SECONDS while sync runs: lag = commit of the shard write − source ts.
      // The events are built before sync starts, so this process's JSON work does not take CPU from sync
      // while lag is measured; each is stamped with the current time as its source ts when it is sent.
      process.stderr.write(`sync: steady ${STEADY_RATE} events/s for ${STEADY_SECONDS} s\n`);
      const tick = 50;
      const perTick = (STEADY_RATE * tick) / 1000;
      const warmUpLines = Array.from({ length: 300 }, (_, i) => stampable(lines(db, [1 + (i % KEYS)], versions, () => Number(TS_PLACEHOLDER))));
      const steadyLines = Array.from({ length: (STEADY_SECONDS * 1000) / tick }, (_, t) =>
        stampable(lines(db, Array.from({ length: perTick }, (_, j) => ((t * perTick + j) % KEYS) + 1), versions, () => Number(TS_PLACEHOLDER))),
      );
      const lags: number[] = [];
      let measuring = false;
      let warmedUp = false;
      const abort = new AbortController();
      const steady = runSync(config, {
        signal: abort.signal,
        onBatchCommitted: ({ events, committedAtMs }) => {
          warmedUp = true;
          if (measuring) for (const e of events) if (e.sourceTsMs !== undefined && e.sourceTsMs >= measureFrom) lags.push(committedAtMs - e.sourceTsMs);
        },
      });
      const steadyProducer = spawn(kcat, kcatProduce, { stdio: ['pipe', 'ignore', 'inherit'] });
      // Warm-up: a trickle until this sync process has joined the group and committed a batch.
      for (let i = 0; !warmedUp && i < warmUpLines.length; i++) {
        steadyProducer.stdin.write(warmUpLines[i]!(Date.now()));
        await new Promise((r) => setTimeout(r, 100));
      }
      const measureFrom = Date.now();
      measuring = true;
      const start = Date.now();
      let sent = 0;
      for (let t = 0; t < steadyLines.length; t++) {
        sent += perTick;
        steadyProducer.stdin.write(steadyLines[t]!(Date.now()));
        const next = start + (t + 1) * tick;
        await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
      }
      const achievedRate = sent / ((Date.now() - start) / 1000);
      steadyProducer.stdin.end();
      await new Promise((r) => steadyProducer.on('close', r));
      const deadline = Date.now() + 30_000;
      while (lags.length < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      abort.abort();
      await steady;
      lags.sort((a, b) => a - b);

      const syncRate = EVENTS / syncApplySeconds;
      const kcatRate = EVENTS / kcatSeconds;
      const p99 = percentile(lags, 99) / 1000;
      const figures: BenchFigure[] = [
        { measure: 'sync apply rate (first batch → caught up)', value: syncRate, unit: 'events/s', note: `${EVENTS} events, ${KEYS} keys, ${SHARDS} shards on 2 servers, ${PARTITIONS} partitions` },
        { measure: 'sync rate incl. start-up and group join', value: EVENTS / syncTotalSeconds, unit: 'events/s', note: `${syncTotalSeconds.toFixed(1)} s in all` },
        { measure: 'sync CPU per event (this process, all threads)', value: syncCpuMicrosPerEvent, unit: 'µs', note: 'the backlog run incl. start-up; the machine has 2 cores for everything' },
        { measure: 'kcat raw consume rate, same topic', value: kcatRate, unit: 'events/s', note: `${kcatSeconds.toFixed(2)} s, output discarded` },
        { measure: 'kcat produce rate (backlog fill)', value: EVENTS / produceSeconds, unit: 'events/s' },
        { measure: `steady load achieved`, value: achievedRate, unit: 'events/s', note: `${sent} events over ${STEADY_SECONDS} s` },
        { measure: 'end-to-end lag p50', value: percentile(lags, 50) / 1000, unit: 's', note: 'source ts → shard write committed' },
        { measure: 'end-to-end lag p99', value: p99, unit: 's', note: `${lags.length} events measured` },
        { measure: 'end-to-end lag max', value: lags[lags.length - 1]! / 1000, unit: 's' },
      ];
      const ratios: BenchRatio[] = [
        { name: 'sync apply rate (events/s)', value: syncRate, target: '>= 20000', met: syncRate >= 20_000 },
        { name: 'sync / kcat consume rate', value: syncRate / kcatRate },
        { name: 'p99 end-to-end lag at 5,000 events/s (s)', value: p99, target: '< 1', met: p99 < 1 && lags.length >= sent },
      ];
      return { name: 'sync', figures, ratios };
    } finally {
      await broker?.stop();
      await Promise.all(servers.map((s) => s.stop()));
      rmSync(root, { recursive: true, force: true });
    }
  },
};

async function countRows(config: Config): Promise<number> {
  let n = 0;
  for (const server of Object.values(config.servers)) {
    const conn = await connectMysql(server.primary);
    const [dbs] = await conn.query("SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'bench\\_s%'");
    for (const { s } of dbs as { s: string }[]) {
      const [c] = await conn.query(`SELECT COUNT(*) AS c FROM \`${s}\`.member`);
      n += Number((c as { c: string }[])[0]!.c);
    }
    await conn.end();
  }
  return n;
}

export default bench;
