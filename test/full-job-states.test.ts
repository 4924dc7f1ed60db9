import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaStartOffsets } from '../src/cdc/kafka-start.js';
import { connectMysql } from '../src/mysql/connect.js';
import { execCli, runCli, signalledAtStart } from './support/cli.js';
import { createCopyEnv, writeConfig } from './support/copy-env.js';
import type { TestEnv } from './support/env.js';
import { createMemberTable } from './support/nasty.js';
import { kafkaClient, kafkaServices } from './services/kafka-env.js';

const ROWS = 600;
const CHUNK = 60;

async function q(env: TestEnv, sql: string, values: unknown[] = []): Promise<RowDataPacket[]> {
  const conn = await connectMysql(env.config.control.url);
  try {
    const [rows] = await conn.query<RowDataPacket[]>(sql, values);
    return rows;
  } finally {
    await conn.end();
  }
}

/** The job as a planner killed (or stopped) mid-planning leaves it, after chunks 0..last were planned and copied. */
async function plannerStoppedAfter(env: TestEnv, last: number): Promise<number> {
  const [job] = await q(env, "SELECT id FROM jobs WHERE kind = 'full' AND state <> 'abandoned'");
  await q(env, "UPDATE jobs SET state = 'planning' WHERE id = ?", [job!.id]);
  await q(env, 'DELETE FROM chunks WHERE job_id = ? AND chunk_no > ?', [job!.id, last]);
  return Number(job!.id);
}

/**
 * What a full job is, between runs: planned to the end or not, which start positions it keeps,
 * and when a rerun may copy. Each case came from a review of the copy path (2026-11-29).
 */
describe('full: a job between runs', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createCopyEnv({
      shardCount: 4,
      tables: (db) => ({ member: { source: `${db}.member`, target: 'member', shard_key: 'member_id' } }),
      extra: { copy: { chunk_rows: CHUNK, workers: 2, lease_seconds: 30 } },
    });
    await createMemberTable(env.legacyUrl, ROWS);
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
  });
  afterAll(async () => env?.cleanup());

  it('is not done while its planning has not reached the end, though every chunk planned so far is copied', async () => {
    const first = await execCli(['full', '--config', env.configPath, '--json']);
    expect(first.code, first.stderr).toBe(0);
    const jobId = await plannerStoppedAfter(env, 1); // 2 of 11 chunks: most of the key range has none
    // A SIGTERM while the next run starts: it starts stopped, plans nothing, copies nothing. It said done, exit 0.
    const stopped = await signalledAtStart(['full', '--config', env.configPath, '--json'], 'SIGTERM');
    const result = JSON.parse(stopped.stdout).result;
    expect([stopped.code, result.state]).toEqual([1, 'incomplete']);
    expect((await q(env, 'SELECT state FROM jobs WHERE id = ?', [jobId]))[0]!.state).toBe('planning');
    // A rerun plans the rest and copies it.
    const rerun = await execCli(['full', '--config', env.configPath, '--json']);
    expect(rerun.code, rerun.stderr).toBe(0);
    const done = JSON.parse(rerun.stdout).result;
    const planned = Number((await q(env, 'SELECT COUNT(*) AS n FROM chunks WHERE job_id = ?', [jobId]))[0]!.n);
    expect(planned).toBeGreaterThan(2);
    expect([done.state, done.jobId, done.tables[0].chunks]).toEqual(['done', jobId, planned]);
  }, 120_000);

  it('--restart waits out a process of the old job that may still be writing: half a lease, then its longest write', async () => {
    // A process elsewhere, silent for 117 s: past a lease (30 s), but a write it began before its fence
    // (half a lease without a renewal) may run twice the writer's lock wait (100 s) more.
    const [job] = await q(env, "SELECT id FROM jobs WHERE kind = 'full' AND state = 'done'");
    await q(env, "INSERT INTO workers (id, job_id, command, host, pid, heartbeat_at) VALUES ('elsewhere:1:x', ?, 'full', 'elsewhere', 1, NOW(6) - INTERVAL 117 SECOND)", [job!.id]);
    try {
      const restart = await execCli(['full', '--restart', '--config', env.configPath, '--json']);
      expect(restart.code, restart.stderr).toBe(0);
      expect(restart.stderr).toContain('--restart: waiting for the processes still copying the earlier job to stop');
      expect(JSON.parse(restart.stdout).result.state).toBe('done');
    } finally {
      await q(env, "DELETE FROM workers WHERE id = 'elsewhere:1:x'");
    }
  }, 120_000);

  it('a job with chunks left is not copied further while a sync runs (older rows over newer ones); dry run alike', async () => {
    const jobId = await plannerStoppedAfter(env, 3);
    await q(env, "INSERT INTO cdc_offsets (consumer_group, topic, partition_no, next_offset) VALUES ('job-states', 't', 0, 5)");
    try {
      for (const extra of [[], ['--dry-run']]) {
        const refused = await runCli(['full', '--config', env.configPath, ...extra]);
        expect(refused.code, refused.stderr).toBe(2);
        expect(refused.stderr).toMatch(/copying the chunks this job has left while sync runs \(consumer group job-states reported \d+ s ago\)/);
      }
      expect(Number((await q(env, 'SELECT COUNT(*) AS n FROM chunks WHERE job_id = ?', [jobId]))[0]!.n)).toBe(4);
      // Once the sync's last report is older than a running sync's: the rerun finishes the job.
      await q(env, "UPDATE cdc_offsets SET updated_at = NOW(6) - INTERVAL 60 SECOND WHERE consumer_group = 'job-states'");
      const rerun = await execCli(['full', '--config', env.configPath, '--json']);
      expect(rerun.code, rerun.stderr).toBe(0);
      // A job already done is left alone whether or not a sync runs (nothing is copied).
      await q(env, "UPDATE cdc_offsets SET updated_at = NOW(6) WHERE consumer_group = 'job-states'");
      const again = await runCli(['full', '--config', env.configPath, '--json']);
      expect([again.code, JSON.parse(again.stdout).result.state]).toEqual([0, 'done']);
    } finally {
      await q(env, "DELETE FROM cdc_offsets WHERE consumer_group = 'job-states'");
    }
  }, 120_000);

  it('a resumed planner records no start position later than the chunks already copied (a Kafka that did not answer at first)', async () => {
    const { brokers } = kafkaServices();
    const topic = `${env.prefix}.changes`;
    const admin = kafkaClient().admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
    await admin.disconnect();
    await q(env, "UPDATE jobs SET state = 'abandoned' WHERE kind = 'full'");

    // Run 1: Kafka does not answer (best effort: only the source position is recorded); its planner stops after chunk 5.
    env.raw = { ...env.raw, cdc: { kafka: { brokers: ['127.0.0.1:1'], topic, group: `${env.prefix}-g` } } };
    writeConfig(env);
    const first = await execCli(['full', '--config', env.configPath, '--json']);
    expect(first.code, first.stderr).toBe(0);
    const jobId = await plannerStoppedAfter(env, 5);
    expect((await q(env, 'SELECT source_kind FROM cdc_start_positions WHERE job_id = ?', [jobId])).map((r) => r.source_kind)).toEqual(['mysql']);

    // Changes to rows of chunks 0-5, already copied, reach the change topic.
    const producer = kafkaClient().producer();
    await producer.connect();
    await producer.send({ topic, messages: Array.from({ length: 5 }, (_, i) => ({ key: String(i), value: `change ${i}` })) });
    await producer.disconnect();

    // Run 2: Kafka answers now; it goes on planning the same job. It recorded the topic's end (offset 5) then.
    env.raw = { ...env.raw, cdc: { kafka: { brokers, topic, group: `${env.prefix}-g` } } };
    writeConfig(env);
    const second = await execCli(['full', '--config', env.configPath, '--json']);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout).result.jobId).toBe(jobId);
    const rows = await q(env, 'SELECT job_id AS jobId, source_kind AS kind, position FROM cdc_start_positions WHERE job_id = ?', [jobId]);
    expect(rows.map((r) => r.kind)).toEqual(['mysql']);
    // No Kafka position: a new consumer group reads the topic from its start, the 5 changes included.
    const starts = kafkaStartOffsets(rows.map((r) => ({ jobId: r.jobId, kind: r.kind, position: r.position })), topic);
    expect(starts.find((s) => s.partition === 0)?.offset ?? '0').toBe('0');
  }, 180_000);

  it('sync is refused while a full copy of its tables has chunks left (the mirror of full refusing a running sync)', async () => {
    const jobId = await plannerStoppedAfter(env, 2);
    const refused = await runCli(['sync', '--until-caught-up', '--config', env.configPath]);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain(`sync while full copy job ${jobId} (member) has work left (still planning its chunks) would apply changes the copy may then overwrite`);
    expect(Number((await q(env, 'SELECT COUNT(*) AS n FROM cdc_offsets'))[0]!.n)).toBe(0); // nothing consumed, nothing applied
    const rerun = await execCli(['full', '--config', env.configPath, '--json']);
    expect(rerun.code, rerun.stderr).toBe(0);
    const after = await runCli(['sync', '--until-caught-up', '--config', env.configPath]);
    expect(after.stderr).not.toContain('sync while full copy job');
    expect(after.code).not.toBe(2);
  }, 180_000);
});
