import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, silentLogger } from '../src/log.js';
import { connectMysql } from '../src/mysql/connect.js';
import { rowsQuery } from '../src/mysql/pool.js';
import type { TableSpec } from '../src/rows/types.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { createSourceReader, MysqlSourceReader } from '../src/source/index.js';
import { readMysqlRowsByKey } from '../src/source/mysql/keys.js';
import { createShardWriter, type ShardWriter } from '../src/target/writer.js';
import { keyValues } from '../src/verify/repair.js';
import { runVerify } from '../src/verify/index.js';
import { runCli } from './support/cli.js';
import { copyTable } from './support/copy-rows.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { createMemberTable, memberId, memberRow } from './support/nasty.js';

const SYNC_DELAY_MS = 300;

/**
 * Verify while a writer keeps changing the legacy table and a stand-in for sync applies each
 * change to the shards SYNC_DELAY_MS later: mismatches are seen, re-checked, and none is reported.
 */
describe('verify while data moves', () => {
  let env: TestEnv;
  let reader: MysqlSourceReader;
  let writer: ShardWriter;
  let spec: TableSpec;
  const ROWS = 200;

  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 4, extra: { verify: { chunk_rows: 40, workers: 2, recheck_after_seconds: 1 } } });
    await createMemberTable(env.legacyUrl, ROWS);
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
    await copyTable(env.config, 'member');
    reader = createSourceReader(env.config, silentLogger) as MysqlSourceReader;
    writer = createShardWriter(env.config);
    spec = await reader.describeTable('member', env.config.tables.member!);
  });
  afterAll(async () => {
    await reader?.close();
    await writer?.close();
    await env?.cleanup();
  });

  it('reports no false difference while a writer and a delayed sync keep changing rows', async () => {
    const map = shardMapFromConfig(env.config);
    const legacy = await connectMysql(env.legacyUrl);
    const applies: Promise<void>[] = [];
    // Sync stand-in: the legacy row's state SYNC_DELAY_MS after the change, upserted (or deleted) by key.
    const syncLater = (id: string) =>
      applies.push(
        new Promise<void>((resolve, reject) =>
          setTimeout(() => {
            void (async () => {
              const { rows } = await readMysqlRowsByKey(rowsQuery(reader.pool), spec, [[id]]);
              if (rows[0]) await writer.upsertRows(map.shardOf(id), spec, rows);
              else await writer.deleteKeys(map.shardOf(id), spec, [keyValues(spec, [id])]);
            })().then(resolve, reject);
          }, SYNC_DELAY_MS),
        ),
      );
    let stop = false;
    let changes = 0;
    const inserted: string[] = [];
    const writerLoop = (async () => {
      // Rows are changed in a cycle, so no row changes again before its previous change is synced and re-checked.
      for (let n = 0; !stop; n++) {
        if (n % 10 === 3) {
          const row = memberRow(ROWS + n);
          await legacy.query('INSERT INTO member VALUES ?', [[row]]);
          inserted.push(String(row[0]));
          syncLater(String(row[0]));
        } else if (n % 10 === 8 && inserted.length > 20) {
          const id = inserted.shift()!;
          await legacy.query('DELETE FROM member WHERE member_id = ?', [id]);
          syncLater(id);
        } else {
          const id = memberId(n % ROWS);
          await legacy.query('UPDATE member SET name = ?, joined = UTC_TIMESTAMP(6) WHERE member_id = ?', [`v${n}`, id]);
          syncLater(id);
        }
        changes++;
        await new Promise((r) => setTimeout(r, 15));
      }
    })();

    const logs = new PassThrough();
    let logText = '';
    logs.on('data', (d: Buffer) => (logText += d.toString()));
    try {
      await new Promise((r) => setTimeout(r, 200));
      for (let pass = 0; pass < 2; pass++) {
        const r = await runVerify(env.config, { logger: createLogger('info', logs), recheckAfterSeconds: 1 });
        expect(r.differences).toEqual([]);
        expect(r.state).toBe('clean');
      }
    } finally {
      stop = true;
      await writerLoop;
      await Promise.all(applies);
      await legacy.end();
    }
    expect(changes).toBeGreaterThan(50);
    // The run did see rows in flight (otherwise this test would prove nothing) and re-checked them.
    expect(logText).toContain('mismatch: re-checking after the delay');
    const settled = await runVerify(env.config, { logger: silentLogger, recheckAfterSeconds: 0 });
    expect(settled.tables[0]).toMatchObject({ state: 'clean', rowsSource: settled.tables[0]!.rowsTarget });
  });

  it('without the delay, the same motion does show as differences (the re-check is what filters it)', async () => {
    const legacy = await connectMysql(env.legacyUrl);
    const ids = [3, 50, 120].map(memberId);
    for (const id of ids) await legacy.query("UPDATE member SET name = 'in flight' WHERE member_id = ?", [id]);
    await legacy.end();
    const r = await runVerify(env.config, { logger: silentLogger, recheckAfterSeconds: 0 });
    expect(r.state).toBe('differences');
    expect(r.differences.map((d) => d.key[0]).sort()).toEqual([...ids].sort());
    await runVerify(env.config, { logger: silentLogger, repair: true, recheckAfterSeconds: 0 });
  });
});
