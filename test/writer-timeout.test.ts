import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { isTransient } from '../src/mysql/retry.js';
import type { TableSpec } from '../src/rows/types.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { createSourceReader, describeTables } from '../src/source/index.js';
import { createShardWriter, type ShardWriter } from '../src/target/writer.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { startFreezingProxy, type FreezingProxy } from './support/freezing-proxy.js';
import { createMemberTable } from './support/nasty.js';

/** A shard server that hangs with its connections open (a frozen process or host): a TCP proxy that stops passing bytes. */
describe('the shard writer against a server that stops answering on open connections', () => {
  let env: TestEnv;
  let proxy: FreezingProxy;
  let writer: ShardWriter;
  let spec: TableSpec;
  let shardOnA: number;

  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 4 });
    await createMemberTable(env.legacyUrl, 10);
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
    const reader = createSourceReader(env.config, silentLogger);
    spec = (await describeTables(reader, env.config))[0]!;
    await reader.close();
    proxy = await startFreezingProxy(Number(new URL(env.urls.shardA).port));
    const viaProxy = new URL(env.urls.shardA);
    viaProxy.port = String(proxy.port);
    const config = { ...env.config, servers: { ...env.config.servers, 'shard-a': { ...env.config.servers['shard-a']!, primary: viaProxy.toString(), max_connections: 1 } } };
    // A 1 s lock wait: statements fail after 2 s without an answer.
    writer = createShardWriter(config, { lockWaitSeconds: 1 });
    shardOnA = shardMapFromConfig(config).shardsOn('shard-a')[0]!;
  });
  afterAll(async () => {
    await writer?.close();
    await proxy?.close();
    await env?.cleanup();
  });

  it('fails a statement after twice the lock wait, as transient (sync parks, full retries), and the next write takes a new connection', async () => {
    expect(await writer.deleteKeys(shardOnA, spec, [['424242']])).toBe(0); // the pool's one connection is open now
    proxy.freeze();
    const started = Date.now();
    const hung = await writer.deleteKeys(shardOnA, spec, [['424242']]).then(
      () => null,
      (e: Error) => e,
    );
    const seconds = (Date.now() - started) / 1000;
    expect(hung?.message).toMatch(/timeout/i);
    expect(isTransient(hung)).toBe(true);
    expect(seconds).toBeGreaterThanOrEqual(1.9);
    expect(seconds).toBeLessThan(10);
    // The hung connection was thrown away: the pool (of one) opens a new one, which the proxy passes.
    expect(await writer.deleteKeys(shardOnA, spec, [['424242']])).toBe(0);
  });

  it('a LOAD DATA transaction on a hung connection fails the same way and leaves the pool usable', async () => {
    proxy.freeze();
    const load = () => writer.loadShards([{ shard: shardOnA, spec, blocks: [], rows: 0 }]);
    expect(await load()).toBe(0); // nothing to load: no statement
    const line = Buffer.from(spec.columns.map((c) => (c.source === spec.primaryKey[0] ? '424243' : '\\N')).join('\t') + '\n');
    const failed = await writer.loadShards([{ shard: shardOnA, spec, blocks: [line], rows: 1 }]).then(
      () => null,
      (e: Error) => e,
    );
    expect(failed?.message).toMatch(/timeout/i);
    expect(isTransient(failed)).toBe(true);
    expect(await writer.deleteKeys(shardOnA, spec, [['424243']])).toBe(0);
  });
});
