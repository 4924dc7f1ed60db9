import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { freePort, startMariaDb, type MariaDbInstance } from '../src/sandbox/mariadb.js';
import { runCli, spawnCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { captureLegacy, kafkaClient, kafkaServices, rewriteConfig, settledMessageCount, waitForMessages, type LegacyCapture } from './services/kafka-env.js';
import { compareWithLegacy } from './support/compare.js';
import { execWithin } from './support/faults.js';
import { sleep, startKafka, type KafkaBroker } from '../src/sandbox/kafka.js';

/**
 * sync under failure, on real servers: kill -9 mid-batch, two processes in one group (rebalance),
 * a broker restart mid-stream, a shard server down. Every case ends compared row by row with the
 * legacy table: nothing lost, nothing duplicated, nothing in the wrong shard.
 */

const DDL = `CREATE TABLE member (
  member_id BIGINT NOT NULL PRIMARY KEY,
  name VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  points DECIMAL(18,2) NOT NULL,
  updated_at DATETIME(6) NOT NULL
) ENGINE=InnoDB`;

interface Child {
  proc: ChildProcess;
  stdout: string;
  stderr: string;
  exit: Promise<number>;
}

function startSync(configPath: string, ...args: string[]): Child {
  const proc = spawnCli(['sync', '--config', configPath, '--json', ...args]);
  const child: Child = { proc, stdout: '', stderr: '', exit: Promise.resolve(0) };
  proc.stdout!.on('data', (d: Buffer) => (child.stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (child.stderr += d.toString()));
  child.exit = new Promise((resolve) => proc.on('close', (code, signal) => resolve(code ?? (signal ? 128 : -1))));
  return child;
}

async function appliedEvents(env: TestEnv): Promise<number> {
  const conn = await connectMysql(env.config.control.url);
  try {
    const [rows] = await conn.query('SELECT COALESCE(SUM(applied_events), 0) AS n FROM cdc_offsets');
    return Number((rows as { n: string }[])[0]!.n);
  } finally {
    await conn.end();
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** A legacy member table captured by Debezium, a synced config for it, `init` done. */
async function capturedEnv(options: { batch: number; servers?: Record<string, unknown>; placement?: unknown[] }): Promise<{ env: TestEnv; capture: LegacyCapture; topic: string }> {
  const env = await createTestEnv({ shardCount: 8 });
  const topic = `${env.prefix}.${env.legacyDb}.member`;
  const raw = env.raw as { servers: Record<string, unknown>; shards: Record<string, unknown> };
  rewriteConfig(env, {
    ...env.raw,
    servers: { ...raw.servers, ...options.servers },
    shards: { ...raw.shards, ...(options.placement ? { placement: options.placement } : {}) },
    cdc: { kafka: { brokers: kafkaServices().brokers, topic, group: `${env.prefix}-sync`, max_batch_events: options.batch, partitions_concurrently: 2, session_timeout_ms: 6000, rebalance_timeout_ms: 10000 } },
  });
  const legacy = await connectMysql(env.legacyUrl);
  await legacy.query(DDL);
  // One row before the capture starts: once its snapshot read is out, later writes are streamed.
  await legacy.query("INSERT INTO member VALUES (0, 'sentinel', 0, '2024-01-01 00:00:00')");
  await legacy.end();
  const init = await runCli(['init', '--config', env.configPath]);
  expect(init.code, init.stderr + init.stdout).toBe(0);
  const capture = await captureLegacy(env, ['member'], 4);
  // Under a full parallel test run the shared Connect worker can take a while to snapshot.
  await waitForMessages([topic], 1, 150_000);
  return { env, capture, topic };
}

/** Inserts `count` members from `first` in statements of 200 rows; returns the number of row events. */
async function insertMembers(env: TestEnv, first: number, count: number): Promise<number> {
  const legacy = await connectMysql(env.legacyUrl);
  try {
    for (let i = 0; i < count; i += 200) {
      const rows = Array.from({ length: Math.min(200, count - i) }, (_, j) => {
        const id = first + i + j;
        return `(${id}, 'm${id}', ${id % 1000}.${String(id % 100).padStart(2, '0')}, '2024-01-01 00:00:00.${String(id % 1_000_000).padStart(6, '0')}')`;
      });
      await legacy.query(`INSERT INTO member VALUES ${rows.join(', ')}`);
    }
  } finally {
    await legacy.end();
  }
  return count;
}

/** Updates every member in [first, first+count) `rounds` times; returns the number of row events. */
async function updateMembers(env: TestEnv, first: number, count: number, rounds: number, pauseMs = 0): Promise<number> {
  const legacy = await connectMysql(env.legacyUrl);
  try {
    for (let r = 0; r < rounds; r++) {
      await legacy.query(`UPDATE member SET points = points + 1.01, name = CONCAT('r${r}-', member_id) WHERE member_id >= ? AND member_id < ?`, [first, first + count]);
      if (pauseMs > 0) await sleep(pauseMs);
    }
  } finally {
    await legacy.end();
  }
  return count * rounds;
}

async function syncStatus(env: TestEnv) {
  const res = await runCli(['status', '--config', env.configPath, '--json']);
  return JSON.parse(res.stdout).result.sync;
}

async function expectConverged(env: TestEnv): Promise<void> {
  const cmp = await compareWithLegacy(env, 'member', { key: 'member_id', shardKey: 'member_id' });
  expect(cmp.differences.slice(0, 10)).toEqual([]);
  expect(cmp.shardRows).toBe(cmp.legacyRows);
}

describe('membermig sync under failures', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });

  it('kill -9 in the middle of a stream, then a restart: converges with nothing lost', async () => {
    const { env, capture } = await capturedEnv({ batch: 25 });
    cleanups.push(() => env.cleanup(), () => capture.stop());
    const topic = `${env.prefix}.${env.legacyDb}.member`;
    let expected = 1 + (await insertMembers(env, 1, 1500));
    expected += await updateMembers(env, 1, 1500, 2);
    await waitForMessages([topic], expected);

    const first = startSync(env.configPath);
    await waitFor('some batches applied', async () => (await appliedEvents(env)) >= 200);
    first.proc.kill('SIGKILL');
    expect(await first.exit).toBe(128);
    const appliedBeforeKill = await appliedEvents(env);
    expect(appliedBeforeKill).toBeLessThan(expected); // killed mid-stream, not after the end

    // Bounded, so a rerun that never catches up fails with its log rather than the test's timeout.
    const rerun = await execWithin(['sync', '--config', env.configPath, '--json', '--until-caught-up'], 150_000);
    expect(rerun.hung, rerun.stderr.slice(-3000)).toBe(false);
    expect(rerun.code, rerun.stderr.slice(-2000)).toBe(0);
    await expectConverged(env);
  }, 300_000);

  it('two sync processes in one group split the partitions; a rebalance (join, then SIGTERM) loses and duplicates nothing', async () => {
    const { env, capture, topic } = await capturedEnv({ batch: 20 });
    cleanups.push(() => env.cleanup(), () => capture.stop());
    await insertMembers(env, 1, 200);
    const a = startSync(env.configPath, '--log-level', 'debug');
    await waitFor('process A applying', async () => (await appliedEvents(env)) > 0);
    const b = startSync(env.configPath, '--log-level', 'debug');
    // Changes keep flowing while B joins, so the group rebalances mid-stream and both get work.
    let writing = true;
    const writer = (async () => {
      while (writing) await updateMembers(env, 1, 200, 1, 100);
    })();
    try {
      await waitFor('both processes applying batches', async () => /batch committed/.test(b.stderr) && /batch committed/.test(a.stderr), 90_000);
    } finally {
      writing = false;
      await writer;
    }
    a.proc.kill('SIGTERM'); // A leaves mid-stream: B takes over its partitions
    expect(await a.exit, a.stderr.slice(-2000)).toBe(0);
    const aResult = JSON.parse(a.stdout).result;
    const total = await settledMessageCount([topic]);
    await waitFor('the group caught up', async () => {
      const status = JSON.parse((await runCli(['status', '--config', env.configPath, '--json'])).stdout).result;
      const parts = status.sync.partitions.filter((p: { group: string }) => p.group === `${env.prefix}-sync`);
      return parts.reduce((n: number, p: { nextOffset: number }) => n + p.nextOffset, 0) >= total;
    }, 150_000).catch((e) => {
      throw new Error(`${(e as Error).message}; B's log: ${b.stderr.split('\n').filter((l) => !l.includes('"level":20')).slice(-15).join('\n')}`);
    });
    b.proc.kill('SIGTERM');
    expect(await b.exit, b.stderr.slice(-2000)).toBe(0);
    const bResult = JSON.parse(b.stdout).result;
    expect(aResult.partitions.length).toBeGreaterThan(0);
    expect(bResult.partitions.length).toBeGreaterThan(0);
    // Between them they covered every partition.
    const covered = new Set([...aResult.partitions, ...bResult.partitions].map((p: { partition: number }) => p.partition));
    expect([...covered].sort()).toEqual([0, 1, 2, 3]);
    await expectConverged(env);
  }, 240_000);

  it('a shard table locked longer than the Kafka session: the write gives up in time, the member keeps its partitions', async () => {
    const { env, capture, topic } = await capturedEnv({ batch: 25 });
    cleanups.push(() => env.cleanup(), () => capture.stop());
    const group = `${env.prefix}-sync`;
    const child = startSync(env.configPath, '--log-level', 'warn');
    const admin = kafkaClient().admin();
    await admin.connect();
    try {
      await waitFor('the sentinel applied', async () => (await appliedEvents(env)) >= 1);
      const members = async () => (await admin.describeGroups([group])).groups[0]!.members.map((m) => m.memberId);
      await waitFor('one group member', async () => (await members()).length === 1);
      const before = await members();
      // The shard table of member 5 is locked: its write waits a third of the 6 s session, then the
      // server's writes are parked and replayed once the lock is gone.
      const at = (await import('../src/shard/map.js')).shardMapFromConfig(env.config).locate('5');
      const lock = await connectMysql(at.server.primary);
      await lock.query(`LOCK TABLES \`${at.database}\`.member WRITE`);
      try {
        await insertMembers(env, 5, 1);
        await waitForMessages([topic], 2);
        await sleep(13_000); // twice the 6 s session: a write still waiting would get the member dropped
      } finally {
        await lock.query('UNLOCK TABLES');
        await lock.end();
      }
      await waitFor('member 5 applied', async () => (await appliedEvents(env)) >= 2);
      // Applied counts its write when parked; the drainer writes it once the lock is gone.
      await waitFor('member 5 replayed from the parking lot', async () => (await syncStatus(env)).parked.length === 0);
      expect(await members()).toEqual(before);
      expect(child.stderr).not.toMatch(/not aware of this member|UNKNOWN_MEMBER_ID|rebalanc/i);
    } finally {
      await admin.disconnect();
      child.proc.kill('SIGTERM');
      await child.exit;
    }
    await expectConverged(env);
  }, 240_000);

  it('a broker restart in the middle of a stream: sync rides it out and converges', async () => {
    // A private broker, so the shared one keeps serving the other test files.
    const { env, capture, topic } = await capturedEnv({ batch: 25 });
    cleanups.push(() => env.cleanup(), () => capture.stop());
    const expected = 1 + (await insertMembers(env, 1, 600)) + (await updateMembers(env, 1, 600, 2));
    await waitForMessages([topic], expected);
    const dir = mkdtempSync(join(tmpdir(), 'membermig-kafka-'));
    const broker: KafkaBroker = await startKafka({ dir, partitions: 4 });
    cleanups.push(async () => {
      await broker.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    rewriteConfig(env, { ...env.raw, cdc: { kafka: { ...(env.raw.cdc as { kafka: object }).kafka, brokers: broker.brokers } } });
    // Real Debezium events, copied partition by partition onto the private broker in two halves.
    const copied = await copyTopic(topic, broker.brokers, 0.5);
    const child = startSync(env.configPath, '--log-level', 'debug');

    await waitFor('some batches applied', async () => (await appliedEvents(env)) > 0);
    await broker.stop();
    await sleep(1500);
    await broker.start();
    await copyTopic(topic, broker.brokers, 1, copied);
    await waitFor('the group caught up after the restart', async () => {
      const status = JSON.parse((await runCli(['status', '--config', env.configPath, '--json'])).stdout).result;
      return status.sync.partitions.reduce((n: number, p: { nextOffset: number }) => n + p.nextOffset, 0) >= expected;
    }, 180_000);
    child.proc.kill('SIGTERM');
    expect(await child.exit, child.stderr.slice(-2000)).toBe(0);
    await expectConverged(env);
  }, 240_000);

  it('a shard server down pauses only its writes, with backoff, and sync resumes by itself when it is back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'membermig-shard-c-'));
    const port = await freePort();
    let shardC: MariaDbInstance = await startMariaDb({ dir, port });
    cleanups.push(async () => {
      await shardC.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    const { env, capture, topic } = await capturedEnv({
      batch: 200,
      servers: { 'shard-c': { primary: shardC.url, dc: 'dc3' } },
      placement: [
        { shards: '0-2', server: 'shard-a' },
        { shards: '3-5', server: 'shard-b' },
        { shards: '6-7', server: 'shard-c' },
      ],
    });
    cleanups.push(() => env.cleanup(), () => capture.stop());
    const metricsPort = await freePort();
    const child = startSync(env.configPath, '--metrics-port', String(metricsPort));
    let expected = 1 + (await insertMembers(env, 1, 200));
    await waitFor('first rows applied', async () => (await appliedEvents(env)) >= expected);

    await shardC.stop();
    expected += await insertMembers(env, 1001, 200);
    await waitForMessages([topic], expected);
    const map = (await import('../src/shard/map.js')).shardMapFromConfig(env.config);
    const onHealthy = Array.from({ length: 200 }, (_, i) => 1001 + i).filter((id) => map.serverOf(map.shardOf(id)).name !== 'shard-c');
    // Rows for shard-a and shard-b arrive while shard-c is down.
    await waitFor('rows on the healthy servers', async () => (await countOnServers(env, onHealthy)) === onHealthy.length);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/membermig_sync_shard_server_down\{server="shard-c"\} 1/);
    expect(child.proc.exitCode).toBeNull();
    const parkedWhileDown = (await syncStatus(env)).parked;
    expect(parkedWhileDown).toEqual([{ server: 'shard-c', count: expect.any(Number) }]);
    expect(parkedWhileDown[0].count).toBeGreaterThan(0);
    // Stopped now, sync has not applied everything it took: exit 1, and the result says where writes wait.
    child.proc.kill('SIGTERM');
    expect(await child.exit, child.stderr.slice(-2000)).toBe(1);
    const stopped = JSON.parse(child.stdout);
    expect(stopped).toMatchObject({ ok: false, exitCode: 1, result: { stoppedBy: 'signal', parked: { 'shard-c': expect.any(Number) } } });
    expect(Object.keys(stopped.result.parked)).toEqual(['shard-c']);

    shardC = await startMariaDb({ dir, port });
    const restartedAt = Date.now();
    const again = startSync(env.configPath, '--metrics-port', String(metricsPort));
    await waitFor('parked writes replayed on shard-c', async () => (await syncStatus(env)).parked.length === 0, 60_000);
    // The replay needs no Kafka; a stop before the consumer has joined would end "before Kafka answered" (exit 1).
    await waitFor('the restarted sync consuming', async () =>
      (await syncStatus(env)).partitions.every((p: { reportedSecondsAgo: number }) => p.reportedSecondsAgo * 1000 < Date.now() - restartedAt),
    );
    expect(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()).toMatch(/membermig_sync_shard_server_down\{server="shard-c"\} 0/);
    again.proc.kill('SIGTERM');
    expect(await again.exit, again.stderr.slice(-2000)).toBe(0);
    expect(JSON.parse(again.stdout).result.parked).toEqual({});
    await expectConverged(env);
  }, 240_000);
});

/** Copies the first `fraction` of each partition of `topic` (shared broker) to the same partition on `brokers`, from `from`. */
async function copyTopic(topic: string, brokers: string[], fraction: number, from: Map<number, number> = new Map()): Promise<Map<number, number>> {
  const source = kafkaClient();
  const admin = source.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const want = new Map(ends.map((e) => [e.partition, Math.floor(Number(e.high) * fraction)]));
  const messages: { partition: number; key: Buffer | null; value: Buffer | null }[] = [];
  let pending = [...want].filter(([p, n]) => n > (from.get(p) ?? 0)).length;
  if (pending > 0) {
    const consumer = source.consumer({ groupId: `copy-${Math.random()}` });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            const offset = Number(message.offset);
            const end = want.get(partition)!;
            if (offset >= (from.get(partition) ?? 0) && offset < end) {
              messages.push({ partition, key: message.key, value: message.value });
              if (offset + 1 === end && --pending === 0) resolve();
            }
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();
  }
  const target = kafkaClient(brokers);
  const targetAdmin = target.admin();
  await targetAdmin.connect();
  if (!(await targetAdmin.listTopics()).includes(topic)) await targetAdmin.createTopics({ topics: [{ topic, numPartitions: ends.length }], waitForLeaders: true });
  await targetAdmin.disconnect();
  const producer = target.producer();
  await producer.connect();
  if (messages.length > 0) await producer.send({ topic, messages });
  await producer.disconnect();
  return new Map([...want].map(([p, n]) => [p, Math.max(n, from.get(p) ?? 0)]));
}

async function countOnServers(env: TestEnv, ids: number[]): Promise<number> {
  const { shardMapFromConfig } = await import('../src/shard/map.js');
  const map = shardMapFromConfig(env.config);
  let found = 0;
  for (const id of ids) {
    const shard = map.shardOf(id);
    const conn = await connectMysql(map.serverOf(shard).primary);
    try {
      const [rows] = await conn.query(`SELECT 1 FROM \`${map.databaseOf(shard)}\`.member WHERE member_id = ?`, [id]);
      found += (rows as unknown[]).length;
    } finally {
      await conn.end();
    }
  }
  return found;
}
