import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { readConnectors } from '../cdc/connect.js';
import { withKafkaAdmin } from '../cdc/kafka-admin.js';
import type { Logger } from '../log.js';
import { connectMysql } from '../mysql/connect.js';
import { CAPTURE_PROBE_TABLE, createCaptureProbe, debeziumMariaDbConfig, ensureDebeziumUser, startConnect, startKafka, stopPid, waitUntilStreaming } from './kafka.js';
import { isSandboxProcess } from './process.js';

/**
 * The sandbox's change capture: one Kafka broker and Kafka Connect running Debezium's MariaDB
 * connector on the legacy database, with the change topic created up front (so `sync` and the
 * start position `full` records work before the first change). Debezium captures changes from the
 * moment it starts (snapshot.mode no_data): rows already in the legacy table are `full`'s job.
 */
export interface SandboxKafka {
  brokers: string[];
  brokerPid: number;
  connectUrl: string;
  connectPid: number;
  connector: string;
  topic: string;
  running?: boolean;
}

export const TOPIC_PREFIX = 'legacy';
export const TOPIC_PARTITIONS = 4;
const CONNECTOR = 'legacy-memberdb';
// A sandbox-only account on a server that listens on 127.0.0.1 only.
const CDC_USER = { user: 'membermig_cdc', password: 'sandbox-cdc' };

export async function sandboxKafkaRunning(k: SandboxKafka, dir: string): Promise<boolean> {
  if (!isSandboxProcess(k.brokerPid, dir) || !isSandboxProcess(k.connectPid, dir)) return false;
  const [connector] = await readConnectors({ url: k.connectUrl, connectors: [k.connector] }, 3000);
  return connector!.problem === null;
}

/** Stops Connect, then the broker, by the PIDs the sandbox recorded; returns what was running. */
export async function stopSandboxKafka(k: SandboxKafka, dir: string): Promise<string[]> {
  const stopped: string[] = [];
  if (isSandboxProcess(k.connectPid, dir)) {
    await stopPid(k.connectPid, 20_000);
    stopped.push('kafka-connect');
  }
  if (isSandboxProcess(k.brokerPid, dir)) {
    await stopPid(k.brokerPid, 30_000);
    stopped.push('kafka');
  }
  return stopped;
}

export interface StartSandboxKafkaOptions {
  dir: string;
  previous: SandboxKafka | undefined;
  legacy: { url: string; port: number; database: string; table: string };
  logger: Logger;
}

/**
 * Reuses the broker and Connect when both still run with the connector up; otherwise stops what
 * is left of them and starts both fresh (a sandbox's topics are transient: rerun `full` or the demo).
 */
export async function startSandboxKafka(options: StartSandboxKafkaOptions): Promise<SandboxKafka> {
  const { dir, previous, legacy, logger } = options;
  if (previous && (await sandboxKafkaRunning(previous, dir))) {
    logger.info({ brokers: previous.brokers, connect: previous.connectUrl }, 'sandbox Kafka and Kafka Connect already running');
    return { ...previous, running: true };
  }
  if (previous) await stopSandboxKafka(previous, dir);
  const kafkaDir = join(dir, 'kafka');
  const connectDir = join(dir, 'connect');
  rmSync(kafkaDir, { recursive: true, force: true });
  rmSync(connectDir, { recursive: true, force: true });

  logger.info('starting Kafka (the first run fetches Kafka and Debezium with Maven, about a minute)');
  const broker = await startKafka({ dir: kafkaDir, partitions: TOPIC_PARTITIONS });
  try {
    logger.info({ brokers: broker.brokers }, 'sandbox Kafka started; starting Kafka Connect with Debezium');
    const connect = await startConnect({ dir: connectDir, brokers: broker.brokers });
    try {
      const topic = `${TOPIC_PREFIX}.${legacy.database}.${legacy.table}`;
      await createTopic(broker.brokers, topic);
      const conn = await connectMysql(legacy.url);
      const exec = (sql: string) => conn.query(sql);
      try {
        await ensureDebeziumUser(exec, CDC_USER.user, CDC_USER.password);
        await createCaptureProbe(exec, legacy.database);
      } finally {
        await conn.end();
      }
      await connect.createConnector(
        CONNECTOR,
        debeziumMariaDbConfig({
          host: '127.0.0.1',
          port: legacy.port,
          ...CDC_USER,
          database: legacy.database,
          topicPrefix: TOPIC_PREFIX,
          brokers: broker.brokers,
          serverId: 5400,
          partitions: TOPIC_PARTITIONS,
          tables: [legacy.table, CAPTURE_PROBE_TABLE],
          snapshotMode: 'no_data',
        }),
      );
      // The demo recreates the legacy table next: only once the connector streams is that safe.
      const probing = await connectMysql(legacy.url);
      try {
        await waitUntilStreaming((sql) => probing.query(sql), { database: legacy.database, brokers: broker.brokers, topicPrefix: TOPIC_PREFIX });
      } finally {
        await probing.end();
      }
      logger.info({ connector: CONNECTOR, topic }, 'Debezium is capturing the legacy database');
      return { brokers: broker.brokers, brokerPid: broker.pid, connectUrl: connect.url, connectPid: connect.pid, connector: CONNECTOR, topic, running: true };
    } catch (e) {
      await connect.stop();
      throw e;
    }
  } catch (e) {
    await broker.stop();
    throw e;
  }
}

async function createTopic(brokers: string[], topic: string): Promise<void> {
  await withKafkaAdmin({ clientId: 'membermig-sandbox', brokers }, async (admin) => {
    if (!(await admin.listTopics()).includes(topic)) {
      await admin.createTopics({ topics: [{ topic, numPartitions: TOPIC_PARTITIONS, replicationFactor: 1 }], waitForLeaders: true });
    }
  });
}
