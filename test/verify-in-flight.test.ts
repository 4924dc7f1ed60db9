import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSync } from '../src/cdc/sync.js';
import { createLogger, silentLogger } from '../src/log.js';
import { connectMysql } from '../src/mysql/connect.js';
import { sleep } from '../src/sandbox/kafka.js';
import { runVerify } from '../src/verify/index.js';
import { captureLegacy, kafkaServices, rewriteConfig, waitForMessages, type LegacyCapture } from './services/kafka-env.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';

const DDL = `CREATE TABLE member (
  member_id BIGINT NOT NULL PRIMARY KEY,
  name VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  points DECIMAL(18,2) NOT NULL
) ENGINE=InnoDB`;

/**
 * Verify while changes wait in Kafka for a sync that is not applying them yet (restarting, still
 * joining its group): the mirror shows no lag then, so the re-check alone would take them for
 * differences. Real Debezium, the shared broker, 4 shards.
 */
describe('verify with changes in Kafka that sync has not applied yet', () => {
  let env: TestEnv;
  let capture: LegacyCapture;
  let topic: string;
  let events = 0;

  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 4 });
    topic = `${env.prefix}.${env.legacyDb}.member`;
    rewriteConfig(env, { ...env.raw, cdc: { kafka: { brokers: kafkaServices().brokers, topic, group: `${env.prefix}-sync`, session_timeout_ms: 6000 } } });
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query(DDL);
    await legacy.query("INSERT INTO member VALUES (0, 'sentinel', 0)"); // the snapshot's row: streaming has begun once it is out
    await legacy.end();
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr + init.stdout).toBe(0);
    capture = await captureLegacy(env, ['member'], 2);
    events = await waitForMessages([topic], 1, 150_000);
    await change("INSERT INTO member SELECT seq, CONCAT('m', seq), seq / 100 FROM seq_1_to_200", 200);
    const caughtUp = await runSync(env.config, { logger: silentLogger, untilCaughtUp: true });
    expect(caughtUp.deadLetters.open).toBe(0);
  }, 240_000);

  afterAll(async () => {
    await capture?.stop();
    await env?.cleanup();
  });

  /** Runs a legacy statement and waits until Debezium has put its row events in the topic. */
  async function change(sql: string, rows: number): Promise<void> {
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query(sql);
    await legacy.end();
    events = await waitForMessages([topic], events + rows, 60_000);
  }

  function capturedLogs(): { logger: ReturnType<typeof createLogger>; text: () => string } {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    return { logger: createLogger('info', out), text: () => text };
  }

  it('a sync that starts after verify saw the mismatches mends them first: nothing is reported', async () => {
    await change('UPDATE member SET points = points + 1 WHERE member_id BETWEEN 1 AND 60', 60);
    const logs = capturedLogs();
    const verifying = runVerify(env.config, { logger: logs.logger, recheckAfterSeconds: 1 });
    // Well after verify's first re-check (1 s, no lag in the mirror) would have looked.
    await sleep(6000);
    const sync = await runSync(env.config, { logger: silentLogger, untilCaughtUp: true });
    const r = await verifying;
    expect(sync.eventsApplied).toBeGreaterThanOrEqual(60);
    expect(logs.text()).toContain('mismatch: re-checking after the delay');
    expect(r.differences).toEqual([]);
    expect(r.state).toBe('clean');
  }, 120_000);

  it('with no sync running, the wait gives up once and the differences are reported', async () => {
    await change("UPDATE member SET name = CONCAT(name, '!') WHERE member_id BETWEEN 100 AND 109", 10);
    const logs = capturedLogs();
    const started = Date.now();
    const r = await runVerify(env.config, { logger: logs.logger, recheckAfterSeconds: 1, inFlightWaitMs: 2000 });
    expect(r.state).toBe('differences');
    expect(r.tables[0]!.differences).toBe(10);
    expect(logs.text()).toContain('re-checks no longer wait for it (is sync running?)');
    expect(Date.now() - started).toBeLessThan(30_000);
    // Sync applies them; verify is clean again.
    await runSync(env.config, { logger: silentLogger, untilCaughtUp: true });
    expect((await runVerify(env.config, { logger: silentLogger, recheckAfterSeconds: 1 })).state).toBe('clean');
  }, 120_000);
});
