/**
 * Real Apache Kafka (KRaft, one combined broker+controller) and Kafka Connect with Debezium's
 * MariaDB connector, for the sandbox (`membermig sandbox up`), the tests and the sync bench.
 *
 * First run: Maven copies Kafka 3.9 (services/kafka/pom.xml) and the Debezium plugin
 * (services/kafka/debezium/pom.xml) from Maven Central into ~/.cache/membermig/kafka-<version>
 * (about 70 MB, 30-60 s); later runs reuse that folder ($MEMBERMIG_CACHE_DIR moves it).
 * Every process started here is stopped by the PID it was started with.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from './mariadb.js';
import { isAlive } from './process.js';

const execFileAsync = promisify(execFile);
// The poms ship in the package's top-level services/ folder: two levels up from src/sandbox/ (tsx)
// and from dist/sandbox/ (the built CLI) alike.
const POMS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'services', 'kafka');

export const KAFKA_VERSION = '3.9.1';
export const DEBEZIUM_VERSION = '3.2.0.Final';

export function kafkaCacheDir(): string {
  const base = process.env.MEMBERMIG_CACHE_DIR ?? join(homedir(), '.cache', 'membermig');
  return join(base, `kafka-${KAFKA_VERSION}`);
}

/** Copies the pom's runtime dependencies into `target` once (atomically: a half copy is never reused). */
async function mavenCopy(pom: string, target: string): Promise<void> {
  if (existsSync(join(target, '.complete'))) return;
  const partial = `${target}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  try {
    await execFileAsync(
      'mvn',
      ['-q', '-B', '-f', pom, 'dependency:copy-dependencies', `-DoutputDirectory=${partial}`, '-DincludeScope=runtime'],
      { maxBuffer: 16 * 1024 * 1024, timeout: 600_000 },
    );
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`fetching ${pom} with Maven failed: ${err.message}\n${(err.stdout ?? '').slice(-2000)}${(err.stderr ?? '').slice(-2000)}`);
  }
  writeFileSync(join(partial, '.complete'), new Date().toISOString());
  rmSync(target, { recursive: true, force: true });
  mkdirSync(dirname(target), { recursive: true });
  renameSync(partial, target);
}

export interface KafkaRuntime {
  /** Kafka broker + Connect runtime jars, for `java -cp 'lib/*'`. */
  lib: string;
  /** Connect plugin.path holding debezium-mariadb/. */
  plugins: string;
}

/** Kafka and the Debezium plugin on disk, fetched with Maven on first use. */
export async function ensureKafkaRuntime(): Promise<KafkaRuntime> {
  const home = kafkaCacheDir();
  const lib = join(home, 'lib');
  const plugins = join(home, 'plugins');
  await mavenCopy(join(POMS, 'pom.xml'), lib);
  await mavenCopy(join(POMS, 'debezium', 'pom.xml'), join(plugins, `debezium-mariadb-${DEBEZIUM_VERSION}`));
  return { lib, plugins };
}

function log4jConfig(dir: string, file: string): string {
  const path = join(dir, 'log4j.properties');
  writeFileSync(
    path,
    [
      'log4j.rootLogger=INFO, file',
      'log4j.appender.file=org.apache.log4j.FileAppender',
      `log4j.appender.file.File=${join(dir, file)}`,
      'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
      'log4j.logger.org.apache.kafka.clients=WARN',
      'log4j.logger.kafka.log=WARN',
      'log4j.logger.org.reflections=ERROR',
      '',
    ].join('\n'),
  );
  return path;
}

/** SIGTERM, wait for exit, SIGKILL after `graceMs`. */
export async function stopPid(pid: number, graceMs = 20_000): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(50);
  if (isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    while (isAlive(pid)) await sleep(20);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function javaProcess(runtime: KafkaRuntime, dir: string, logFile: string, heapMb: number, mainClass: string, args: string[]): number {
  const log4j = log4jConfig(dir, logFile);
  const child = spawn(
    'java',
    [
      `-Xmx${heapMb}m`,
      `-Xms${Math.min(heapMb, 128)}m`,
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-Djava.awt.headless=true',
      `-Dlog4j.configuration=file:${log4j}`,
      `-Dkafka.logs.dir=${dir}`,
      '-cp',
      `${runtime.lib}/*`,
      mainClass,
      ...args,
    ],
    { detached: true, stdio: ['ignore', 'ignore', 'ignore'] },
  );
  child.unref();
  if (child.pid === undefined) throw new Error(`${mainClass} did not start`);
  return child.pid;
}

/**
 * A KRaft cluster id (16 random bytes, base64url). Never one starting with '-': the storage tool
 * would read it as an option (Kafka's own Uuid.randomUuid avoids those for the same reason).
 */
export function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

export interface KafkaBroker {
  brokers: string[];
  port: number;
  dir: string;
  pid: number;
  /** Stops the broker (clean shutdown) and keeps its data. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data (after stop, e.g. to test a broker restart). */
  start(): Promise<void>;
}

export interface StartKafkaOptions {
  dir: string;
  /** Partitions of auto-created topics. */
  partitions?: number;
  heapMb?: number;
}

/** A one-node KRaft cluster on free ports of 127.0.0.1, storage formatted on first start. */
export async function startKafka(options: StartKafkaOptions): Promise<KafkaBroker> {
  const runtime = await ensureKafkaRuntime();
  const dir = options.dir;
  mkdirSync(dir, { recursive: true });
  const [port, controllerPort] = [await freePort(), await freePort()];
  const props = join(dir, 'server.properties');
  writeFileSync(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      'controller.listener.names=CONTROLLER',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      'inter.broker.listener.name=PLAINTEXT',
      `log.dirs=${join(dir, 'data')}`,
      `num.partitions=${options.partitions ?? 4}`,
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=4',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      'auto.create.topics.enable=true',
      'log.flush.interval.messages=9223372036854775807',
      'num.network.threads=2',
      'num.io.threads=4',
      '',
    ].join('\n'),
  );
  const clusterId = newClusterId();
  await execFileAsync('java', ['-Xmx256m', '-XX:TieredStopAtLevel=1', `-Dlog4j.configuration=file:${log4jConfig(dir, 'format.log')}`, '-cp', `${runtime.lib}/*`, 'kafka.tools.StorageTool', 'format', `--cluster-id=${clusterId}`, '-c', props]);

  const broker: KafkaBroker = {
    brokers: [`127.0.0.1:${port}`],
    port,
    dir,
    pid: 0,
    async stop() {
      if (broker.pid) await stopPid(broker.pid, 30_000);
      broker.pid = 0;
    },
    async start() {
      const pid = javaProcess(runtime, dir, 'server.log', options.heapMb ?? 512, 'kafka.Kafka', [props]);
      broker.pid = pid;
      const deadline = Date.now() + 90_000;
      while (Date.now() < deadline) {
        if (!isAlive(pid)) throw new Error(`Kafka exited during start:\n${tail(join(dir, 'server.log'))}`);
        if ((await portOpen(port)) && readFileSync(join(dir, 'server.log'), 'utf8').includes('Kafka Server started')) return;
        await sleep(200);
      }
      await stopPid(pid);
      throw new Error(`Kafka did not start within 90 s:\n${tail(join(dir, 'server.log'))}`);
    },
  };
  // The log is appended on restart; "started" is looked for in the fresh part only.
  const start = broker.start;
  broker.start = async () => {
    rmSync(join(dir, 'server.log'), { force: true });
    await start();
  };
  await broker.start();
  return broker;
}

export interface KafkaConnect {
  url: string;
  pid: number;
  stop(): Promise<void>;
  /** Creates (or replaces) a connector and waits until it and its task run. */
  createConnector(name: string, config: Record<string, string>): Promise<void>;
  deleteConnector(name: string): Promise<void>;
}

/**
 * Kafka Connect in standalone mode (org.apache.kafka.connect.cli.ConnectStandalone) with
 * Debezium's MariaDB connector on its plugin path and the JSON converter (schemas enabled, nulls
 * kept as nulls: membermig's config says so with cdc.kafka.replace_null_with_default: false).
 * Connectors are added through its REST API.
 */
export async function startConnect(options: { dir: string; brokers: string[]; heapMb?: number }): Promise<KafkaConnect> {
  const runtime = await ensureKafkaRuntime();
  const dir = options.dir;
  mkdirSync(dir, { recursive: true });
  const restPort = await freePort();
  const props = join(dir, 'worker.properties');
  writeFileSync(
    props,
    [
      `bootstrap.servers=${options.brokers.join(',')}`,
      'key.converter=org.apache.kafka.connect.json.JsonConverter',
      'value.converter=org.apache.kafka.connect.json.JsonConverter',
      'key.converter.schemas.enable=true',
      'value.converter.schemas.enable=true',
      // Keep a NULL a null: by default the converter writes a nullable column's default instead.
      'value.converter.replace.null.with.default=false',
      `offset.storage.file.filename=${join(dir, 'connect.offsets')}`,
      'offset.flush.interval.ms=1000',
      `plugin.path=${runtime.plugins}`,
      'plugin.discovery=only_scan',
      `listeners=http://127.0.0.1:${restPort}`,
      'producer.linger.ms=5',
      '',
    ].join('\n'),
  );
  const pid = javaProcess(runtime, dir, 'connect.log', options.heapMb ?? 512, 'org.apache.kafka.connect.cli.ConnectStandalone', [props]);
  const url = `http://127.0.0.1:${restPort}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (!isAlive(pid)) throw new Error(`Kafka Connect exited during start:\n${tail(join(dir, 'connect.log'))}`);
    try {
      const res = await fetch(`${url}/connector-plugins`);
      if (res.ok) {
        const plugins = (await res.json()) as { class: string }[];
        if (!plugins.some((p) => p.class.includes('MariaDb'))) throw new Error(`Debezium's MariaDB connector is not on the plugin path ${runtime.plugins}`);
        break;
      }
    } catch (e) {
      if ((e as Error).message.includes('plugin path')) {
        await stopPid(pid);
        throw e;
      }
    }
    if (Date.now() > deadline) {
      await stopPid(pid);
      throw new Error(`Kafka Connect did not start within 120 s:\n${tail(join(dir, 'connect.log'))}`);
    }
    await sleep(250);
  }

  async function connectorState(name: string): Promise<{ connector: string; tasks: { state: string; trace?: string }[] } | null> {
    const res = await fetch(`${url}/connectors/${encodeURIComponent(name)}/status`);
    if (!res.ok) return null;
    const s = (await res.json()) as { connector: { state: string }; tasks: { state: string; trace?: string }[] };
    return { connector: s.connector.state, tasks: s.tasks };
  }

  return {
    url,
    pid,
    stop: () => stopPid(pid, 20_000),
    async createConnector(name, config) {
      const res = await fetch(`${url}/connectors/${encodeURIComponent(name)}/config`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name, ...config }),
      });
      if (!res.ok) throw new Error(`creating connector ${name} failed: ${res.status} ${await res.text()}`);
      const until = Date.now() + 60_000;
      for (;;) {
        const s = await connectorState(name);
        const failed = s?.tasks.find((t) => t.state === 'FAILED');
        if (failed) throw new Error(`connector ${name} failed: ${failed.trace?.slice(0, 3000)}`);
        if (s && s.connector === 'RUNNING' && s.tasks.length > 0 && s.tasks.every((t) => t.state === 'RUNNING')) return;
        if (Date.now() > until) throw new Error(`connector ${name} did not run within 60 s: ${JSON.stringify(s)}`);
        await sleep(250);
      }
    },
    async deleteConnector(name) {
      await fetch(`${url}/connectors/${encodeURIComponent(name)}`, { method: 'DELETE' });
    },
  };
}

/** The legacy MariaDB account Debezium reads the binlog with (what the connector documents it needs). */
export async function ensureDebeziumUser(
  exec: (sql: string) => Promise<unknown>,
  user = 'membermig_cdc',
  password = 'cdc-test-pass',
): Promise<{ user: string; password: string }> {
  await exec(`CREATE USER IF NOT EXISTS '${user}'@'127.0.0.1' IDENTIFIED BY '${password}'`);
  await exec(`GRANT SELECT, RELOAD, SHOW DATABASES, LOCK TABLES, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '${user}'@'127.0.0.1'`);
  return { user, password };
}

/**
 * A table Debezium captures only to show that it streams. A connector reported RUNNING may still
 * be in its snapshot: a table created meanwhile, before the snapshot's binlog position and after
 * its table list was read, is unknown to it, and its first row event stops the connector ("schema
 * isn't known to this connector"). An event of this table means the snapshot has passed that
 * point; changes to the schema are safe from then on. It must exist before the connector starts.
 */
export const CAPTURE_PROBE_TABLE = 'membermig_capture_probe';

export async function createCaptureProbe(exec: (sql: string) => Promise<unknown>, database: string): Promise<void> {
  await exec(`CREATE TABLE IF NOT EXISTS \`${database}\`.${CAPTURE_PROBE_TABLE} (id INT NOT NULL PRIMARY KEY, at DATETIME(6) NOT NULL)`);
}

/**
 * Writes probe rows (one a second: with snapshot.mode no_data a row written before the snapshot's
 * position is never sent) until one's change event is in Kafka: the connector streams.
 */
export async function waitUntilStreaming(
  exec: (sql: string) => Promise<unknown>,
  options: { database: string; brokers: string[]; topicPrefix: string; timeoutMs?: number },
): Promise<void> {
  const topic = `${options.topicPrefix}.${options.database}.${CAPTURE_PROBE_TABLE}`;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const { withKafkaAdmin } = await import('../cdc/kafka-admin.js');
  await withKafkaAdmin({ clientId: 'membermig-probe', brokers: options.brokers }, async (admin) => {
    // Connect creates the topic with the first event: until its partitions have a leader, 0.
    const messages = async () => {
      if (!(await admin.listTopics()).includes(topic)) return 0;
      return (await admin.fetchTopicOffsets(topic).catch(() => [])).reduce((n, p) => n + Number(p.high), 0);
    };
    const before = await messages();
    const deadline = Date.now() + timeoutMs;
    for (let probe = 0; ; probe++) {
      if (probe % 5 === 0) await exec(`REPLACE INTO \`${options.database}\`.${CAPTURE_PROBE_TABLE} VALUES (1, UTC_TIMESTAMP(6))`);
      await sleep(200);
      if ((await messages()) > before) return;
      if (Date.now() > deadline) throw new Error(`Debezium did not stream a probe row into ${topic} within ${timeoutMs / 1000} s: check the connector's status and Kafka Connect's log`);
    }
  });
}

/** Debezium MariaDB connector settings for one legacy database on a test server. */
export function debeziumMariaDbConfig(options: {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  topicPrefix: string;
  brokers: string[];
  serverId: number;
  partitions?: number;
  tables?: string[];
  /** initial (default): existing rows first, then the binlog; no_data: only changes from now on. */
  snapshotMode?: 'initial' | 'no_data';
}): Record<string, string> {
  return {
    'connector.class': 'io.debezium.connector.mariadb.MariaDbConnector',
    'tasks.max': '1',
    'database.hostname': options.host,
    'database.port': String(options.port),
    'database.user': options.user,
    'database.password': options.password,
    'database.server.id': String(options.serverId),
    'database.include.list': options.database,
    ...(options.tables ? { 'table.include.list': options.tables.map((t) => `${options.database}.${t}`).join(',') } : {}),
    'topic.prefix': options.topicPrefix,
    'schema.history.internal.kafka.bootstrap.servers': options.brokers.join(','),
    'schema.history.internal.kafka.topic': `${options.topicPrefix}.schema-history`,
    'snapshot.mode': options.snapshotMode ?? 'initial',
    // Read and keep the schema of the captured database only: other databases on the server (other
    // tests' ones, created and dropped meanwhile) are none of this connector's business.
    'schema.history.internal.store.only.captured.databases.ddl': 'true',
    'snapshot.locking.mode': 'none',
    'include.schema.changes': 'false',
    'topic.creation.default.replication.factor': '1',
    'topic.creation.default.partitions': String(options.partitions ?? 4),
    'poll.interval.ms': '100',
    'bigint.unsigned.handling.mode': 'precise',
    // Without this Debezium reads years 0-99 as 2000-2099 (MySQL two-digit years): 0001-01-01 would become 2001.
    'enable.time.adjuster': 'false',
  };
}
