import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../src/config/index.js';
import { renderStep } from '../src/cli/commands/sandbox.js';
import { renderJson } from '../src/cli/render.js';
import { runDemo, type DemoResult } from '../src/sandbox/demo.js';
import { captureLegacy, kafkaClient, kafkaServices, type LegacyCapture } from './services/kafka-env.js';
import { compareWithLegacy } from './support/compare.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * The demo's runbook end to end on the test servers: real Debezium on the legacy stand-in, the
 * shared Kafka, 8 shards on two servers; 2,000 seeded members and a writer changing them through
 * the whole cutover. Its final status must say clean, and the shards must equal the legacy table
 * row by row.
 */
describe('membermig sandbox demo: the whole cutover on 2,000 members', () => {
  let env: TestEnv;
  let capture: LegacyCapture;
  let result: DemoResult;
  const printed: string[] = [];

  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 8 });
    const topic = `${env.prefix}.${env.legacyDb}.member`;
    // The topic's name comes from the env's database prefix, so the cdc section is added after.
    // The gates ask Kafka Connect about the connector captureLegacy starts (named after the prefix), as the sandbox's config does.
    const connect = { url: kafkaServices().connectUrl, connectors: [`${env.prefix}-legacy`] };
    env.raw = { ...env.raw, cdc: { kafka: { brokers: kafkaServices().brokers, topic, group: `${env.prefix}-sync`, connect } }, verify: { recheck_after_seconds: 2 } };
    env.config = parseConfig(stringify(env.raw), env.configPath);
    // The sandbox creates its topic up front; so does this test (Debezium would only at the first change).
    const admin = kafkaClient().admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 4, replicationFactor: 1 }], waitForLeaders: true });
    await admin.disconnect();
    capture = await captureLegacy(env, ['member']);
    result = await runDemo(env.config, { rows: 2000, writesPerSecond: 40, onStep: (s) => printed.push(renderStep(printed.length + 1, s)) });
  }, 180_000);

  afterAll(async () => {
    await capture?.stop();
    await env?.cleanup();
  });

  it('runs every step of the runbook and ends clean', () => {
    const failed = result.steps.find((s) => !s.ok);
    expect(failed, failed ? `${failed.title}: ${failed.error ?? JSON.stringify(failed.result).slice(0, 2000)}` : '').toBeUndefined();
    expect(result.ok).toBe(true);
    expect(result.steps.map((s) => s.command)).toEqual([
      '(seed 2000 members into ' + `${env.legacyDb}.member)`,
      'membermig init',
      "(wait for the writer's changes in Kafka)",
      'membermig full',
      'membermig sync --until-caught-up',
      'membermig verify',
      'membermig shim set member dual_legacy_primary',
      'membermig gray set member --read 1% --write 1%',
      'membermig verify',
      'membermig gray set member --read 10% --write 10%',
      'membermig verify',
      'membermig gray set member --read 50% --write 50%',
      'membermig verify',
      'membermig gray set member --read 100% --write 100%',
      '(stop the writer)',
      'membermig sync (running since the first catch-up)',
      'membermig verify',
      'membermig status',
    ]);
    // Each step was printed with its command's renderer and its time.
    expect(printed).toHaveLength(result.steps.length);
    expect(printed[2]).toMatch(/change events in .* so far/);
    expect(printed[3]).toMatch(/full copy job \d+ \(member\): done/);
    expect(printed.at(-1)).toMatch(/member +done \d+\/\d+ chunks, \d+ rows +0 events, \d+\.\d s +clean, 0 differences, .* \(all rows\) +dual_legacy_primary +100% \/ 100% +0 +0 +0/);
  });

  it('kept changing members the whole time, shard-key changes included, and the gates passed unforced', () => {
    const writer = result.steps.find((s) => s.kind === 'writer')!.result as { inserts: number; updates: number; keyChanges: number; deletes: number; errors: number };
    expect(writer.errors).toBe(0);
    expect(writer.inserts).toBeGreaterThan(0);
    expect(writer.updates).toBeGreaterThan(0);
    expect(writer.keyChanges).toBeGreaterThan(0);
    expect(writer.deletes).toBeGreaterThan(0);
    for (const s of result.steps.filter((x) => x.kind === 'gray' || x.kind === 'shim')) {
      const change = s.result as { forced: boolean; gates: { gate: string; ok: boolean; message: string }[] };
      expect(change.forced).toBe(false);
      expect(change.gates.length).toBeGreaterThan(0);
      expect(change.gates.every((g) => g.ok)).toBe(true);
      expect(change.gates.find((g) => g.gate === 'sync_lag')!.message).toContain(`; connectors ${env.prefix}-legacy running`);
    }
  });

  it('final JSON status: verify clean, sync caught up, gray 100%, nothing open', () => {
    const json = JSON.parse(renderJson({ command: 'sandbox demo', ok: result.ok, result }));
    const status = json.result.status;
    expect(status.control.reachable).toBe(true);
    const verify = status.verify.latest.find((v: { table: string }) => v.table === 'member');
    expect(verify.state).toBe('clean');
    expect(verify.differences).toBe(0);
    expect(verify.rowsSource).toBe(verify.rowsTarget);
    expect(status.sync.maxLagMessages).toBe(0);
    expect(status.sync.deadLetters.open).toBe(0);
    const gray = status.gray.tables.find((t: { table: string }) => t.table === 'member');
    expect(gray).toMatchObject({ mode: 'dual_legacy_primary', readBp: 10_000, writeBp: 10_000 });
    expect(status.verify.repairQueue.every((q: { open: number }) => q.open === 0)).toBe(true);
    expect(status.fullCopy.jobs[0]).toMatchObject({ state: 'done', chunksLeft: 0, rejectedValues: 0 });
    // The per-table line status shows first, and CI gates read.
    expect(status.perTable).toHaveLength(1);
    expect(status.perTable[0]).toMatchObject({
      table: 'member',
      fullCopy: { state: 'done', chunksFailed: 0 },
      sync: { lagEvents: 0 },
      lastVerify: { state: 'clean', differences: 0, scope: 'all rows' },
      shimMode: 'dual_legacy_primary',
      grayRead: '100%',
      grayWrite: '100%',
      deadLettersOpen: 0,
      repairQueueOpen: 0,
      leasedChunks: 0,
    });
    expect(status.perTable[0].sync.appliedEvents).toBeGreaterThan(0);
    // Caught up: the lag is how long ago sync last said so, within the gray gate's limit.
    expect(status.perTable[0].sync.lagSeconds).toBeLessThanOrEqual(60);
  });

  it('the shards hold exactly the legacy rows, each in its shard', async () => {
    const c = await compareWithLegacy(env, 'member', { key: 'member_id', shardKey: 'member_id' });
    expect(c.differences.slice(0, 10)).toEqual([]);
    expect(c.shardRows).toBe(c.legacyRows);
    expect(c.legacyRows).toBeGreaterThan(2000 - 200);
  });
});
