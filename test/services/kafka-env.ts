/**
 * Test-side helpers around the shared Kafka + Kafka Connect (started by test/global-setup.ts):
 * capture a test's legacy database with a real Debezium connector, wait for its events, and
 * compare the shards with the legacy tables row by row.
 */
import { writeFileSync } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import { inject } from 'vitest';
import { stringify } from 'yaml';
import { readConnectors } from '../../src/cdc/connect.js';
import { parseConfig } from '../../src/config/index.js';
import type { TestEnv } from '../support/env.js';
import { connectMysql } from '../../src/mysql/connect.js';
import { CAPTURE_PROBE_TABLE, createCaptureProbe, debeziumMariaDbConfig, sleep, waitUntilStreaming } from '../../src/sandbox/kafka.js';

export function kafkaServices() {
  return inject('kafka');
}

export function kafkaClient(brokers: string[] = kafkaServices().brokers): Kafka {
  return new Kafka({ clientId: 'membermig-test', brokers, logLevel: logLevel.NOTHING });
}

export interface LegacyCapture {
  /** Topic of each captured legacy table. */
  topics: Record<string, string>;
  connector: string;
  stop(): Promise<void>;
}

/**
 * Starts a Debezium MariaDB connector on the env's legacy database (snapshot, then binlog streaming).
 * `overrides` are connector settings on top (e.g. its own converter settings).
 */
export async function captureLegacy(env: TestEnv, tables: string[], partitions = 4, overrides: Record<string, string> = {}): Promise<LegacyCapture> {
  const { connectUrl, cdcUser, brokers } = kafkaServices();
  const legacy = new URL(env.urls.legacy);
  const connector = `${env.prefix}-legacy`;
  await onLegacy(env, (exec) => createCaptureProbe(exec, env.legacyDb));
  const config = debeziumMariaDbConfig({
    host: legacy.hostname,
    port: Number(legacy.port),
    user: cdcUser.user,
    password: cdcUser.password,
    database: env.legacyDb,
    topicPrefix: env.prefix,
    brokers,
    serverId: 10_000 + Math.floor(Math.random() * 1_000_000),
    partitions,
    tables: [...tables, CAPTURE_PROBE_TABLE],
  });
  const res = await fetch(`${connectUrl}/connectors/${connector}/config`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...config, ...overrides }),
  });
  if (!res.ok) throw new Error(`creating connector ${connector}: ${res.status} ${await res.text()}`);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const [health] = await readConnectors({ url: connectUrl, connectors: [connector] });
    if (health!.state === 'FAILED' || health!.tasks.some((t) => t.state === 'FAILED')) throw new Error(health!.problem!);
    if (health!.problem === null) break;
    if (Date.now() > deadline) throw new Error(`connector ${connector} did not start: ${health!.problem}`);
    await sleep(200);
  }
  // RUNNING comes before the snapshot ends: a table a test creates meanwhile would stop the connector.
  await onLegacy(env, (exec) => waitUntilStreaming(exec, { database: env.legacyDb, brokers, topicPrefix: env.prefix }));
  return {
    topics: Object.fromEntries(tables.map((t) => [t, `${env.prefix}.${env.legacyDb}.${t}`])),
    connector,
    stop: async () => {
      await fetch(`${connectUrl}/connectors/${connector}`, { method: 'DELETE' });
    },
  };
}

async function onLegacy<T>(env: TestEnv, work: (exec: (sql: string) => Promise<unknown>) => Promise<T>): Promise<T> {
  const conn = await connectMysql(env.legacyUrl);
  try {
    return await work((sql) => conn.query(sql));
  } finally {
    await conn.end();
  }
}

/** Sum of the partition ends of the topics (0 for a topic that does not exist yet). */
export async function messageCount(topics: string[], brokers?: string[]): Promise<number> {
  const admin = kafkaClient(brokers).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    let total = 0;
    for (const t of topics) {
      if (!existing.has(t)) continue;
      for (const p of await admin.fetchTopicOffsets(t)) total += Number(p.high);
    }
    return total;
  } finally {
    await admin.disconnect();
  }
}

/** Waits until the topics hold at least `expected` messages (what Debezium must have produced). */
export async function waitForMessages(topics: string[], expected: number, timeoutMs = 60_000, brokers?: string[]): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = await messageCount(topics, brokers).catch((e) => {
      if ((e as { retriable?: boolean }).retriable) return -1; // a new topic's leader is still being elected
      throw e;
    });
    if (n >= expected) return n;
    if (Date.now() > deadline) throw new Error(`expected ${expected} messages in ${topics.join(', ')}, found ${n} after ${timeoutMs} ms`);
    await sleep(200);
  }
}

/** Writes a new config for the env (same databases), e.g. with more tables or a cdc section. */
export function rewriteConfig(env: TestEnv, raw: Record<string, unknown>): void {
  writeFileSync(env.configPath, stringify(raw));
  env.config = parseConfig(stringify(raw), env.configPath);
  env.raw = raw;
}

/** Waits until Debezium has stopped adding messages to the topics (no change for `quietMs`); returns the count. */
export async function settledMessageCount(topics: string[], quietMs = 2000, brokers?: string[]): Promise<number> {
  let last = -1;
  let since = Date.now();
  for (;;) {
    const n = await messageCount(topics, brokers).catch(() => last);
    if (n !== last) {
      last = n;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return n;
    await sleep(200);
  }
}

/** Every message a topic holds now (waits until Debezium stops adding), parsed as JSON. */
export async function topicMessages(topic: string): Promise<{ partition: number; offset: string; key: unknown; value: unknown }[]> {
  const total = await settledMessageCount([topic], 2000);
  const seen: { partition: number; offset: string; key: unknown; value: unknown }[] = [];
  if (total === 0) return seen;
  const consumer = kafkaClient().consumer({ groupId: `peek-${process.pid}-${Date.now()}` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ partition, message }) => {
          const parse = (b: Buffer | null): unknown => (b ? JSON.parse(b.toString()) : null);
          seen.push({ partition, offset: message.offset, key: parse(message.key), value: parse(message.value) });
          if (seen.length >= total) resolve();
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return seen;
}
