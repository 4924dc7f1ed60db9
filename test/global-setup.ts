import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { startMariaDb, type MariaDbInstance } from '../src/sandbox/mariadb.js';
import { connectMysql } from '../src/mysql/connect.js';
import { ensureDebeziumUser, startConnect, startKafka, type KafkaBroker, type KafkaConnect } from '../src/sandbox/kafka.js';

/**
 * Real servers for the whole test run. MEMBERMIG_TEST_MYSQL_URL names one server to use for
 * every role; otherwise three private mariadbd instances start in a temp folder: the legacy
 * stand-in (which also holds the control store) and two shard hosts. They are stopped by the
 * PIDs started here.
 */
declare module 'vitest' {
  export interface ProvidedContext {
    mysql: { legacy: string; shardA: string; shardB: string };
    /** Shared Kafka (and Kafka Connect with Debezium's MariaDB connector) for the whole run. */
    kafka: { brokers: string[]; connectUrl: string; cdcUser: { user: string; password: string } };
  }
}

/**
 * Kafka: MEMBERMIG_TEST_KAFKA_BROKERS (comma-separated host:port) names a broker to use; otherwise
 * one KRaft broker starts here (fetched with Maven on first run, see src/sandbox/kafka.ts).
 * Kafka Connect (with Debezium) always starts here, against whichever broker is used, so the
 * end-to-end tests consume events real Debezium produced from real writes on the legacy server.
 */
async function startKafkaBroker(root: string, stops: (() => Promise<void>)[]): Promise<string[]> {
  const given = (process.env.MEMBERMIG_TEST_KAFKA_BROKERS ?? '').split(',').map((b) => b.trim()).filter(Boolean);
  if (given.length > 0) return given;
  const broker: KafkaBroker = await startKafka({ dir: join(root, 'kafka') });
  stops.push(() => broker.stop());
  return broker.brokers;
}

async function startKafkaServices(root: string, legacyUrl: string, brokersStarting: Promise<string[]>, stops: (() => Promise<void>)[]): Promise<TestProjectKafka> {
  const brokers = await brokersStarting;
  const connect: KafkaConnect = await startConnect({ dir: join(root, 'connect'), brokers });
  stops.push(() => connect.stop());
  const conn = await connectMysql(legacyUrl);
  try {
    const cdcUser = await ensureDebeziumUser((sql) => conn.query(sql));
    return { brokers, connectUrl: connect.url, cdcUser };
  } finally {
    await conn.end();
  }
}
type TestProjectKafka = { brokers: string[]; connectUrl: string; cdcUser: { user: string; password: string } };

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.MEMBERMIG_TEST_MYSQL_URL;
  const root = mkdtempSync(join(tmpdir(), 'membermig-test-'));
  const kafkaStops: (() => Promise<void>)[] = [];
  const stopKafka = async (): Promise<void> => {
    for (const stop of kafkaStops.reverse()) await stop();
  };
  if (external) {
    project.provide('mysql', { legacy: external, shardA: external, shardB: external });
    try {
      project.provide('kafka', await startKafkaServices(root, external, startKafkaBroker(root, kafkaStops), kafkaStops));
    } catch (e) {
      await stopKafka();
      throw e;
    }
    return async () => {
      await stopKafka();
      rmSync(root, { recursive: true, force: true });
    };
  }
  const started: MariaDbInstance[] = [];
  // The broker starts beside the MariaDB servers (both take a few seconds).
  const brokersStarting = startKafkaBroker(root, kafkaStops);
  brokersStarting.catch(() => {});
  // In UTC whatever the host's zone: tests write control-store times through plain connections,
  // which membermig reads in its UTC sessions (src/store/control.ts).
  const utc = ['--default-time-zone=+00:00'];
  const results = await Promise.allSettled([
    startMariaDb({ dir: join(root, 'legacy'), binlog: true, serverId: 1, extraArgs: utc }),
    startMariaDb({ dir: join(root, 'shard-a'), extraArgs: utc }),
    startMariaDb({ dir: join(root, 'shard-b'), extraArgs: utc }),
  ]);
  for (const r of results) if (r.status === 'fulfilled') started.push(r.value);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const stopAll = async (): Promise<void> => {
    await brokersStarting.catch(() => {});
    await stopKafka();
    await Promise.all(started.map((s) => s.stop()));
  };
  if (failed) {
    // Stop what did start: a failed setup must not leave servers behind.
    await stopAll();
    throw failed.reason;
  }
  const [legacy, shardA, shardB] = started as [MariaDbInstance, MariaDbInstance, MariaDbInstance];
  project.provide('mysql', { legacy: legacy.url, shardA: shardA.url, shardB: shardB.url });
  try {
    project.provide('kafka', await startKafkaServices(root, legacy.url, brokersStarting, kafkaStops));
  } catch (e) {
    await stopAll();
    throw e;
  }
  return async () => {
    await stopKafka();
    await Promise.all(started.map((s) => s.stop()));
    rmSync(root, { recursive: true, force: true });
  };
}
