import { createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/sandbox/mariadb.js';
import { rewriteConfig } from './services/kafka-env.js';
import { runCli, spawnCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * sync whose Kafka brokers do not answer: kafkajs retries its start-up for minutes, and a stop
 * request was not heard until it gave up (then a bare "connect ECONNREFUSED"). A stop request now
 * ends the start-up at once, and the run says it never read anything (exit 1, not a clean stop).
 */
describe('membermig sync with Kafka unreachable at start-up', () => {
  let env: TestEnv;
  const brokerSockets: Socket[] = [];
  // Accepts connections and never answers: a broker host behind a dead proxy, a hung broker.
  const silentBroker = createServer((socket) => {
    brokerSockets.push(socket);
    socket.on('error', () => {});
  });

  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 2, legacySql: ['CREATE TABLE member (member_id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL) ENGINE=InnoDB'] });
    await new Promise<void>((resolve) => silentBroker.listen(0, '127.0.0.1', resolve));
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
  }, 120_000);
  afterAll(async () => {
    for (const s of brokerSockets) s.destroy();
    silentBroker.close();
    await env?.cleanup();
  });

  async function stopDuringStartUp(broker: string, signal: NodeJS.Signals): Promise<{ code: number | null; stopSeconds: number; stdout: string; stderr: string }> {
    rewriteConfig(env, { ...env.raw, cdc: { kafka: { brokers: [broker], topic: 'nowhere', group: 'g' } } });
    const child = spawnCli(['sync', '--config', env.configPath, '--json']);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    await new Promise((r) => setTimeout(r, 4000));
    const asked = Date.now();
    child.kill(signal);
    const code = await closed;
    return { code, stopSeconds: (Date.now() - asked) / 1000, stdout, stderr };
  }

  it('brokers refusing connections: SIGTERM during the start-up stops it within seconds; exit 1, nothing read', async () => {
    const r = await stopDuringStartUp(`127.0.0.1:${await freePort()}`, 'SIGTERM'); // taken, then let go: nobody listens there
    expect(r.stopSeconds).toBeLessThan(10);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).result).toMatchObject({ source: 'kafka', stoppedBy: 'signal', started: false, eventsApplied: 0 });
    expect(r.stderr).toContain('stopped before Kafka answered: nothing was consumed');
  }, 60_000);

  it('a broker that accepts connections and never answers: SIGINT stops the process within seconds (kafkajs retried for minutes)', async () => {
    const port = (silentBroker.address() as { port: number }).port;
    const r = await stopDuringStartUp(`127.0.0.1:${port}`, 'SIGINT');
    expect(brokerSockets.length).toBeGreaterThan(0);
    expect(r.stopSeconds).toBeLessThan(10);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, exitCode: 1, result: { stoppedBy: 'signal', started: false, eventsApplied: 0 } });
  }, 60_000);
});
