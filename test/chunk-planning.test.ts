import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RowDataPacket } from 'mysql2/promise';
import { silentLogger } from '../src/log.js';
import { MysqlSourceReader } from '../src/source/mysql/reader.js';
import type { TableSpec } from '../src/rows/types.js';
import type { ChunkKey } from '../src/store/leases.js';
import { connectMysql } from '../src/mysql/connect.js';
import { createShardWriter } from '../src/target/writer.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { readShards } from './support/shards.js';

const DENSE = 20_000;
const OUTLIERS = ['1000000000000000', '500000000000000000', '18446744073709551615'];

/**
 * Chunks of a single integer key are planned by value (src/source/value-ranges.ts): the planner
 * must not read the table's rows, and a few keys far above the rest must not leave every row in
 * one chunk (one worker, nothing to resume from).
 */
describe('chunk planning of an integer key on a MySQL source', () => {
  let env: TestEnv;
  let reader: MysqlSourceReader;
  let spec: TableSpec;
  beforeAll(async () => {
    env = await createTestEnv({
      tables: { t: { source: 'legacy.t', target: 't', shard_key: 'id' } },
      extra: { copy: { chunk_rows: 500, workers: 2 } },
      legacySql: [
        'CREATE TABLE t (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, v VARCHAR(40) NOT NULL)',
        `INSERT INTO t SELECT seq, REPEAT('x', 40) FROM seq_1_to_${DENSE}`,
        `INSERT INTO t VALUES ${OUTLIERS.map((k) => `(${k}, 'far')`).join(', ')}`,
        'ANALYZE TABLE t',
      ],
    });
    // One connection: the session's handler counters then count every read the planner made.
    reader = new MysqlSourceReader(env.config, silentLogger, 1);
    spec = await reader.describeTable('t', env.config.tables.t!);
  });
  afterAll(async () => {
    await reader?.close();
    await env?.cleanup();
  });

  const rowsRead = async () => {
    const [rows] = await reader.pool.query<RowDataPacket[]>("SHOW SESSION STATUS WHERE Variable_name IN ('Handler_read_next', 'Handler_read_rnd_next', 'Handler_read_key')");
    return rows.reduce((n, r) => n + Number(r.Value), 0);
  };

  it('plans without reading the rows, in chunks of bounded size that cover every row once', async () => {
    const before = await rowsRead();
    const bounds: ChunkKey[] = [];
    for await (const b of reader.chunkBoundaries(spec, 500)) bounds.push(b);
    const read = (await rowsRead()) - before;
    // Keyset bounds would have stepped over every one of the 20,003 keys.
    expect(read).toBeLessThan(100);

    const edges: (ChunkKey | null)[] = [null, ...bounds, null];
    const sizes: number[] = [];
    const ids = new Set<string>();
    for (let i = 0; i + 1 < edges.length; i++) {
      let n = 0;
      for await (const batch of reader.readRange(spec, edges[i]!, edges[i + 1]!, 1_000)) {
        n += batch.length;
        for (const row of batch) ids.add(String(row[0]));
      }
      sizes.push(n);
    }
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(DENSE + OUTLIERS.length);
    expect(ids.size).toBe(DENSE + OUTLIERS.length);
    expect(ids.has('18446744073709551615')).toBe(true);
    // The outliers stretch the key span 10^15 times: by width alone every dense key would be in chunk 1.
    expect(Math.max(...sizes)).toBeLessThanOrEqual(4 * 500);
    expect(sizes.filter((n) => n > 0).length).toBeGreaterThanOrEqual(DENSE / 2_000);
  });

  it('goes on after a bound planned before (a planner killed midway)', async () => {
    const all: ChunkKey[] = [];
    for await (const b of reader.chunkBoundaries(spec, 500)) all.push(b);
    const middle = all[Math.floor(all.length / 2)]!;
    const rest: ChunkKey[] = [];
    for await (const b of reader.chunkBoundaries(spec, 500, middle)) rest.push(b);
    expect(rest.length).toBeGreaterThan(0);
    expect(rest.every((b) => BigInt(b[0]!) > BigInt(middle[0]!))).toBe(true);
  });

  it('takes keyset bounds where the statistics say the table is small', async () => {
    const bounds: ChunkKey[] = [];
    for await (const b of reader.chunkBoundaries(spec, 5_000)) bounds.push(b);
    // 20,003 rows is under 10 chunks of 5,000: exact bounds every 5,000 keys.
    expect(bounds).toEqual([['5000'], ['10000'], ['15000'], ['20000']]);
  });

  it('full copies such a table through those chunks: every row once, the key 2^64-1 too', async () => {
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
    const full = await runCli(['full', '--config', env.configPath, '--json']);
    expect(full.code, full.stderr).toBe(0);
    const result = JSON.parse(full.stdout).result;
    expect(result).toMatchObject({ state: 'done', rowsThisRun: DENSE + OUTLIERS.length });
    // The chunks are value ranges, as planned above (keyset bounds would be every 500th key: 500, 1000, ...).
    const planned: ChunkKey[] = [];
    for await (const b of reader.chunkBoundaries(spec, 500)) planned.push(b);
    const control = await connectMysql(env.config.control.url);
    const [chunks] = await control.query<RowDataPacket[]>('SELECT upper_key FROM chunks WHERE job_id = ? ORDER BY chunk_no', [result.jobId]);
    await control.end();
    const uppers = chunks.map((c) => (typeof c.upper_key === 'string' ? JSON.parse(c.upper_key) : c.upper_key));
    expect(uppers).toEqual([...planned, null]);
    expect(uppers[0]).not.toEqual(['500']);
    const writer = createShardWriter(env.config);
    try {
      const rows = await readShards(writer, 't');
      expect(rows.size).toBe(DENSE + OUTLIERS.length);
      expect(rows.get('18446744073709551615')).toEqual(['18446744073709551615', 'far']);
    } finally {
      await writer.close();
    }
  }, 120_000);
});
