import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { startMariaDb, type MariaDbInstance } from '../src/sandbox/mariadb.js';

/**
 * Real servers for the whole test run. MEMBERMIG_TEST_MYSQL_URL names one server to use for
 * every role; otherwise three private mariadbd instances start in a temp folder: the legacy
 * stand-in (which also holds the control store) and two shard hosts. They are stopped by the
 * PIDs started here.
 */
declare module 'vitest' {
  export interface ProvidedContext {
    mysql: { legacy: string; shardA: string; shardB: string };
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.MEMBERMIG_TEST_MYSQL_URL;
  if (external) {
    project.provide('mysql', { legacy: external, shardA: external, shardB: external });
    return async () => {};
  }
  const root = mkdtempSync(join(tmpdir(), 'membermig-test-'));
  const started: MariaDbInstance[] = [];
  const results = await Promise.allSettled([
    startMariaDb({ dir: join(root, 'legacy'), binlog: true, serverId: 1 }),
    startMariaDb({ dir: join(root, 'shard-a') }),
    startMariaDb({ dir: join(root, 'shard-b') }),
  ]);
  for (const r of results) if (r.status === 'fulfilled') started.push(r.value);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    // Stop the ones that did start: a failed setup must not leave servers behind.
    await Promise.all(started.map((s) => s.stop()));
    throw failed.reason;
  }
  const [legacy, shardA, shardB] = started as [MariaDbInstance, MariaDbInstance, MariaDbInstance];
  project.provide('mysql', { legacy: legacy.url, shardA: shardA.url, shardB: shardB.url });
  return async () => {
    await Promise.all(started.map((s) => s.stop()));
    rmSync(root, { recursive: true, force: true });
  };
}
