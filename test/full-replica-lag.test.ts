import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { startMariaDb, type MariaDbInstance } from '../src/sandbox/mariadb.js';
import { runCli, watchCli } from './support/cli.js';
import { createCopyEnv, writeConfig } from './support/copy-env.js';
import type { TestEnv } from './support/env.js';
import { waitFor } from './support/faults.js';
import { createMemberTable } from './support/nasty.js';
import { startFreezingProxy } from './support/freezing-proxy.js';

const ROWS = 600;

/**
 * A shard server with a real replica (two private mariadbd, binlog replication): `full` writes to
 * the primary only while the replica keeps up (copy.max_replica_lag_seconds), and refuses a
 * "replica" that is none before any write.
 */
describe('full: writes to a shard server wait while its replica lags', () => {
  let dir: string;
  let primary: MariaDbInstance;
  let replica: MariaDbInstance;
  let env: TestEnv;

  const onReplica = async (sql: string): Promise<RowDataPacket[]> => {
    const conn = await connectMysql(replica.url);
    try {
      return (await conn.query<RowDataPacket[]>(sql))[0];
    } finally {
      await conn.end();
    }
  };
  const rowsOn = async (server: MariaDbInstance): Promise<number> => {
    const conn = await connectMysql(server.url);
    try {
      let n = 0;
      for (let shard = 0; shard < 4; shard++) {
        const [rows] = await conn.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM \`${env.prefix}_s${String(shard).padStart(3, '0')}\`.member`);
        n += Number(rows[0]!.n);
      }
      return n;
    } finally {
      await conn.end();
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'membermig-replica-'));
    [primary, replica] = await Promise.all([
      startMariaDb({ dir: join(dir, 'primary'), binlog: true, serverId: 31 }),
      startMariaDb({ dir: join(dir, 'replica'), binlog: true, serverId: 32 }),
    ]);
    const conn = await connectMysql(primary.url);
    const [[status]] = await conn.query<RowDataPacket[]>('SHOW MASTER STATUS');
    await conn.end();
    await onReplica(
      `CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = ${primary.port}, MASTER_USER = 'root', MASTER_PASSWORD = '',
        MASTER_LOG_FILE = '${status!.File}', MASTER_LOG_POS = ${status!.Position}, MASTER_USE_GTID = no`,
    );
    await onReplica('START REPLICA');
    await waitFor('replication running', async () => (await onReplica('SHOW REPLICA STATUS'))[0]?.Slave_IO_Running === 'Yes');

    env = await createCopyEnv({
      shardCount: 4,
      tables: (db) => ({ member: { source: `${db}.member`, target: 'member', shard_key: 'member_id' } }),
      extra: { copy: { chunk_rows: 100, workers: 2, max_replica_lag_seconds: 1 } },
    });
    env.raw = {
      ...env.raw,
      servers: { p: { primary: primary.url, replicas: [replica.url] } },
      shards: { ...(env.raw.shards as object), placement: [{ shards: '0-3', server: 'p' }] },
    };
    writeConfig(env);
    await createMemberTable(env.legacyUrl, ROWS);
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await env?.cleanup();
    await Promise.allSettled([primary?.stop(), replica?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('writes nothing while the replica has stopped applying, and finishes once it applies again', async () => {
    await onReplica('STOP REPLICA SQL_THREAD');
    const full = watchCli(['full', '--config', env.configPath, '--json', '--log-level', 'debug']);
    try {
      await full.untilLogged('writes to server p wait for its replicas', 60_000);
      expect(full.stderr).toContain('servers.p.replicas[0] (127.0.0.1:');
      expect(full.stderr).toContain('its replication SQL thread is not running');
      expect(full.stderr).not.toContain(replica.url.replace(/\/$/, ''));
      // Waiting, not failing: two seconds on, still nothing written to the primary.
      await new Promise((r) => setTimeout(r, 2000));
      expect(await rowsOn(primary)).toBe(0);
      // status shows the replica and why its lag is unknown, as a problem (exit 1).
      const status = await runCli(['status', '--config', env.configPath, '--json']);
      const seen = JSON.parse(status.stdout).result;
      expect(status.code).toBe(1);
      expect(seen.servers[0].replicaLag).toEqual([{ replica: expect.stringMatching(/^servers\.p\.replicas\[0\] \(127\.0\.0\.1:\d+\)$/), seconds: null, why: 'its replication SQL thread is not running' }]);
      expect(seen.problems).toContainEqual(expect.stringMatching(/^servers\.p\.replicas\[0\] .*: replication lag unknown, its replication SQL thread is not running \(copy\.max_replica_lag_seconds: 1\)$/));
    } finally {
      await onReplica('START REPLICA SQL_THREAD');
    }
    expect(await full.closed, full.stderr).toBe(0);
    expect(full.stderr).toContain('writes to server p go on: its replicas caught up');
    expect(JSON.parse(full.stdout).result).toMatchObject({ state: 'done', rowsThisRun: ROWS });
    expect(await rowsOn(primary)).toBe(ROWS);
    await waitFor('the replica has every row', async () => (await rowsOn(replica)) === ROWS);
    const status = await runCli(['status', '--config', env.configPath]);
    expect(status.stdout).toMatch(/\bp +\S* *4 +1 +0 s\b/);
    expect(status.stdout + status.stderr).not.toContain('replication lag unknown');
  }, 120_000);

  it('verify --repair waits for the replica as full does: no repair is written until it applies again', async () => {
    const conn = await connectMysql(primary.url);
    await conn.query(`DELETE FROM \`${env.prefix}_s000\`.member ORDER BY member_id LIMIT 5`);
    await conn.end();
    await waitFor('the replica applied the deletes', async () => (await rowsOn(replica)) === ROWS - 5);
    await onReplica('STOP REPLICA SQL_THREAD');
    const verify = watchCli(['verify', '--repair', '--config', env.configPath, '--json', '--log-level', 'debug']);
    try {
      await verify.untilLogged('writes to server p wait for its replicas', 60_000);
      expect(verify.stderr).toContain('its replication SQL thread is not running');
      await new Promise((r) => setTimeout(r, 2000));
      expect(await rowsOn(primary)).toBe(ROWS - 5);
    } finally {
      await onReplica('START REPLICA SQL_THREAD');
    }
    expect(await verify.closed, verify.stderr).toBe(0);
    expect(verify.stderr).toContain('writes to server p go on: its replicas caught up');
    const result = JSON.parse(verify.stdout).result;
    expect(result.differences.map((d: { kind: string; repairAction: string }) => `${d.kind} ${d.repairAction}`)).toEqual(Array(5).fill('missing upsert'));
    expect(await rowsOn(primary)).toBe(ROWS);
    await waitFor('the replica has every row', async () => (await rowsOn(replica)) === ROWS);
  }, 120_000);

  it('refuses a listed replica that is none, naming it, before any write (exit 2)', async () => {
    env.raw = { ...env.raw, servers: { p: { primary: primary.url, replicas: [primary.url] } } };
    writeConfig(env);
    const refused = await runCli(['full', '--restart', '--config', env.configPath]);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toMatch(/servers\.p\.replicas\[0\] \(127\.0\.0\.1:\d+\): it is not a replica \(SHOW REPLICA STATUS returned no row\)/);
    // --restart was refused before it emptied anything.
    expect(await rowsOn(primary)).toBe(ROWS);
  }, 60_000);

  it('stops on SIGTERM while writes wait for a replica that stopped answering mid-query', async () => {
    // The replica behind a proxy that can freeze its connections: a host that hangs, not one that refuses.
    const proxy = await startFreezingProxy(replica.port);
    env.raw = { ...env.raw, servers: { p: { primary: primary.url, replicas: [`mysql://root@127.0.0.1:${proxy.port}/`] } } };
    writeConfig(env);
    await onReplica('STOP REPLICA SQL_THREAD');
    const full = watchCli(['full', '--restart', '--config', env.configPath, '--json', '--log-level', 'debug']);
    try {
      await full.untilLogged('writes to server p wait for its replicas', 60_000);
      proxy.hang();
      // A reading of the replica's lag is now sent and never answered.
      await new Promise((r) => setTimeout(r, 2500));
      full.child.kill('SIGTERM');
      const ended = await Promise.race([full.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 40_000))]);
      expect(ended, `full did not stop within 40 s of SIGTERM:\n${full.stderr.slice(-1500)}`).toBe(true);
    } finally {
      if (full.child.exitCode === null) full.child.kill('SIGKILL');
      await proxy.close();
      await onReplica('START REPLICA SQL_THREAD');
    }
  }, 150_000);
});
