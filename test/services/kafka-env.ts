/**
 * Test-side helpers around the shared Kafka + Kafka Connect (started by test/global-setup.ts):
 * capture a test's legacy database with a real Debezium connector, wait for its events, and
 * compare the shards with the legacy tables row by row.
 */
import { writeFileSync } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import { inject } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/index.js';
import { connectMysql } from '../../src/mysql/connect.js';
import { shardMapFromConfig } from '../../src/shard/map.js';
import type { TestEnv } from '../support/env.js';
import { debeziumMariaDbConfig, sleep } from '../../src/sandbox/kafka.js';

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

/** Starts a Debezium MariaDB connector on the env's legacy database (snapshot, then binlog streaming). */
export async function captureLegacy(env: TestEnv, tables: string[], partitions = 4): Promise<LegacyCapture> {
  const { connectUrl, cdcUser, brokers } = kafkaServices();
  const legacy = new URL(env.urls.legacy);
  const connector = `${env.prefix}-legacy`;
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
    tables,
  });
  const res = await fetch(`${connectUrl}/connectors/${connector}/config`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(config),
  });
  if (!res.ok) throw new Error(`creating connector ${connector}: ${res.status} ${await res.text()}`);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const s = (await (await fetch(`${connectUrl}/connectors/${connector}/status`)).json()) as { connector?: { state: string }; tasks?: { state: string; trace?: string }[] };
    const failed = s.tasks?.find((t) => t.state === 'FAILED');
    if (failed) throw new Error(`connector ${connector} failed: ${failed.trace?.slice(0, 2000)}`);
    if (s.connector?.state === 'RUNNING' && s.tasks?.length && s.tasks.every((t) => t.state === 'RUNNING')) break;
    if (Date.now() > deadline) throw new Error(`connector ${connector} did not start: ${JSON.stringify(s)}`);
    await sleep(200);
  }
  return {
    topics: Object.fromEntries(tables.map((t) => [t, `${env.prefix}.${env.legacyDb}.${t}`])),
    connector,
    stop: async () => {
      await fetch(`${connectUrl}/connectors/${connector}`, { method: 'DELETE' });
    },
  };
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

type TextRow = Record<string, string | null>;

function textRow(row: Record<string, unknown>): TextRow {
  const out: TextRow = {};
  for (const [k, v] of Object.entries(row)) out[k] = v === null ? null : Buffer.isBuffer(v) ? `0x${v.toString('hex')}` : String(v);
  return out;
}

export interface Comparison {
  legacyRows: number;
  shardRows: number;
  /** One line per difference: missing, extra, different, or in the wrong shard. */
  differences: string[];
}

/** Every legacy row must be in its shard (by the shard map) with equal values, and no shard row may be extra. */
export async function compareWithLegacy(env: TestEnv, table: string, options: { key: string; shardKey: string }): Promise<Comparison> {
  const legacy = await connectMysql(env.legacyUrl);
  const expected = new Map<string, TextRow>();
  try {
    const [rows] = await legacy.query(`SELECT * FROM \`${table}\``);
    for (const r of rows as Record<string, unknown>[]) expected.set(String(r[options.key]), textRow(r));
  } finally {
    await legacy.end();
  }
  const map = shardMapFromConfig(env.config);
  const differences: string[] = [];
  const seen = new Set<string>();
  let shardRows = 0;
  for (const server of map.servers()) {
    const conn = await connectMysql(server.primary);
    try {
      for (const shard of map.shardsOn(server.name)) {
        const db = map.databaseOf(shard);
        const [rows] = await conn.query(`SELECT * FROM \`${db}\`.\`${table}\``);
        for (const raw of rows as Record<string, unknown>[]) {
          shardRows++;
          const row = textRow(raw);
          const key = row[options.key]!;
          const want = expected.get(key);
          if (!want) differences.push(`extra ${table} ${key} in shard ${shard}`);
          else if (JSON.stringify(want) !== JSON.stringify(row)) differences.push(`different ${table} ${key}: legacy ${JSON.stringify(want)} shard ${JSON.stringify(row)}`);
          if (map.shardOf(row[options.shardKey]!) !== shard) differences.push(`${table} ${key} in shard ${shard}, belongs in ${map.shardOf(row[options.shardKey]!)}`);
          if (seen.has(key)) differences.push(`${table} ${key} is in more than one shard`);
          seen.add(key);
        }
      }
    } finally {
      await conn.end();
    }
  }
  for (const key of expected.keys()) if (!seen.has(key)) differences.push(`missing ${table} ${key}`);
  return { legacyRows: expected.size, shardRows, differences };
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
