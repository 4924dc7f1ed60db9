import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { startMariaDb, type MariaDbInstance } from '../src/sandbox/mariadb.js';
import { shardMapFromConfig, type ShardMap } from '../src/shard/map.js';
import { runCli } from './support/cli.js';
import { writeConfig } from './support/copy-env.js';
import { createTestEnv, type TestEnv } from './support/env.js';

const SHARDS = 64;
const ROWS = 2000;
const memberId = (i: number) => i * 7 + 1;

/**
 * Work per key, not per key × shard: at 1,024 shards a statement sent for every key to every shard
 * that any key of a batch names costs hundreds of times the work. The mechanism shows at 64 shards:
 * every shard lives on one private server whose general log says which statements reached which
 * shard table.
 */
describe(`at ${SHARDS} shards on one server: work per key, not per key × shard; messages that stay short`, () => {
  let dir: string;
  let server: MariaDbInstance;
  let env: TestEnv;
  let map: ShardMap;
  let admin: Connection;

  /** The statements the shard server received while `work` ran. */
  const logged = async (work: () => Promise<void>): Promise<string[]> => {
    await admin.query('TRUNCATE mysql.general_log');
    await admin.query('SET GLOBAL general_log = 1');
    try {
      await work();
    } finally {
      await admin.query('SET GLOBAL general_log = 0');
    }
    const [rows] = await admin.query<RowDataPacket[]>("SELECT CONVERT(argument USING utf8mb4) AS sql_text FROM mysql.general_log WHERE command_type = 'Query'");
    return rows.map((r) => String(r.sql_text));
  };

  /** For each statement naming member keys one by one (`member_id` = N, or = 'N' as a parameter), the shard table it ran on and the keys. */
  const byKeyStatements = (statements: string[], verb: 'SELECT' | 'DELETE') =>
    statements
      .filter((s) => s.trimStart().toUpperCase().startsWith(verb))
      .flatMap((s) => {
        const table = new RegExp(`\`${env.prefix}_s(\\d+)\`\\.\`member\``).exec(s);
        const keys = [...s.matchAll(/`member_id` = '?(\d+)/g)].map((m) => Number(m[1]));
        return table && keys.length > 0 ? [{ shard: Number(table[1]), keys }] : [];
      });

  const verify = async (...args: string[]) => {
    const r = await runCli(['verify', '--tables', 'member', '--json', '--config', env.configPath, ...args]);
    return { code: r.code, result: JSON.parse(r.stdout).result, stderr: r.stderr };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'membermig-many-shards-'));
    server = await startMariaDb({ dir, extraArgs: ['--default-time-zone=+00:00', '--log-output=TABLE'] });
    admin = await connectMysql(server.url);
    env = await createTestEnv({
      shardCount: SHARDS,
      tables: {
        member: { source: 'legacy.member', target: 'member', shard_key: 'member_id' },
        // Not copied here: the last test copies it with the server down.
        member2: { source: 'legacy.member2', target: 'member2', shard_key: 'member_id' },
      },
      extra: { verify: { recheck_after_seconds: 0 }, copy: { retries: 1, retry_base_ms: 100 } },
      legacySql: [
        'CREATE TABLE member (member_id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(50) NULL)',
        `INSERT INTO member VALUES ${Array.from({ length: ROWS }, (_, i) => `(${memberId(i)}, 'm${i}')`).join(', ')}`,
        'CREATE TABLE member2 LIKE member',
        'INSERT INTO member2 SELECT * FROM member',
      ],
    });
    env.raw = { ...env.raw, servers: { one: { primary: server.url, dc: 'dc1' } }, shards: { ...(env.raw.shards as object), placement: [{ shards: `0-${SHARDS - 1}`, server: 'one' }] } };
    writeConfig(env);
    map = shardMapFromConfig(env.config);
    for (const args of [['init'], ['full', '--tables', 'member']]) {
      const r = await runCli([...args, '--config', env.configPath]);
      expect(r.code, r.stderr + r.stdout).toBe(0);
    }
  }, 120_000);

  afterAll(async () => {
    await admin?.end();
    await env?.cleanup();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('re-checks each differing key on its own shard only, and repairs them', async () => {
    // 40 rows gone from their shards: spread over most of the 64 shards.
    const gone = Array.from({ length: 40 }, (_, i) => memberId(i * 50));
    for (const id of gone) await admin.query(`DELETE FROM \`${map.databaseOf(map.shardOf(id))}\`.member WHERE member_id = ?`, [id]);
    expect(new Set(gone.map((id) => map.shardOf(id))).size).toBeGreaterThan(20);

    let run: Awaited<ReturnType<typeof verify>> | undefined;
    const statements = await logged(async () => {
      run = await verify();
    });
    expect(run!.code, run!.stderr).toBe(1);
    expect(run!.result.tables[0].differences).toBe(gone.length);

    const lookups = byKeyStatements(statements, 'SELECT');
    expect(lookups.length).toBeGreaterThan(0);
    const elsewhere = lookups.flatMap(({ shard, keys }) => keys.filter((k) => map.shardOf(k) !== shard).map((k) => `${k} on shard ${shard}`));
    expect(elsewhere.length, `keys looked for on shards that are not theirs, e.g. ${elsewhere.slice(0, 3).join('; ')}`).toBe(0);

    const repair = await verify('--repair');
    expect(repair.code, repair.stderr).toBe(0);
    expect((await verify()).code).toBe(0);
  });

  it('drains repair-queue entries on their own shards only, and deletes a copy legacy no longer has', async () => {
    const stale = Array.from({ length: 30 }, (_, i) => memberId(i * 60 + 7));
    for (const id of stale) await admin.query(`UPDATE \`${map.databaseOf(map.shardOf(id))}\`.member SET name = 'stale' WHERE member_id = ?`, [id]);
    const dropped = memberId(1999);
    const control = await connectMysql(env.urls.legacy);
    try {
      await control.query(`DELETE FROM \`${env.legacyDb}\`.member WHERE member_id = ?`, [dropped]);
      for (const id of [...stale, dropped]) {
        await control.query(`INSERT INTO \`${env.prefix}_control\`.repair_queue (table_name, pk, reason, origin) VALUES ('member', ?, 'test', 'shim')`, [JSON.stringify([String(id)])]);
      }
    } finally {
      await control.end();
    }

    let run: Awaited<ReturnType<typeof verify>> | undefined;
    const statements = await logged(async () => {
      run = await verify('--repair');
    });
    expect(run!.code, run!.stderr).toBe(0);
    expect(run!.result.repairQueue[0]).toMatchObject({ entries: 31, resolved: 31, left: 0 });

    const deletes = byKeyStatements(statements, 'DELETE');
    const elsewhere = deletes.flatMap(({ shard, keys }) => keys.filter((k) => map.shardOf(k) !== shard).map((k) => `${k} on shard ${shard}`));
    expect(elsewhere.length, `keys deleted on shards that are not theirs, e.g. ${elsewhere.slice(0, 3).join('; ')}`).toBe(0);
    const [left] = await admin.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM \`${map.databaseOf(map.shardOf(dropped))}\`.member WHERE member_id = ?`, [dropped]);
    expect(Number(left[0]!.n)).toBe(0);
    const [names] = await admin.query<RowDataPacket[]>(
      stale.map((id) => `SELECT name FROM \`${map.databaseOf(map.shardOf(id))}\`.member WHERE member_id = ${id}`).join(' UNION ALL '),
    );
    expect(names.filter((r) => r.name === 'stale')).toEqual([]);
    expect((await verify()).code).toBe(0);
  });

  // Last: it stops the server.
  it('names the shards of a failed write briefly, whatever their number', async () => {
    await server.stop();
    const r = await runCli(['full', '--tables', 'member2', '--json', '--config', env.configPath, '--log-level', 'error']);
    expect(r.code, r.stderr).toBe(1);
    const error = String(JSON.parse(r.stdout).result.left[0].error);
    // e.g. "64 shards from 0 to 63 on server one: connect ECONNREFUSED ...", not each of 64 shards by number.
    expect(error).toMatch(/^(\d+ shards from \d+ to \d+|shards? [\d,-]+) on server one: /);
    expect(error.length, error).toBeLessThan(200);
  });
});
