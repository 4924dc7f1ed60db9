import type { Connection } from 'mysql2/promise';
import { expect } from 'vitest';
import type { Config } from '../../src/config/schema.js';
import { connectMysql } from '../../src/mysql/connect.js';
import { shardMapFromConfig } from '../../src/shard/map.js';
import type { Row } from '../../src/rows/types.js';
import type { ShardMap } from '../../src/shard/map.js';
import type { ShardWriter } from '../../src/target/writer.js';

/**
 * Every row of one table in every shard, keyed by its primary key text (joined by '|'), as the
 * pipeline's values (text/Buffer/null). Fails if a row sits in a shard the map would not route it
 * to, or if a key appears twice.
 */
export async function readShards(writer: ShardWriter, target: string, keyColumns = 1, shardKeyAt = 0): Promise<Map<string, Row>> {
  const out = new Map<string, Row>();
  const map: ShardMap = writer.map;
  for (let shard = 0; shard < map.count; shard++) {
    const pool = writer.poolOf(map.serverOf(shard).name);
    const [rows] = await pool.query({ sql: `SELECT * FROM \`${map.databaseOf(shard)}\`.\`${target}\``, rowsAsArray: true });
    for (const r of rows as unknown[][]) {
      const row = r.map((v) => (v === null || Buffer.isBuffer(v) ? v : String(v))) as Row;
      expect(map.shardOf(row[shardKeyAt] as string), `row ${String(row[0])} is in shard ${shard}`).toBe(shard);
      const key = row.slice(0, keyColumns).map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : String(v))).join('|');
      expect(out.has(key), `key ${key} appears twice`).toBe(false);
      out.set(key, row);
    }
  }
  return out;
}

/** Runs `work` on a connection to the shard server that holds shard key `id`, with that shard's database name. */
export async function onShardOf<T>(config: Config, id: string, work: (shard: Connection, database: string) => Promise<T>): Promise<T> {
  const at = shardMapFromConfig(config).locate(id);
  const shard = await connectMysql(at.server.primary);
  try {
    return await work(shard, at.database);
  } finally {
    await shard.end();
  }
}
