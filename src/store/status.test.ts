import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import type { Pool, ResultSetHeader } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { minimalConfig } from '../config/minimal.js';
import { scratchControlStore } from '../../test/support/scratch-control.js';
import type { SyncStatus } from '../cdc/status.js';
import { collectStatus, statusProblems, type Status } from './status.js';

/** The pid of a process that has exited: no process has it now. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

describe('status on the real control store: which jobs a process works on', () => {
  const scratch = scratchControlStore('status');
  let pool: Pool;
  beforeAll(async () => {
    pool = await scratch.open();
  });
  afterAll(async () => scratch.drop());

  it('a worker of this host whose process is gone is dead at once, whatever its heartbeat; one of another host counts until its heartbeat ages', async () => {
    const config = { ...minimalConfig(4), control: { url: scratch.url } };
    const pid = await deadPid();
    const job = async (name: string, host: string) => {
      const [r] = await pool.query<ResultSetHeader>("INSERT INTO jobs (kind, name, state) VALUES ('full', ?, 'running')", [name]);
      await pool.query("INSERT INTO chunks (job_id, table_name, chunk_no, state) VALUES (?, 'member', 0, 'pending')", [r.insertId]);
      // A fresh heartbeat, as a full killed with kill -9 a moment ago leaves it.
      await pool.query("INSERT INTO workers (id, job_id, command, host, pid) VALUES (?, ?, 'full', ?, ?)", [`${host}:${pid}:${name}`, r.insertId, host, pid]);
      return r.insertId;
    };
    const killedHere = await job('killed-here', hostname());
    const elsewhere = await job('elsewhere', 'another-host.example');

    const status = await collectStatus(config);
    expect(status.jobs.find((j) => j.id === killedHere)).toMatchObject({ state: 'running', liveWorkers: 0, stopped: true });
    expect(status.fullCopy!.jobs.find((j) => j.id === killedHere)).toMatchObject({ stopped: true });
    expect(status.workers.map((w) => w.id)).toEqual([`another-host.example:${pid}:elsewhere`]);
    // The pid says nothing about a process on another host: its fresh heartbeat keeps it live.
    expect(status.jobs.find((j) => j.id === elsewhere)).toMatchObject({ state: 'running', liveWorkers: 1, stopped: false });
    expect(status.fullCopy!.jobs.find((j) => j.id === elsewhere)).toMatchObject({ stopped: false });
  });
});

describe('statusProblems: the sync lag that makes status exit 1', () => {
  const config = minimalConfig(4, 'cdc: { kafka: { brokers: ["127.0.0.1:9092"], topic: legacy.member, group: mm-sync } }');
  const control = { database: 'c', reachable: true, exists: true, appliedVersion: 1, latestVersion: 1, problems: [] };
  const partition = (group: string, topic: string, lagSeconds: number) =>
    ({ group, topic, partition: 0, nextOffset: 1, highWatermark: 1, lagMessages: 0, lagSeconds, lastSourceTsMs: null }) as SyncStatus['partitions'][number];
  const statusOf = (partitions: SyncStatus['partitions'], servers: Status['servers'] = []) =>
    ({
      control,
      servers,
      perTable: [],
      sync: { partitions, captureInstances: [], maxLagMessages: 0, maxLagSeconds: Math.max(...partitions.map((p) => p.lagSeconds!)), deadLetters: { open: 0, resolved: 0, openByTable: [] }, parked: [], lastConnectorOutage: null },
    }) as unknown as Omit<Status, 'problems'>;

  it('counts a replica over copy.max_replica_lag_seconds, or whose lag is unknown, and not one within it', () => {
    const replica = (i: number, seconds: number | null) => ({ replica: `servers.a.replicas[${i}] (10.0.0.${i}:3306)`, seconds, ...(seconds === null ? { why: 'its replication SQL thread is not running' } : {}) });
    const servers = [{ name: 'a', dc: null, shards: 4, replicas: 3, replicaLag: [replica(0, 10), replica(1, 11), replica(2, null)] }];
    expect(statusProblems(statusOf([partition('mm-sync', 'legacy.member', 1)], servers), config)).toEqual([
      'servers.a.replicas[1] (10.0.0.1:3306): 11 s behind (copy.max_replica_lag_seconds: 10)',
      'servers.a.replicas[2] (10.0.0.2:3306): replication lag unknown, its replication SQL thread is not running (copy.max_replica_lag_seconds: 10)',
    ]);
  });

  it("counts only the configured group's partitions of its topics: an older config's group ages for ever and is not a problem", () => {
    expect(statusProblems(statusOf([partition('mm-sync', 'legacy.member', 1), partition('old-group', 'legacy.member', 90_000), partition('mm-sync', 'gone.topic', 90_000)]), config)).toEqual([]);
    expect(statusProblems(statusOf([partition('mm-sync', 'legacy.member', 12.5), partition('old-group', 'legacy.member', 1)]), config)).toEqual([
      'sync lag 12.5 s is over gray.gates.max_sync_lag_seconds (5)',
    ]);
  });
});
