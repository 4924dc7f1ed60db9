import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/sandbox/mariadb.js';
import { rewriteConfig } from './services/kafka-env.js';
import { runCli, spawnCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * sync whose Kafka brokers refuse connections: kafkajs retries its start-up for about two minutes,
 * and SIGTERM was not heard until it gave up (then a bare "connect ECONNREFUSED"). A stop request
 * now ends the start-up at once.
 */
describe('membermig sync with Kafka unreachable at start-up', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 2, legacySql: ['CREATE TABLE member (member_id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL) ENGINE=InnoDB'] });
    const port = await freePort(); // taken, then let go: nobody listens there
    rewriteConfig(env, { ...env.raw, cdc: { kafka: { brokers: [`127.0.0.1:${port}`], topic: 'nowhere', group: 'g' } } });
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
  }, 120_000);
  afterAll(async () => env?.cleanup());

  it('SIGTERM during the start-up stops it within seconds, as a signal-stopped run (exit 0)', async () => {
    const child = spawnCli(['sync', '--config', env.configPath, '--json', '--log-level', 'error']);
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.resume();
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    await new Promise((r) => setTimeout(r, 4000));
    const asked = Date.now();
    child.kill('SIGTERM');
    expect(await closed).toBe(0);
    expect(Date.now() - asked).toBeLessThan(10_000);
    expect(JSON.parse(stdout).result).toMatchObject({ source: 'kafka', stoppedBy: 'signal', eventsApplied: 0 });
  }, 60_000);
});
