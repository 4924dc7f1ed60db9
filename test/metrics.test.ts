import type { ResultSetHeader } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFullCopy } from '../src/copy/index.js';
import { runInit } from '../src/init/index.js';
import { silentLogger } from '../src/log.js';
import { FullCopyMetrics, VerifyMetrics } from '../src/metrics/index.js';
import { seedMembers } from '../src/sandbox/demo.js';
import { openControlStore } from '../src/store/control.js';
import { claimChunk, insertChunks } from '../src/store/leases.js';
import { runVerify } from '../src/verify/index.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/** The value of one sample in Prometheus text, e.g. sample(text, 'membermig_full_rows_copied{table="member"}'). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

describe('Prometheus metrics of full and verify', () => {
  let env: TestEnv;
  const ROWS = 1500;

  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 4, extra: { copy: { chunk_rows: 400 }, verify: { chunk_rows: 500 } } });
    await seedMembers(env.config, env.config.tables.member!.source, ROWS);
    const init = await runInit(env.config, { logger: silentLogger });
    expect(init.ok).toBe(true);
  });

  afterAll(async () => {
    await env?.cleanup();
  });

  it('full: rows and chunks copied per table, chunks leased by any worker', async () => {
    const metrics = new FullCopyMetrics(env.config);
    const port = await metrics.listen(0);
    try {
      const result = await runFullCopy(env.config, { logger: silentLogger, onProgress: (p) => metrics.update(p) });
      metrics.finish(result);
      expect(result.state).toBe('done');
      // A lease another worker holds right now (a second job's chunk) shows in the gauge.
      const store = openControlStore(env.config, 1);
      try {
        const [job] = await store.pool.query<ResultSetHeader>("INSERT INTO jobs (kind, name, state) VALUES ('verify', 'metrics-test', 'running')");
        await insertChunks(store.pool, job.insertId, [{ tableName: 'member', chunkNo: 0, lowerKey: null, upperKey: null }]);
        expect(await claimChunk(store.pool, job.insertId, 'other-worker', 60)).not.toBeNull();
      } finally {
        await store.close();
      }
      const text = await scrape(port);
      expect(sample(text, 'membermig_full_rows_copied{table="member"}')).toBe(ROWS);
      expect(sample(text, 'membermig_full_chunks_done{table="member"}')).toBe(result.tables[0]!.chunks);
      expect(sample(text, 'membermig_full_chunks_total{table="member"}')).toBe(result.tables[0]!.chunks);
      expect(result.tables[0]!.chunks).toBeGreaterThan(1);
      expect(sample(text, 'membermig_full_errors_total')).toBe(0);
      expect(sample(text, 'membermig_chunks_leased{table="member"}')).toBe(1);
    } finally {
      await metrics.close();
    }
  });

  it('verify: differences, rows checked, clean flag and passes per table', async () => {
    const metrics = new VerifyMetrics(env.config);
    const port = await metrics.listen(0);
    try {
      const result = await runVerify(env.config, { logger: silentLogger, onPass: (r) => metrics.update(r) });
      expect(result.state).toBe('clean');
      const text = await scrape(port);
      expect(sample(text, 'membermig_verify_passes_total')).toBe(1);
      expect(sample(text, 'membermig_verify_clean{table="member"}')).toBe(1);
      expect(sample(text, 'membermig_verify_differences{table="member"}')).toBe(0);
      expect(sample(text, 'membermig_verify_rows_checked{table="member"}')).toBe(ROWS);
    } finally {
      await metrics.close();
    }
  });

  it('--metrics-port must be a port number (exit 2, nothing done)', async () => {
    for (const cmd of ['full', 'verify']) {
      const res = await runCli([cmd, '--config', env.configPath, '--metrics-port', 'http']);
      expect(res.code).toBe(2);
      expect(res.stderr).toContain('--metrics-port http: expected a port number');
    }
  });

  it('a metrics port in use is a refused flag, named (exit 2, nothing done)', async () => {
    const taken = new VerifyMetrics(env.config);
    const port = await taken.listen(0);
    try {
      for (const cmd of ['full', 'verify']) {
        const res = await runCli([cmd, '--config', env.configPath, '--metrics-port', String(port)]);
        expect(res.code).toBe(2);
        expect(res.stderr).toContain(`--metrics-port ${port} --metrics-host 127.0.0.1: the port is in use`);
      }
    } finally {
      await taken.close();
    }
  });
});
