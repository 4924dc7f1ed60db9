import type { ChildProcess } from 'node:child_process';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { captureLegacy, kafkaServices, rewriteConfig, waitForMessages, type LegacyCapture } from './services/kafka-env.js';
import { runCli, spawnCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * Two sync processes in one group. One stalls between fetching a change and writing it, longer than
 * the session timeout (here: its control-store look-up waits on a table lock, then the process is
 * frozen); the group hands its partition to the other, which applies that change and a newer one.
 * When the stalled process goes on, it must not write the older row over the newer (an operator
 * review saw this: a persistent difference that only verify found).
 */
describe('membermig sync: a process that lost its partition while stalled writes nothing', () => {
  let env: TestEnv;
  let capture: LegacyCapture;
  let topic: string;
  let messages = 0;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 2, legacySql: ['CREATE TABLE member (member_id BIGINT NOT NULL PRIMARY KEY, note VARCHAR(20) NOT NULL) ENGINE=InnoDB', "INSERT INTO member VALUES (1, 'v0')"] });
    topic = `${env.prefix}.${env.legacyDb}.member`;
    rewriteConfig(env, {
      ...env.raw,
      cdc: { kafka: { brokers: kafkaServices().brokers, topic, group: `${env.prefix}-fence`, session_timeout_ms: 6000, rebalance_timeout_ms: 6000 } },
    });
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
    capture = await captureLegacy(env, ['member'], 1);
    messages = await waitForMessages([topic], 1);
  }, 180_000);
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) (c.kill('SIGCONT'), c.kill('SIGKILL'));
    await capture?.stop();
    await env?.cleanup();
  });

  const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 60_000) => {
    for (const deadline = Date.now() + timeoutMs; !(await check()); ) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  it('the stalled process finds it is no longer a member before its first write, and writes nothing', async () => {
    const at = shardMapFromConfig(env.config).locate('1');
    const shard = await connectMysql(at.server.primary);
    const legacy = await connectMysql(env.legacyUrl);
    const control = await connectMysql(env.config.control.url);
    const note = async () => ((await shard.query<RowDataPacket[]>(`SELECT note FROM \`${at.database}\`.member WHERE member_id = 1`))[0][0]?.note as string | undefined) ?? null;
    const start = () => {
      const child = spawnCli(['sync', '--config', env.configPath, '--log-level', 'warn']);
      child.stderr!.on('data', () => {});
      child.stdout!.on('data', () => {});
      children.push(child);
      return child;
    };
    try {
      const stalled = start();
      await until('the first process to apply the snapshot', async () => (await note()) === 'v0');

      // Its next change waits in a control-store look-up (repair_queue, locked here) before any shard write.
      await control.query('LOCK TABLES repair_queue WRITE');
      await legacy.query("UPDATE member SET note = 'v1' WHERE member_id = 1");
      messages = await waitForMessages([topic], messages + 1);
      await until('the look-up to wait on the lock', async () => {
        const [waiting] = await control.query<RowDataPacket[]>("SELECT 1 FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND INFO LIKE '%FROM repair_queue%' AND STATE LIKE '%lock%'");
        return waiting.length > 0;
      });
      stalled.kill('SIGSTOP');
      await control.query('UNLOCK TABLES');

      // The group gives the partition to a second process, which applies that change and a newer one.
      const second = start();
      await until('the second process to apply v1', async () => (await note()) === 'v1');
      await legacy.query("UPDATE member SET note = 'v2' WHERE member_id = 1");
      messages = await waitForMessages([topic], messages + 1);
      await until('the second process to apply v2', async () => (await note()) === 'v2');

      // The first goes on with the v1 change it fetched long ago.
      stalled.kill('SIGCONT');
      await new Promise((r) => setTimeout(r, 8000));
      expect(await note()).toBe('v2');
      for (const child of [stalled, second]) child.kill('SIGTERM');
      await Promise.all([stalled, second].map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.on('close', resolve)))));
      expect(await note()).toBe('v2');
    } finally {
      await control.query('UNLOCK TABLES').catch(() => {});
      await Promise.all([shard.end(), legacy.end(), control.end()]);
    }
  }, 180_000);
});
