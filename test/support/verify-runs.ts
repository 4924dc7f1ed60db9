import type { RowDataPacket } from 'mysql2/promise';
import { connectMysql } from '../../src/mysql/connect.js';
import { shardMapFromConfig } from '../../src/shard/map.js';
import { runCli } from './cli.js';
import type { TestEnv } from './env.js';

/** Runs SQL in one shard's database (UTC, non-strict: tests plant values the writer would refuse). */
export async function onShard(env: TestEnv, shard: number, sql: string, params: unknown[] = []): Promise<RowDataPacket[]> {
  const map = shardMapFromConfig(env.config);
  const conn = await connectMysql(map.serverOf(shard).primary, { database: map.databaseOf(shard) });
  try {
    await conn.query("SET time_zone = '+00:00', sql_mode = ''");
    const [rows] = await conn.query(sql, params);
    return rows as RowDataPacket[];
  } finally {
    await conn.end();
  }
}

/** One `verify` (or `verify --repair`) of a table, re-checks at once; its --json result, null if none. */
export async function verifyTable(env: TestEnv, table: string, repair = false): Promise<{ code: number; result: any; stderr: string }> {
  const args = ['verify', '--config', env.configPath, '--json', '--tables', table, '--recheck-after', '0', '--log-level', 'error'];
  if (repair) args.push('--repair');
  const res = await runCli(args);
  let result: any = null;
  try {
    result = JSON.parse(res.stdout).result;
  } catch {
    /* keep null */
  }
  return { code: res.code, result, stderr: res.stderr };
}
